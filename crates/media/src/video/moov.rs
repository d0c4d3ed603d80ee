//! The `moov` box read into a movie: the tracks kept (video and audio with an accepted codec)
//! and their sample tables, each count checked against the limits before anything is
//! allocated for it, the tables checked against each other and every chunk against the file.

use std::collections::HashSet;
use std::ops::Range;

use serde::Serialize;

use super::{VideoLimits, children, corrupt, fourcc};
use crate::IngestError;
use crate::boxes::Reader;

/// What a kept track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
}

/// The movie header's fields worth keeping (its times are not).
#[derive(Debug, Clone)]
pub(crate) struct Mvhd {
    pub timescale: u32,
    pub duration: u64,
    pub rate: u32,
    pub volume: u16,
    pub matrix: [u8; 36],
    pub next_track_id: u32,
}

/// The track header's fields worth keeping; the matrix is how the video is shown (rotation),
/// which is not personal.
#[derive(Debug, Clone)]
pub(crate) struct Tkhd {
    pub flags: u32,
    pub track_id: u32,
    pub duration: u64,
    pub layer: u16,
    pub alternate_group: u16,
    pub volume: u16,
    pub matrix: [u8; 36],
    /// 16.16 fixed point.
    pub width: u32,
    pub height: u32,
}

/// One edit: (segment duration, media time, rate as 16.16).
pub(crate) type Edit = (u64, i64, u32);

/// Sample sizes: one for all, or one each.
#[derive(Debug, Clone)]
pub(crate) enum Sizes {
    Same(u32),
    Each(Vec<u32>),
}

/// A kept track, ready to be written again.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub kind: TrackKind,
    pub tkhd: Tkhd,
    pub edits: Option<Vec<Edit>>,
    pub timescale: u32,
    pub media_duration: u64,
    pub stbl: SampleTable,
}

/// A track's sample table (`stbl`): what each sample is, when, how large and where.
#[derive(Debug, Clone)]
pub(crate) struct SampleTable {
    pub codec: [u8; 4],
    /// Each sample entry box, already rebuilt from its allow-list.
    pub entries: Vec<Vec<u8>>,
    pub stts: Vec<(u32, u32)>,
    /// Composition offsets: the box version (1 = signed) and its runs.
    pub ctts: Option<(u8, Vec<(u32, u32)>)>,
    pub stss: Option<Vec<u32>>,
    pub sdtp: Option<Vec<u8>>,
    pub stsc: Vec<(u32, u32, u32)>,
    pub samples: u32,
    pub sizes: Sizes,
    /// Each chunk's place in the input: offset and length.
    pub chunks: Vec<(u64, u64)>,
}

impl Track {
    /// When each sync sample is decoded, in milliseconds (every sample when none is listed).
    pub fn sync_times_ms(&self) -> Vec<u64> {
        let mut sync = self.stbl.stss.as_deref().map(|s| s.iter().peekable());
        let mut out = Vec::new();
        let (mut sample, mut time) = (1u32, 0u64);
        for &(n, delta) in &self.stbl.stts {
            for _ in 0..n {
                let is_sync = match &mut sync {
                    None => true,
                    Some(it) => it.next_if_eq(&&sample).is_some(),
                };
                if is_sync {
                    out.push((time as u128 * 1000 / self.timescale.max(1) as u128) as u64);
                }
                sample = sample.saturating_add(1);
                time = time.saturating_add(delta as u64);
            }
        }
        out
    }

    pub fn info(&self) -> super::TrackInfo {
        let t = &self.stbl;
        super::TrackInfo {
            kind: self.kind,
            codec: fourcc(&t.codec),
            samples: t.samples,
            keyframes: t.stss.as_ref().map_or(t.samples, |s| s.len() as u32),
        }
    }
}

/// The parsed movie.
#[derive(Debug, Clone)]
pub(crate) struct Movie {
    pub mvhd: Mvhd,
    pub tracks: Vec<Track>,
    /// Every chunk of every kept track as (track, chunk), in input order: the order the
    /// sanitized `mdat` keeps (it interleaves audio and video as the recorder did).
    pub layout: Vec<(u32, u32)>,
    pub duration_ms: u64,
    pub removed: Vec<String>,
}

fn too_deep(limits: &VideoLimits) -> IngestError {
    IngestError::DecodeTooCostly(format!(
        "video boxes nest deeper than the max_box_depth limit of {}",
        limits.max_box_depth
    ))
}

/// What a walk needs at every level: the limits, the depth reached and the list of what is
/// left out.
struct Walk<'l> {
    limits: &'l VideoLimits,
    removed: Vec<String>,
    /// Box types already listed: a `moov` of millions of distinct boxes costs one lookup each.
    seen: HashSet<[u8; 4]>,
}

/// Most entries in the list of what was left out; past it, one "…" says there was more.
const MAX_REMOVED: usize = 64;

impl Walk<'_> {
    fn enter(&self, depth: u32) -> Result<u32, IngestError> {
        if depth > self.limits.max_box_depth {
            return Err(too_deep(self.limits));
        }
        Ok(depth + 1)
    }
    /// Note a box type left out.
    fn drop(&mut self, kind: &[u8; 4]) {
        if self.seen.insert(*kind) {
            self.note(fourcc(kind));
        }
    }
    /// Note something else left out (a whole track, an ICC profile).
    fn note(&mut self, what: String) {
        if self.removed.len() < MAX_REMOVED {
            if !self.removed.contains(&what) {
                self.removed.push(what);
            }
        } else if self.removed.len() == MAX_REMOVED {
            self.removed.push("…".into());
        }
    }
}

fn reader(b: &[u8]) -> Reader<'_> {
    Reader::new(b, super::FAULTS)
}

/// Read the `moov` payload. `mdats` are the payload ranges of the file's `mdat` boxes, in file
/// order: every chunk must lie inside one.
pub(crate) fn parse(
    moov: &[u8],
    limits: &VideoLimits,
    mdats: &[Range<u64>],
) -> Result<Movie, IngestError> {
    let mut walk = Walk {
        limits,
        removed: Vec::new(),
        seen: HashSet::new(),
    };
    let depth = walk.enter(1)?;
    let mut mvhd = None;
    let mut tracks = Vec::new();
    // Tracks are counted before any is read: a file of 100 000 tracks costs one pass.
    let mut traks = 0u64;
    for item in children(moov) {
        traks += u64::from(&item?.0 == b"trak");
    }
    if traks > limits.max_tracks as u64 {
        return Err(IngestError::DecodeTooCostly(format!(
            "video has {traks} tracks, over the max_tracks limit of {}",
            limits.max_tracks
        )));
    }
    let mut budget = limits.max_samples as u64;
    for item in children(moov) {
        let (kind, range) = item?;
        let body = &moov[range];
        match &kind {
            b"mvhd" if mvhd.is_none() => mvhd = Some(read_mvhd(body)?),
            b"trak" => {
                if let Some(t) = read_trak(body, &mut walk, depth, &mut budget)? {
                    tracks.push(t);
                }
            }
            b"mvex" => {
                return Err(IngestError::UnsupportedFormat(
                    "fragmented MP4 (an mvex box) is not supported: save or export the clip \
                     as a regular MP4 or MOV"
                        .into(),
                ));
            }
            other => walk.drop(other),
        }
    }
    let mvhd = mvhd.ok_or_else(|| corrupt("no movie header (mvhd)"))?;
    if !tracks.iter().any(|t| t.kind == TrackKind::Video) {
        return Err(IngestError::UnsupportedFormat(
            "no video track coded with H.264, HEVC or AV1".into(),
        ));
    }
    let duration_ms = check_duration(&mvhd, &tracks, limits)?;
    let layout = check_chunks(&tracks, mdats)?;
    Ok(Movie {
        mvhd,
        tracks,
        layout,
        duration_ms,
        removed: walk.removed,
    })
}

/// Milliseconds of `units` at `timescale`; "unknown" (all ones) counts as none.
fn millis(units: u64, timescale: u32, v0: bool) -> u64 {
    if units == u64::MAX || (v0 && units == u32::MAX as u64) {
        return 0;
    }
    (units as u128 * 1000 / timescale.max(1) as u128).min(u64::MAX as u128) as u64
}

/// The longest duration anything claims, checked against `max_seconds`: a file whose header
/// says 10 s while its sample timing says an hour is an hour long.
fn check_duration(mvhd: &Mvhd, tracks: &[Track], limits: &VideoLimits) -> Result<u64, IngestError> {
    let mut longest = millis(mvhd.duration, mvhd.timescale, false);
    for t in tracks {
        let timed: u64 = t
            .stbl
            .stts
            .iter()
            .map(|&(n, d)| n as u64 * d as u64)
            .fold(0u64, u64::saturating_add);
        let edited = t
            .edits
            .iter()
            .flatten()
            .map(|e| e.0)
            .fold(0u64, u64::saturating_add);
        longest = longest
            .max(millis(t.tkhd.duration, mvhd.timescale, false))
            .max(millis(edited, mvhd.timescale, false))
            .max(millis(t.media_duration, t.timescale, false))
            .max(millis(timed, t.timescale, false));
    }
    // Whole seconds: a phone's 60-second clip has audio a few milliseconds longer (encoder
    // priming), and it is still a 60-second clip.
    if longest / 1000 > limits.max_seconds as u64 {
        return Err(IngestError::VideoTooLong {
            millis: longest,
            limit: limits.max_seconds,
        });
    }
    Ok(longest)
}

/// Every chunk inside an `mdat`, no two overlapping (so the output can never be larger than
/// the input's samples); the chunks in file order.
fn check_chunks(tracks: &[Track], mdats: &[Range<u64>]) -> Result<Vec<(u32, u32)>, IngestError> {
    let mut all: Vec<(u64, u64, u32, u32)> = Vec::new();
    for (ti, t) in tracks.iter().enumerate() {
        for (ci, &(off, len)) in t.stbl.chunks.iter().enumerate() {
            all.push((off, len, ti as u32, ci as u32));
        }
    }
    all.sort_unstable();
    let mut end_of_last = 0u64;
    for &(off, len, _, _) in &all {
        let end = off
            .checked_add(len)
            .ok_or_else(|| corrupt("a chunk's end overflows"))?;
        // The mdats are top-level boxes in file order: only the last one starting at or
        // before the chunk can hold it.
        let holder = mdats[..mdats.partition_point(|m| m.start <= off)].last();
        if holder.is_none_or(|m| end > m.end) {
            let starts_inside = holder.is_some_and(|m| off < m.end);
            return Err(if starts_inside {
                IngestError::Truncated(
                    "video samples run past the end of their mdat box (truncated file)".into(),
                )
            } else {
                corrupt("a chunk of samples lies outside every mdat box")
            });
        }
        if off < end_of_last {
            return Err(corrupt("two chunks of samples overlap"));
        }
        end_of_last = end;
    }
    Ok(all.into_iter().map(|(_, _, t, c)| (t, c)).collect())
}

fn matrix(r: &mut Reader<'_>) -> Result<[u8; 36], IngestError> {
    Ok(r.take(36)?.try_into().expect("36 bytes"))
}

fn read_mvhd(b: &[u8]) -> Result<Mvhd, IngestError> {
    let mut r = reader(b);
    let (v, _) = r.full()?;
    let (timescale, duration) = if v == 1 {
        r.take(16)?;
        (r.u32()?, r.u64()?)
    } else {
        r.take(8)?;
        let ts = r.u32()?;
        let d = r.u32()?;
        (ts, if d == u32::MAX { u64::MAX } else { d as u64 })
    };
    if timescale == 0 {
        return Err(corrupt("the movie's timescale is 0"));
    }
    let rate = r.u32()?;
    let volume = r.u16()?;
    r.take(10)?;
    let matrix = matrix(&mut r)?;
    r.take(24)?;
    let next_track_id = r.u32()?;
    Ok(Mvhd {
        timescale,
        duration,
        rate,
        volume,
        matrix,
        next_track_id,
    })
}

fn read_tkhd(b: &[u8]) -> Result<Tkhd, IngestError> {
    let mut r = reader(b);
    let (v, flags) = r.full()?;
    let (track_id, duration) = if v == 1 {
        r.take(16)?;
        let id = r.u32()?;
        r.u32()?;
        (id, r.u64()?)
    } else {
        r.take(8)?;
        let id = r.u32()?;
        r.u32()?;
        let d = r.u32()?;
        (id, if d == u32::MAX { u64::MAX } else { d as u64 })
    };
    r.take(8)?;
    let layer = r.u16()?;
    let alternate_group = r.u16()?;
    let volume = r.u16()?;
    r.u16()?;
    let matrix = matrix(&mut r)?;
    let width = r.u32()?;
    let height = r.u32()?;
    Ok(Tkhd {
        flags,
        track_id,
        duration,
        layer,
        alternate_group,
        volume,
        matrix,
        width,
        height,
    })
}

/// Most edits kept: recorders write one or two.
const MAX_EDITS: u32 = 64;

fn read_elst(b: &[u8]) -> Result<Vec<Edit>, IngestError> {
    let mut r = reader(b);
    let (v, _) = r.full()?;
    let n = r.u32()?;
    if n > MAX_EDITS {
        return Err(corrupt("an edit list of more than 64 edits"));
    }
    let mut edits = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let e = if v == 1 {
            (r.u64()?, r.u64()? as i64, r.u32()?)
        } else {
            let d = r.u32()? as u64;
            (d, r.u32()? as i32 as i64, r.u32()?)
        };
        edits.push(e);
    }
    Ok(edits)
}

/// Media timescale, duration and handler of a track's `mdia`.
struct Mdia<'a> {
    timescale: u32,
    duration: u64,
    handler: Option<[u8; 4]>,
    minf: Option<&'a [u8]>,
}

fn read_mdia<'a>(b: &'a [u8], walk: &mut Walk<'_>) -> Result<Mdia<'a>, IngestError> {
    let mut m = Mdia {
        timescale: 0,
        duration: 0,
        handler: None,
        minf: None,
    };
    for item in children(b) {
        let (kind, range) = item?;
        let body = &b[range];
        match &kind {
            b"mdhd" => {
                let mut r = reader(body);
                let (v, _) = r.full()?;
                if v == 1 {
                    r.take(16)?;
                    m.timescale = r.u32()?;
                    m.duration = r.u64()?;
                } else {
                    r.take(8)?;
                    m.timescale = r.u32()?;
                    let d = r.u32()?;
                    m.duration = if d == u32::MAX { u64::MAX } else { d as u64 };
                }
            }
            b"hdlr" if m.handler.is_none() => {
                let mut r = reader(body);
                r.full()?;
                r.u32()?; // pre_defined (QuickTime: the component type)
                m.handler = Some(r.take(4)?.try_into().expect("4 bytes"));
            }
            b"minf" => m.minf = Some(body),
            other => walk.drop(other),
        }
    }
    Ok(m)
}

/// One track: `Some` when kept, `None` when it is dropped whole (metadata, timecode, chapters,
/// subtitles, hint tracks…), which `walk` notes.
fn read_trak(
    b: &[u8],
    walk: &mut Walk<'_>,
    depth: u32,
    budget: &mut u64,
) -> Result<Option<Track>, IngestError> {
    let depth = walk.enter(depth)?;
    let mut tkhd = None;
    let mut edits = None;
    let mut mdia = None;
    for item in children(b) {
        let (kind, range) = item?;
        let body = &b[range];
        match &kind {
            b"tkhd" if tkhd.is_none() => tkhd = Some(read_tkhd(body)?),
            b"edts" => {
                walk.enter(depth)?;
                for e in children(body) {
                    let (k, r) = e?;
                    if &k == b"elst" && edits.is_none() {
                        edits = Some(read_elst(&body[r])?);
                    }
                }
            }
            b"mdia" if mdia.is_none() => mdia = Some(read_mdia(body, walk)?),
            other => walk.drop(other),
        }
    }
    let tkhd = tkhd.ok_or_else(|| corrupt("a track without a track header (tkhd)"))?;
    let mdia = mdia.ok_or_else(|| corrupt("a track without media (mdia)"))?;
    let handler = mdia
        .handler
        .ok_or_else(|| corrupt("a track without a handler (hdlr)"))?;
    let kind = match &handler {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        other => {
            walk.note(format!("{} track", fourcc(other)));
            return Ok(None);
        }
    };
    if mdia.timescale == 0 {
        return Err(corrupt("a track's timescale is 0"));
    }
    let minf = mdia
        .minf
        .ok_or_else(|| corrupt("a track without media information (minf)"))?;
    let depth = walk.enter(depth)?;
    let mut stbl = None;
    for item in children(minf) {
        let (k, r) = item?;
        let body = &minf[r];
        match &k {
            b"stbl" if stbl.is_none() => stbl = Some(body),
            b"dinf" => check_dinf(body)?,
            b"vmhd" | b"smhd" => {} // written again from scratch
            other => walk.drop(other),
        }
    }
    let stbl = stbl.ok_or_else(|| corrupt("a track without a sample table (stbl)"))?;
    let stbl = read_stbl(stbl, kind, walk, depth, budget)?;
    if kind == TrackKind::Video {
        check_size(&stbl, &tkhd, walk.limits)?;
    }
    Ok(Some(Track {
        kind,
        tkhd,
        edits,
        timescale: mdia.timescale,
        media_duration: mdia.duration,
        stbl,
    }))
}

/// A data reference that is not "in this file" would point the samples at another file.
fn check_dinf(b: &[u8]) -> Result<(), IngestError> {
    for item in children(b) {
        let (k, r) = item?;
        if &k != b"dref" {
            continue;
        }
        let mut d = reader(&b[r]);
        d.full()?;
        let n = d.u32()?;
        for e in children(d.rest()).take(n as usize) {
            let (_, er) = e?;
            let (_, flags) = reader(&d.rest()[er]).full()?;
            if flags & 1 == 0 {
                return Err(IngestError::UnsupportedFormat(
                    "the video's samples are kept in another file (an external data reference)"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

/// A video track's size (as shown, and as coded) within the limits, long side against
/// `max_width` and short side against `max_height`, whichever way the phone was held.
fn check_size(stbl: &SampleTable, tkhd: &Tkhd, limits: &VideoLimits) -> Result<(), IngestError> {
    let coded = stbl.entries.iter().map(|e| {
        (
            u16::from_be_bytes([e[32], e[33]]),
            u16::from_be_bytes([e[34], e[35]]),
        )
    });
    let shown = std::iter::once(((tkhd.width >> 16) as u16, (tkhd.height >> 16) as u16));
    for (w, h) in coded.chain(shown) {
        let (long, short) = (w.max(h) as u32, w.min(h) as u32);
        if long > limits.max_width || short > limits.max_height {
            return Err(IngestError::VideoTooLarge {
                width: w as u32,
                height: h as u32,
                max_width: limits.max_width,
                max_height: limits.max_height,
            });
        }
    }
    Ok(())
}

/// Fixed-size entries of a table box: its count, checked against what the box holds before
/// anything is allocated for them.
fn table<'a>(
    r: &mut Reader<'a>,
    entry: usize,
    what: &str,
) -> Result<(usize, Reader<'a>), IngestError> {
    let n = r.u32()? as usize;
    if n.checked_mul(entry).is_none_or(|bytes| bytes > r.left()) {
        return Err(corrupt(&format!(
            "{what} lists {n} entries but holds fewer"
        )));
    }
    let body = r.take(n * entry)?;
    Ok((n, reader(body)))
}

fn pairs(b: &[u8], what: &str) -> Result<(u8, Vec<(u32, u32)>), IngestError> {
    let mut r = reader(b);
    let (v, _) = r.full()?;
    let (n, mut t) = table(&mut r, 8, what)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((t.u32()?, t.u32()?));
    }
    Ok((v, out))
}

fn read_stbl(
    b: &[u8],
    kind: TrackKind,
    walk: &mut Walk<'_>,
    depth: u32,
    budget: &mut u64,
) -> Result<SampleTable, IngestError> {
    let depth = walk.enter(depth)?;
    let mut parts: [Option<&[u8]>; 9] = [None; 9];
    const NAMES: [&[u8; 4]; 9] = [
        b"stsd", b"stts", b"ctts", b"stss", b"sdtp", b"stsc", b"stsz", b"stz2", b"stco",
    ];
    let mut co64 = None;
    for item in children(b) {
        let (k, r) = item?;
        let body = &b[r];
        if let Some(i) = NAMES.iter().position(|n| **n == k) {
            if parts[i].replace(body).is_some() {
                return Err(corrupt(&format!("two {} boxes in a track", fourcc(&k))));
            }
        } else if &k == b"co64" {
            if co64.replace(body).is_some() {
                return Err(corrupt("two co64 boxes in a track"));
            }
        } else {
            walk.drop(&k);
        }
    }
    let [stsd, stts, ctts, stss, sdtp, stsc, stsz, stz2, stco] = parts;
    let missing = |n: &str| corrupt(&format!("a track's sample table has no {n} box"));
    let (codec, entries) = read_stsd(stsd.ok_or_else(|| missing("stsd"))?, kind, walk, depth)?;

    // Sizes first: their count is the track's sample count, checked against the budget
    // before any table is allocated.
    let (samples, sizes) = match (stsz, stz2) {
        (Some(b), None) => {
            let mut r = reader(b);
            r.full()?;
            let same = r.u32()?;
            let n = r.u32()?;
            spend(budget, n, walk.limits)?;
            if same != 0 {
                (n, Sizes::Same(same))
            } else {
                if (n as usize).checked_mul(4).is_none_or(|l| l > r.left()) {
                    return Err(corrupt(&format!(
                        "stsz lists {n} sample sizes but holds fewer"
                    )));
                }
                let mut each = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    each.push(r.u32()?);
                }
                (n, Sizes::Each(each))
            }
        }
        (None, Some(b)) => {
            let mut r = reader(b);
            r.full()?;
            r.take(3)?;
            let bits = r.u8()? as usize;
            let n = r.u32()?;
            spend(budget, n, walk.limits)?;
            if !matches!(bits, 4 | 8 | 16) {
                return Err(corrupt("stz2 field size other than 4, 8 or 16"));
            }
            if (n as usize).saturating_mul(bits).div_ceil(8) > r.left() {
                return Err(corrupt(&format!(
                    "stz2 lists {n} sample sizes but holds fewer"
                )));
            }
            let raw = r.rest();
            let each = (0..n as usize)
                .map(|i| match bits {
                    4 => (raw[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) as u32 & 0xF,
                    8 => raw[i] as u32,
                    _ => u16::from_be_bytes([raw[2 * i], raw[2 * i + 1]]) as u32,
                })
                .collect();
            (n, Sizes::Each(each))
        }
        (None, None) => return Err(missing("stsz")),
        (Some(_), Some(_)) => return Err(corrupt("both stsz and stz2 in a track")),
    };
    if samples == 0 {
        return Err(corrupt("a track with no samples"));
    }

    let (_, stts) = pairs(stts.ok_or_else(|| missing("stts"))?, "stts")?;
    let timed = stts.iter().map(|&(n, _)| n as u64).sum::<u64>();
    if timed != samples as u64 {
        return Err(corrupt(&format!(
            "stts times {timed} samples, stsz sizes {samples}"
        )));
    }
    let ctts = ctts.map(|b| pairs(b, "ctts")).transpose()?;
    if let Some((_, runs)) = &ctts {
        let n = runs.iter().map(|&(n, _)| n as u64).sum::<u64>();
        if n != samples as u64 {
            return Err(corrupt(&format!(
                "ctts offsets {n} samples, stsz sizes {samples}"
            )));
        }
    }
    let stss = stss
        .map(|b| -> Result<Vec<u32>, IngestError> {
            let mut r = reader(b);
            r.full()?;
            let (n, mut t) = table(&mut r, 4, "stss")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let s = t.u32()?;
                if s == 0 || s > samples || out.last().is_some_and(|&l| s <= l) {
                    return Err(corrupt("stss lists a sample out of order or range"));
                }
                out.push(s);
            }
            Ok(out)
        })
        .transpose()?;
    // Sample dependencies are one byte per sample; a table of another length is left out
    // rather than trusted.
    let sdtp = sdtp
        .map(|b| b.get(4..).unwrap_or_default().to_vec())
        .filter(|d| d.len() == samples as usize);

    let offsets: Vec<u64> = match (stco, co64) {
        (Some(b), None) => {
            let mut r = reader(b);
            r.full()?;
            let (n, mut t) = table(&mut r, 4, "stco")?;
            check_chunk_count(n, samples)?;
            (0..n)
                .map(|_| t.u32().map(u64::from))
                .collect::<Result<_, _>>()?
        }
        (None, Some(b)) => {
            let mut r = reader(b);
            r.full()?;
            let (n, mut t) = table(&mut r, 8, "co64")?;
            check_chunk_count(n, samples)?;
            (0..n).map(|_| t.u64()).collect::<Result<_, _>>()?
        }
        (None, None) => return Err(missing("stco")),
        (Some(_), Some(_)) => return Err(corrupt("both stco and co64 in a track")),
    };

    let stsc = {
        let mut r = reader(stsc.ok_or_else(|| missing("stsc"))?);
        r.full()?;
        let (n, mut t) = table(&mut r, 12, "stsc")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push((t.u32()?, t.u32()?, t.u32()?));
        }
        out
    };
    let chunks = chunk_extents(&stsc, &offsets, &sizes, samples, entries.len())?;
    Ok(SampleTable {
        codec,
        entries,
        stts,
        ctts,
        stss,
        sdtp,
        stsc,
        samples,
        sizes,
        chunks,
    })
}

/// Take `n` samples from what the limits allow in all.
fn spend(budget: &mut u64, n: u32, limits: &VideoLimits) -> Result<(), IngestError> {
    *budget = budget.checked_sub(n as u64).ok_or_else(|| {
        IngestError::DecodeTooCostly(format!(
            "video has more samples than the max_samples limit of {}",
            limits.max_samples
        ))
    })?;
    Ok(())
}

fn check_chunk_count(chunks: usize, samples: u32) -> Result<(), IngestError> {
    if chunks == 0 || chunks > samples as usize {
        return Err(corrupt(&format!("{chunks} chunks for {samples} samples")));
    }
    Ok(())
}

/// Each chunk's offset and length, from the sample-to-chunk runs and the sample sizes; the
/// runs must cover every chunk and exactly the track's samples.
fn chunk_extents(
    stsc: &[(u32, u32, u32)],
    offsets: &[u64],
    sizes: &Sizes,
    samples: u32,
    descriptions: usize,
) -> Result<Vec<(u64, u64)>, IngestError> {
    let bad = |what: &str| corrupt(&format!("sample-to-chunk table: {what}"));
    if stsc.first().is_none_or(|r| r.0 != 1) {
        return Err(bad("it does not start at chunk 1"));
    }
    let chunks = offsets.len() as u64;
    let mut out = Vec::with_capacity(offsets.len());
    let mut sample = 0u64;
    for (i, &(first, per_chunk, description)) in stsc.iter().enumerate() {
        let next = stsc.get(i + 1).map_or(chunks + 1, |r| r.0 as u64);
        if next <= first as u64 || next > chunks + 1 {
            return Err(bad("runs out of order or past the last chunk"));
        }
        if per_chunk == 0 || description == 0 || description as usize > descriptions {
            return Err(bad(
                "a run with no samples or an unknown sample description",
            ));
        }
        for chunk in first as u64..next {
            let end = sample + per_chunk as u64;
            if end > samples as u64 {
                return Err(bad("it places more samples than the track has"));
            }
            let len = match sizes {
                Sizes::Same(s) => *s as u64 * per_chunk as u64,
                Sizes::Each(each) => each[sample as usize..end as usize]
                    .iter()
                    .map(|&s| s as u64)
                    .sum(),
            };
            out.push((offsets[(chunk - 1) as usize], len));
            sample = end;
        }
    }
    if sample != samples as u64 {
        return Err(bad("it places fewer samples than the track has"));
    }
    Ok(out)
}

/// The accepted codecs of a track kind, with the configuration box each needs.
fn accepted(kind: TrackKind, codec: &[u8; 4]) -> Option<&'static [u8; 4]> {
    match (kind, codec) {
        (TrackKind::Video, b"avc1" | b"avc3") => Some(b"avcC"),
        (TrackKind::Video, b"hvc1" | b"hev1" | b"dvh1" | b"dvhe") => Some(b"hvcC"),
        (TrackKind::Video, b"av01") => Some(b"av1C"),
        (TrackKind::Audio, b"mp4a") => Some(b"esds"),
        (TrackKind::Audio, b"Opus") => Some(b"dOps"),
        _ => None,
    }
}

/// Boxes kept inside a video sample entry: codec configuration, colour, aspect, bit rate and
/// HDR descriptions — numbers the decoder needs, nothing about who recorded it.
const VISUAL_CHILDREN: &[&[u8; 4]] = &[
    b"avcC", b"hvcC", b"lhvC", b"av1C", b"colr", b"pasp", b"btrt", b"clap", b"fiel", b"dvcC",
    b"dvvC", b"dvwC", b"mdcv", b"clli", b"SmDm", b"CoLL", b"amve",
];
/// Boxes kept inside an audio sample entry.
const AUDIO_CHILDREN: &[&[u8; 4]] = &[b"esds", b"dOps", b"btrt", b"chan", b"wave"];
/// Boxes kept inside QuickTime's `wave` (with its zero terminator).
const WAVE_CHILDREN: &[&[u8; 4]] = &[b"frma", b"mp4a", b"esds", b"enda", b"\0\0\0\0"];

/// Most sample descriptions in a track (recorders write one).
const MAX_DESCRIPTIONS: u32 = 8;

fn read_stsd(
    b: &[u8],
    kind: TrackKind,
    walk: &mut Walk<'_>,
    depth: u32,
) -> Result<([u8; 4], Vec<Vec<u8>>), IngestError> {
    let depth = walk.enter(depth)?;
    let mut r = reader(b);
    r.full()?;
    let n = r.u32()?;
    if n == 0 || n > MAX_DESCRIPTIONS {
        return Err(corrupt(&format!("{n} sample descriptions in a track")));
    }
    let mut codec = None;
    let mut entries = Vec::new();
    for item in children(r.rest()).take(n as usize) {
        let (k, range) = item?;
        if matches!(&k, b"encv" | b"enca" | b"drmi" | b"drms") {
            return Err(IngestError::UnsupportedFormat(
                "encrypted (DRM-protected) video is not supported".into(),
            ));
        }
        let Some(config) = accepted(kind, &k) else {
            return Err(IngestError::UnsupportedFormat(match kind {
                TrackKind::Video => format!(
                    "video coded as '{}' is not supported (H.264, HEVC or AV1)",
                    fourcc(&k)
                ),
                TrackKind::Audio => format!(
                    "audio coded as '{}' is not supported (AAC or Opus)",
                    fourcc(&k)
                ),
            }));
        };
        if codec.is_some_and(|c| c != k) {
            return Err(IngestError::UnsupportedFormat(
                "a track that switches codec midway is not supported".into(),
            ));
        }
        codec = Some(k);
        entries.push(sample_entry(
            &k,
            &r.rest()[range],
            kind,
            config,
            walk,
            depth,
        )?);
    }
    if entries.len() != n as usize {
        return Err(corrupt(
            "stsd holds fewer sample descriptions than it lists",
        ));
    }
    Ok((codec.expect("at least one entry"), entries))
}

/// Fixed fields of a visual sample entry after its 8-byte preamble.
const VISUAL_FIELDS: usize = 70;
/// Fixed fields of an audio sample entry after its 8-byte preamble (versions 0).
const AUDIO_FIELDS: usize = 20;

/// One sample entry rebuilt: the fields copied, the encoder name and vendor blanked, only the
/// allow-listed child boxes kept. The whole box, header included.
fn sample_entry(
    k: &[u8; 4],
    b: &[u8],
    kind: TrackKind,
    config: &[u8; 4],
    walk: &mut Walk<'_>,
    depth: u32,
) -> Result<Vec<u8>, IngestError> {
    let depth = walk.enter(depth)?;
    let mut r = reader(b);
    r.take(8)?; // reserved, and the data reference: the output has one, "this file"
    let mut out = Vec::with_capacity(b.len() + 8);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(k);
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&1u16.to_be_bytes());
    let allowed = match kind {
        TrackKind::Video => {
            let f = r.take(VISUAL_FIELDS)?;
            let (w, h) = (
                u16::from_be_bytes([f[16], f[17]]),
                u16::from_be_bytes([f[18], f[19]]),
            );
            if w == 0 || h == 0 {
                return Err(corrupt("a video sample description of zero size"));
            }
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&f[16..34]); // size, resolution, reserved, frame count
            out.extend_from_slice(&[0; 32]); // compressor name: often the encoder's
            out.extend_from_slice(&f[66..68]); // depth
            out.extend_from_slice(&[0xFF, 0xFF]);
            VISUAL_CHILDREN
        }
        TrackKind::Audio => {
            let f = r.take(AUDIO_FIELDS)?;
            let version = u16::from_be_bytes([f[0], f[1]]);
            let extra = match version {
                0 => 0,
                1 => 16,
                2 => 36,
                _ => return Err(corrupt("an audio sample description of unknown version")),
            };
            out.extend_from_slice(&f[0..2]);
            out.extend_from_slice(&[0; 6]); // revision and vendor
            out.extend_from_slice(&f[8..20]);
            out.extend_from_slice(r.take(extra)?);
            AUDIO_CHILDREN
        }
    };
    let mut has_config = false;
    keep_children(
        r.rest(),
        allowed,
        walk,
        depth,
        &mut out,
        &mut has_config,
        config,
    )?;
    if !has_config {
        return Err(corrupt(&format!(
            "a '{}' sample description without its '{}' box",
            fourcc(k),
            fourcc(config)
        )));
    }
    let len = u32::try_from(out.len()).map_err(|_| corrupt("a sample description too large"))?;
    out[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Copy the allow-listed child boxes of `b` to `out` (QuickTime's `wave` rebuilt from its own
/// list), noting the rest as removed; `has_config` is set when `config` is among them.
fn keep_children(
    b: &[u8],
    allowed: &[&[u8; 4]],
    walk: &mut Walk<'_>,
    depth: u32,
    out: &mut Vec<u8>,
    has_config: &mut bool,
    config: &[u8; 4],
) -> Result<(), IngestError> {
    let depth = walk.enter(depth)?;
    for item in children(b) {
        let (k, range) = item?;
        let body = &b[range.clone()];
        // `nclx` (ISO) and `nclc` (QuickTime) are colour numbers; any other `colr` is a profile.
        let profile = &k == b"colr" && !(body.starts_with(b"nclx") || body.starts_with(b"nclc"));
        if profile {
            walk.note("colr (ICC profile)".into());
            continue;
        }
        if !allowed.contains(&&k) {
            walk.drop(&k);
            continue;
        }
        *has_config |= &k == config;
        if &k == b"wave" {
            let start = out.len();
            out.extend_from_slice(&[0, 0, 0, 0, b'w', b'a', b'v', b'e']);
            keep_children(body, WAVE_CHILDREN, walk, depth, out, has_config, config)?;
            let len = (out.len() - start) as u32;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        } else {
            let len = (body.len() + 8) as u32;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(body);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_to_chunk_runs_cover_exactly_the_samples() {
        let sizes = Sizes::Each(vec![10, 20, 30, 40, 50]);
        let offsets = [100, 200, 300];
        // Chunks 1 and 2 hold two samples each, chunk 3 one.
        let c = chunk_extents(&[(1, 2, 1), (3, 1, 1)], &offsets, &sizes, 5, 1).unwrap();
        assert_eq!(c, vec![(100, 30), (200, 70), (300, 50)]);
        // Too many samples placed, too few, a run past the end, an unknown description.
        for stsc in [
            &[(1, 2, 1)][..],
            &[(1, 1, 1)],
            &[(1, 2, 1), (4, 1, 1)],
            &[(1, 2, 2), (3, 1, 1)],
            &[(2, 2, 1)],
            &[(1, u32::MAX, 1)],
        ] {
            let e = chunk_extents(stsc, &offsets, &sizes, 5, 1).unwrap_err();
            assert_eq!(e.code(), "corrupt", "{stsc:?}");
        }
    }
}
