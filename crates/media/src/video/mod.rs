//! Short video (ISO BMFF: MP4 and MOV): every limit read from the boxes before anything is
//! decoded, and a sanitized copy rebuilt from an allow-list — the kept tracks' samples copied
//! untouched behind a new `moov` that carries no metadata.

mod frames;
mod moov;
mod reencode;
mod write;

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::IngestError;
use crate::boxes::{Faults, boxes};

pub use frames::{FrameOptions, FrameShape, Keyframe, each_keyframe, keyframes};
pub use moov::TrackKind;
pub use reencode::{ReencodeOptions, reencode};

/// The containers accepted, told apart by the `ftyp` brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoFormat {
    /// ISO base media (`isom`, `mp41`, `mp42`, `avc1`, `iso2`…).
    Mp4,
    /// QuickTime (`qt  `), what iPhones record.
    Mov,
}

impl VideoFormat {
    pub fn name(self) -> &'static str {
        match self {
            VideoFormat::Mp4 => "mp4",
            VideoFormat::Mov => "mov",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            VideoFormat::Mp4 => "video/mp4",
            VideoFormat::Mov => "video/quicktime",
        }
    }

    /// The file name extension of outputs.
    pub fn extension(self) -> &'static str {
        self.name()
    }
}

/// Caps on a video, all read from its boxes before any sample is touched. Also the `[video]`
/// section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoLimits {
    /// Largest accepted video file, in bytes.
    pub max_file_bytes: u64,
    /// Longest accepted duration, in seconds: the longest that any of the movie header, a
    /// track header, an edit list, a media header or the sample timing claims.
    pub max_seconds: u32,
    /// Largest long side of a video track, in pixels (portrait or landscape alike).
    pub max_width: u32,
    /// Largest short side of a video track, in pixels.
    pub max_height: u32,
    /// Most tracks (`trak` boxes) in a file, kept or not.
    pub max_tracks: u32,
    /// Most samples (frames and audio packets), summed over the kept tracks.
    pub max_samples: u32,
    /// Deepest nesting of boxes walked.
    pub max_box_depth: u32,
}

impl Default for VideoLimits {
    fn default() -> Self {
        VideoLimits {
            max_file_bytes: 200 * 1024 * 1024,
            max_seconds: 60,
            max_width: 3840,
            max_height: 2160,
            max_tracks: 16,
            max_samples: 200_000,
            max_box_depth: 16,
        }
    }
}

impl VideoLimits {
    /// The settings' own bounds.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("video.max_file_bytes", self.max_file_bytes),
            ("video.max_seconds", self.max_seconds as u64),
            ("video.max_width", self.max_width as u64),
            ("video.max_height", self.max_height as u64),
            ("video.max_tracks", self.max_tracks as u64),
            ("video.max_samples", self.max_samples as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if self.max_height > self.max_width {
            return Err("video.max_height (the short side) must be at most video.max_width".into());
        }
        // A QuickTime audio description sits ten boxes deep; fewer would refuse every phone video.
        if !(10..=64).contains(&self.max_box_depth) {
            return Err("video.max_box_depth must be between 10 and 64".into());
        }
        Ok(())
    }
}

/// Random access to an input (the bytes of an upload, or a file the caller opened): a `moov`
/// may come after the samples it describes.
pub trait Source {
    /// Its length in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let part = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

#[cfg(unix)]
impl Source for std::fs::File {
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// One kept track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInfo {
    pub kind: TrackKind,
    /// The sample entry's four-character code (`avc1`, `hvc1`, `av01`, `mp4a`, `Opus`).
    pub codec: String,
    pub samples: u32,
    /// Samples that start a decode on their own (every sample when the track lists none).
    pub keyframes: u32,
}

/// What a video is, as read from its boxes (and, after a sanitize, what was dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VideoInfo {
    pub format: VideoFormat,
    /// Size of the first video track as displayed (its track header).
    pub width: u32,
    pub height: u32,
    /// The longest duration any box claims, in milliseconds.
    pub duration_ms: u64,
    pub tracks: Vec<TrackInfo>,
    /// What the sanitized copy leaves out (box types and dropped tracks), in file order.
    pub removed: Vec<String>,
    /// Bytes written by a sanitize (0 after a probe).
    pub bytes: u64,
    /// When each keyframe (sync sample) of the first video track is decoded, in ms.
    #[serde(skip)]
    pub keyframe_times_ms: Vec<u64>,
    /// The first video track is shown turned a quarter (its matrix swaps the axes): its upright
    /// frames are `height` wide and `width` high.
    #[serde(skip)]
    pub quarter_turn: bool,
    /// Frames per second of the first video track, as a fraction: its samples over its media
    /// duration.
    #[serde(skip)]
    pub frame_rate: Option<(u64, u64)>,
    /// The first video track's colour description (`colr` `nclx`/`nclc`), when it has one.
    #[serde(skip)]
    pub colour: Option<Nclx>,
}

/// A video's colour numbers (ITU-T H.273): primaries, transfer, matrix, full range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

impl Nclx {
    /// The description inside a sample entry, if it holds one (`colr` with `nclx`, or
    /// QuickTime's `nclc`, which has no range flag).
    fn find(entry: &[u8]) -> Option<Nclx> {
        let at = entry
            .windows(8)
            .position(|w| &w[..4] == b"colr" && (&w[4..] == b"nclx" || &w[4..] == b"nclc"))?;
        let b = entry.get(at + 8..at + 14)?;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        Some(Nclx {
            primaries: u16_at(0),
            transfer: u16_at(2),
            matrix: u16_at(4),
            full_range: &entry[at + 4..at + 8] == b"nclx"
                && entry.get(at + 14).is_some_and(|f| f & 0x80 != 0),
        })
    }
}

impl Serialize for VideoFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Brands of the movies accepted: the only ones a sanitized `ftyp` lists.
const VIDEO_BRANDS: &[&[u8]] = &[
    b"qt  ", b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
    b"M4V ", b"MSNV", b"3gp4", b"3gp5", b"3g2a", b"dby1",
];

/// The `ftyp` payload of the sanitized copy: the known brands of the input only (its own
/// bytes could be any text), minor version 0.
fn clean_ftyp(format: VideoFormat, payload: &[u8]) -> Vec<u8> {
    let fallback: &[u8] = match format {
        VideoFormat::Mov => b"qt  ",
        VideoFormat::Mp4 => b"isom",
    };
    let major = payload
        .get(..4)
        .filter(|m| VIDEO_BRANDS.contains(m))
        .unwrap_or(fallback);
    let mut out = major.to_vec();
    out.extend_from_slice(&[0; 4]);
    let mut listed: Vec<&[u8]> = Vec::new();
    for brand in payload.get(8..).unwrap_or_default().chunks_exact(4) {
        if VIDEO_BRANDS.contains(&brand) && !listed.contains(&brand) {
            listed.push(brand);
            out.extend_from_slice(brand);
        }
    }
    out
}

/// Whether the bytes start like a video this module takes: an `ftyp` box whose brands name an
/// MP4 or QuickTime movie and no HEIF still image (those go to the picture pipeline).
pub fn sniff_video(b: &[u8]) -> Option<VideoFormat> {
    let brands: Vec<&[u8]> = crate::sniff::ftyp_brands(b)?.collect();
    if crate::sniff::heif_kind(brands.iter().copied()).is_some() {
        return None;
    }
    let video = brands.iter().any(|brand| VIDEO_BRANDS.contains(brand));
    // The major brand decides between the two families when both are listed.
    video.then_some(if brands[0] == b"qt  " {
        VideoFormat::Mov
    } else {
        VideoFormat::Mp4
    })
}

/// Read a video's boxes and check every limit, touching no sample.
pub fn probe<S: Source + ?Sized>(src: &S, limits: &VideoLimits) -> Result<VideoInfo, IngestError> {
    let parsed = read(src, limits)?;
    Ok(parsed.info(0))
}

/// Write a sanitized copy of the video to `out`: `ftyp`, a rebuilt `moov` (allow-listed boxes
/// only, times zeroed, names and encoder strings blank), then `mdat` boxes (of at most 4 MiB
/// each, a larger chunk alone in its own) holding exactly the kept tracks' samples, copied
/// untouched in their original order. Nothing else of the input
/// reaches `out`. Memory: the `moov`, its tables and a copy buffer, never the samples.
pub fn sanitize<S: Source + ?Sized>(
    src: &S,
    limits: &VideoLimits,
    out: &mut dyn Write,
) -> Result<VideoInfo, IngestError> {
    sanitize_with(src, limits, &[], out).map(|(info, _)| info)
}

/// [`sanitize`], with `extra` written right after `ftyp` and counted in the chunk offsets: room
/// for what is filled in once the file is whole (C2PA's placeholder manifest box, signed over
/// the file that holds it). `extra` must be whole top-level boxes, each no longer than its
/// size field says. Returns also where `extra` starts.
pub fn sanitize_with<S: Source + ?Sized>(
    src: &S,
    limits: &VideoLimits,
    extra: &[u8],
    out: &mut dyn Write,
) -> Result<(VideoInfo, u64), IngestError> {
    if !whole_boxes(extra) {
        return Err(IngestError::Internal(
            "the boxes added to a sanitized video are not whole boxes".into(),
        ));
    }
    let parsed = read(src, limits)?;
    let written = write::write(src, &parsed, extra, out)?;
    let at = 8 + parsed.ftyp.len() as u64;
    Ok((parsed.info(written), at))
}

/// Whether `b` is a run of complete boxes with 32-bit sizes (what a reader walking the top
/// level would step over exactly).
fn whole_boxes(mut b: &[u8]) -> bool {
    while !b.is_empty() {
        let Some(size) = b
            .get(..4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        else {
            return false;
        };
        let size = size as usize;
        if size < 8 || size > b.len() {
            return false;
        }
        b = &b[size..];
    }
    true
}

/// The largest `moov` read into memory. A 60-second 4K clip at 240 frames per second with
/// audio needs well under 1 MiB; this leaves room for long sample tables without letting a
/// file make us hold hundreds of megabytes.
const MAX_MOOV_BYTES: u64 = 32 << 20;

pub(crate) fn corrupt(what: &str) -> IngestError {
    IngestError::Corrupt(format!("corrupt video: {what}"))
}

pub(crate) fn truncated() -> IngestError {
    IngestError::truncated("video")
}

/// Faults inside a field reader; a file that ends early is named at the top level.
pub(crate) const FAULTS: Faults = Faults { corrupt, truncated };

/// Faults of boxes nested in a box already read whole: running past it is a lie about sizes,
/// not a cut file.
const NESTED: Faults = Faults {
    corrupt,
    truncated: || corrupt("a box runs past the box holding it"),
};

fn io(e: std::io::Error) -> IngestError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => truncated(),
        _ => IngestError::Internal(format!("reading the video: {e}")),
    }
}

/// The top-level layout and the parsed movie.
pub(crate) struct Parsed {
    format: VideoFormat,
    /// The `ftyp` payload written out (`clean_ftyp`).
    ftyp: Vec<u8>,
    movie: moov::Movie,
    removed: Vec<String>,
}

impl Parsed {
    fn info(&self, bytes: u64) -> VideoInfo {
        let first_video = self
            .movie
            .tracks
            .iter()
            .find(|t| t.kind == TrackKind::Video);
        let mut removed = self.removed.clone();
        removed.extend(self.movie.removed.iter().cloned());
        VideoInfo {
            format: self.format,
            width: first_video.map(|t| t.tkhd.width >> 16).unwrap_or(0),
            height: first_video.map(|t| t.tkhd.height >> 16).unwrap_or(0),
            duration_ms: self.movie.duration_ms,
            tracks: self.movie.tracks.iter().map(moov::Track::info).collect(),
            removed,
            bytes,
            keyframe_times_ms: first_video
                .map(moov::Track::sync_times_ms)
                .unwrap_or_default(),
            // Players apply the track's matrix and the movie's: two quarter turns make a half.
            quarter_turn: first_video.is_some_and(|t| {
                quarter_turn(&t.tkhd.matrix) != quarter_turn(&self.movie.mvhd.matrix)
            }),
            // Over the samples' own durations (the headers' durations may say otherwise).
            frame_rate: first_video.and_then(|t| {
                let ticks = t.stbl.stts.iter().fold(0u64, |sum, &(n, delta)| {
                    sum.saturating_add((n as u64).saturating_mul(delta as u64))
                });
                (ticks > 0 && t.stbl.samples > 0 && t.timescale > 0)
                    .then(|| (t.stbl.samples as u64 * t.timescale as u64, ticks))
            }),
            colour: first_video.and_then(|t| Nclx::find(t.stbl.entries.first()?)),
        }
    }
}

/// Whether a display matrix turns the picture a quarter (its first entry zero, its second
/// not: the axes swap).
fn quarter_turn(matrix: &[u8; 36]) -> bool {
    matrix[..4] == [0; 4] && matrix[4..8] != [0; 4]
}

/// Walk the top level, read the `moov`, check it against the limits and the file.
fn read<S: Source + ?Sized>(src: &S, limits: &VideoLimits) -> Result<Parsed, IngestError> {
    let len = src.size();
    if len > limits.max_file_bytes {
        return Err(IngestError::FileTooLarge {
            size: len,
            limit: limits.max_file_bytes,
        });
    }
    let mut head = [0u8; 64];
    let n = head.len().min(len as usize);
    src.read_at(0, &mut head[..n]).map_err(io)?;
    let format = sniff_video(&head[..n]).ok_or_else(|| {
        IngestError::UnsupportedFormat(
            "not an MP4 or QuickTime video (no ftyp box naming one)".into(),
        )
    })?;
    let mut pos = 0u64;
    let mut ftyp = None;
    let mut moov_at = None;
    let mut mdats = Vec::new();
    let mut removed = Vec::new();
    let mut top = 0u32;
    while pos < len {
        top += 1;
        // A file of millions of tiny boxes is not a phone's video; each costs a read.
        if top > 4096 {
            return Err(IngestError::DecodeTooCostly(
                "video has more than 4096 top-level boxes".into(),
            ));
        }
        let mut h = [0u8; 16];
        let avail = (len - pos).min(16) as usize;
        if avail < 8 {
            return Err(truncated());
        }
        src.read_at(pos, &mut h[..avail]).map_err(io)?;
        let size32 = u32::from_be_bytes(h[0..4].try_into().expect("4 bytes")) as u64;
        let kind: [u8; 4] = h[4..8].try_into().expect("4 bytes");
        let (header, size) = match size32 {
            0 => (8, len - pos),
            1 if avail < 16 => return Err(truncated()),
            1 => (
                16,
                u64::from_be_bytes(h[8..16].try_into().expect("8 bytes")),
            ),
            n => (8, n),
        };
        if size < header {
            return Err(corrupt("a box is smaller than its own header"));
        }
        if size > len - pos {
            return Err(truncated());
        }
        let payload = pos + header..pos + size;
        match &kind {
            b"ftyp" if pos == 0 => {
                if size > 1024 {
                    return Err(corrupt("an ftyp box over 1 KiB"));
                }
                let mut b = vec![0u8; (size - header) as usize];
                src.read_at(payload.start, &mut b).map_err(io)?;
                ftyp = Some(clean_ftyp(format, &b));
            }
            b"moov" => {
                if moov_at.is_some() {
                    return Err(corrupt("more than one moov box"));
                }
                moov_at = Some(payload);
            }
            b"mdat" => mdats.push(payload),
            b"moof" | b"mfra" | b"sidx" | b"styp" | b"ssix" => {
                return Err(IngestError::UnsupportedFormat(
                    "fragmented MP4 (moof boxes, as streamed or cut by some editors) is not \
                     supported: save or export the clip as a regular MP4 or MOV"
                        .into(),
                ));
            }
            _ if pos == 0 => return Err(corrupt("the file does not start with an ftyp box")),
            other => removed.push(fourcc(other)),
        }
        pos += size;
    }
    let ftyp = ftyp.ok_or_else(|| corrupt("no ftyp box"))?;
    let moov_at = moov_at.ok_or_else(|| {
        corrupt("no moov box (the recording may not have been finished, or the file is cut)")
    })?;
    let moov_len = moov_at.end - moov_at.start;
    if moov_len > MAX_MOOV_BYTES {
        return Err(IngestError::DecodeTooCostly(format!(
            "video's moov box is {moov_len} bytes, over the {MAX_MOOV_BYTES} bytes read into memory"
        )));
    }
    let mut moov_bytes = vec![0u8; moov_len as usize];
    src.read_at(moov_at.start, &mut moov_bytes).map_err(io)?;
    let movie = moov::parse(&moov_bytes, limits, &mdats)?;
    drop(moov_bytes);
    // Box types repeat (several `free`); say each once.
    removed.dedup();
    Ok(Parsed {
        format,
        ftyp,
        movie,
        removed,
    })
}

/// A four-character code as text, with anything unprintable shown as `?` (box types are
/// chosen by the file).
pub(crate) fn fourcc(k: &[u8; 4]) -> String {
    k.iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The boxes in a payload, with this module's faults.
pub(crate) fn children(
    b: &[u8],
) -> impl Iterator<Item = Result<([u8; 4], std::ops::Range<usize>), IngestError>> + '_ {
    boxes(b, NESTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_tell_videos_from_still_images() {
        assert_eq!(
            sniff_video(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"),
            Some(VideoFormat::Mp4)
        );
        assert_eq!(
            sniff_video(b"\0\0\0\x14ftypqt  \0\0\0\0qt  "),
            Some(VideoFormat::Mov)
        );
        assert_eq!(
            sniff_video(b"\0\0\0\x18ftypisom\0\0\0\0isomavc1"),
            Some(VideoFormat::Mp4)
        );
        // HEIF still images (even with an ISO brand listed) and unknown brands are not videos.
        assert_eq!(sniff_video(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), None);
        assert_eq!(sniff_video(b"\0\0\0\x18ftypisom\0\0\0\0isomavif"), None);
        assert_eq!(sniff_video(b"\0\0\0\x14ftypcrx \0\0\0\0crx "), None);
        assert_eq!(sniff_video(b"\xFF\xD8\xFF\xE0"), None);
    }

    #[test]
    fn the_sanitized_ftyp_lists_known_brands_only() {
        let payload = b"isom\0\0\x02\0isomavc1Jane Doe +48.8577+002.2950 iPhone of Jane";
        assert_eq!(
            clean_ftyp(VideoFormat::Mp4, payload),
            b"isom\0\0\0\0isomavc1"
        );
        // A major brand alone (no minor version), or an unknown one, still makes a whole box.
        assert_eq!(clean_ftyp(VideoFormat::Mov, b"qt  "), b"qt  \0\0\0\0");
        assert_eq!(
            clean_ftyp(VideoFormat::Mp4, b"Jane\0\0\0\0mp42"),
            b"isom\0\0\0\0mp42"
        );
    }
}
