//! Test videos made by Debian's ffmpeg (installed by scripts/setup.sh): clips like a phone's,
//! with location, make, model, software and dates written into them, rotated, in several
//! codecs; what ffprobe and exiftool see in a file; and a box editor for hostile variants.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The video codec of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Hevc,
    Av1,
}

/// The audio of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    Aac,
    Opus,
}

/// What a phone would have written about itself and the place, in the two ways recorders do:
/// QuickTime user data (`udta` ©xyz, ©mak…) or Apple's `keys`/`mdta` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    None,
    UserData,
    AppleKeys,
}

/// A clip to make.
#[derive(Debug, Clone)]
pub struct Clip {
    pub codec: Codec,
    pub audio: Option<Audio>,
    /// QuickTime (`.mov`, brand `qt  `) rather than MP4.
    pub mov: bool,
    pub seconds: f32,
    pub width: u32,
    pub height: u32,
    pub metadata: Metadata,
    /// Display rotation in degrees (kept in the track matrix).
    pub rotate: Option<i32>,
    /// A timecode track (QuickTime `tmcd`), as cameras and editors write.
    pub timecode: bool,
    /// `moov` before `mdat`.
    pub faststart: bool,
    /// What the frames show: an ffmpeg `lavfi` source taking size, rate and duration.
    pub pattern: &'static str,
}

impl Default for Clip {
    fn default() -> Self {
        Clip {
            codec: Codec::H264,
            audio: Some(Audio::Aac),
            mov: false,
            seconds: 1.0,
            width: 320,
            height: 240,
            metadata: Metadata::UserData,
            rotate: None,
            timecode: false,
            faststart: false,
            pattern: "testsrc2",
        }
    }
}

/// A copy re-encoded as a sharing site would: H.264 at half the video's bit rate, the same
/// keyframe interval, audio copied, metadata and any C2PA manifest dropped.
pub fn reencode_half_bitrate(bytes: &[u8]) -> Vec<u8> {
    let dir = scratch();
    let input = dir.join("in.mp4");
    std::fs::write(&input, bytes).expect("write the clip");
    let probe = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=bit_rate",
        ])
        .args(["-of", "default=nw=1:nk=1"])
        .arg(&input));
    let rate: u64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .expect("the video's bit rate");
    let out = dir.join("out.mp4");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&input)
        .args(["-map", "0:v:0", "-map", "0:a?", "-map_metadata", "-1"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "15"])
        .arg("-b:v")
        .arg((rate / 2).to_string())
        .args(["-c:a", "copy"])
        .arg(&out));
    let b = std::fs::read(&out).expect("the re-encoded clip");
    let _ = std::fs::remove_dir_all(&dir);
    b
}

/// The strings a clip's metadata holds: none of them may survive a sanitize.
pub const PERSONAL: &[&str] = &[
    "+37.3349-122.0090",
    "iPhone 15 Pro",
    "Apple",
    "17.1.2",
    "2026-06-01",
    "Alice's birthday",
    "Lavf",
    "VideoHandler",
    "SoundHandler",
];

fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pixseal-video-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup.sh installs ffmpeg)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Clip {
    /// What an iPhone writes: a QuickTime movie with Apple `keys` metadata, a timecode track and
    /// a 90° display rotation.
    pub fn iphone_like() -> Clip {
        Clip {
            mov: true,
            metadata: Metadata::AppleKeys,
            rotate: Some(90),
            timecode: true,
            ..Clip::default()
        }
    }

    /// A plain MP4 with the `moov` first and no metadata: a base to edit into hostile variants.
    pub fn plain() -> Clip {
        Clip {
            faststart: true,
            metadata: Metadata::None,
            ..Clip::default()
        }
    }

    /// Make the clip with ffmpeg; panics when ffmpeg is missing or fails (a video test must
    /// never pass without its clip).
    pub fn make(&self) -> Vec<u8> {
        let dir = scratch();
        let out = dir.join(if self.mov { "clip.mov" } else { "clip.mp4" });
        let mut c = Command::new("ffmpeg");
        c.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!(
                "{}=size={}x{}:rate=30:duration={}",
                self.pattern, self.width, self.height, self.seconds
            ));
        if self.audio.is_some() {
            c.args(["-f", "lavfi", "-i"])
                .arg(format!("sine=frequency=440:duration={}", self.seconds));
        }
        match self.codec {
            Codec::H264 => c.args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "15"]),
            Codec::Hevc => c.args([
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-tag:v",
                "hvc1",
                "-x265-params",
                "log-level=error:keyint=15",
            ]),
            Codec::Av1 => c.args(["-c:v", "libaom-av1", "-cpu-used", "8", "-g", "15"]),
        };
        c.args(["-pix_fmt", "yuv420p"]);
        match self.audio {
            Some(Audio::Aac) => {
                c.args(["-c:a", "aac", "-b:a", "64k"]);
            }
            Some(Audio::Opus) => {
                c.args(["-c:a", "libopus", "-b:a", "48k"]);
            }
            None => {}
        }
        if self.timecode {
            c.args(["-timecode", "01:00:00:00"]);
        }
        let tags: &[(&str, &str)] = &[
            ("location", "+37.3349-122.0090/"),
            ("location-eng", "+37.3349-122.0090/"),
            ("make", "Apple"),
            ("model", "iPhone 15 Pro"),
            ("software", "17.1.2"),
            ("creation_time", "2026-06-01T10:00:00Z"),
            ("title", "Alice's birthday"),
            ("com.apple.quicktime.make", "Apple"),
            ("com.apple.quicktime.model", "iPhone 15 Pro"),
            ("com.apple.quicktime.software", "17.1.2"),
            (
                "com.apple.quicktime.location.ISO6709",
                "+37.3349-122.0090+010.000/",
            ),
            (
                "com.apple.quicktime.creationdate",
                "2026-06-01T12:00:00+0200",
            ),
        ];
        if self.metadata != Metadata::None {
            for (k, v) in tags {
                c.arg("-metadata").arg(format!("{k}={v}"));
            }
        }
        let mut flags = Vec::new();
        if self.metadata == Metadata::AppleKeys {
            flags.push("use_metadata_tags");
        }
        if self.faststart {
            flags.push("faststart");
        }
        let movflags = (!flags.is_empty()).then(|| format!("+{}", flags.join("+")));
        if let Some(f) = &movflags {
            c.arg("-movflags").arg(f);
        }
        let encoded = dir.join(if self.mov {
            "encoded.mov"
        } else {
            "encoded.mp4"
        });
        c.arg(if self.rotate.is_some() {
            &encoded
        } else {
            &out
        });
        run(&mut c);
        // ffmpeg 5.1 writes a display rotation only when it copies the stream.
        if let Some(r) = self.rotate {
            let mut c = Command::new("ffmpeg");
            c.args(["-v", "error", "-y", "-i"])
                .arg(&encoded)
                .args(["-map", "0", "-c", "copy", "-metadata:s:v:0"])
                .arg(format!("rotate={r}"));
            if let Some(f) = &movflags {
                c.arg("-movflags").arg(f);
            }
            c.arg(&out);
            run(&mut c);
        }
        let bytes = std::fs::read(&out).expect("clip written");
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }
}

/// Tags a sanitized file may still show: the container's brands, the "undetermined" language,
/// QuickTime's blank vendor, and the rotation that is how the video is meant to be shown.
const ALLOWED_TAGS: &[&str] = &[
    "major_brand",
    "minor_version",
    "compatible_brands",
    "language",
    "vendor_id",
    "rotate",
];

/// Fail unless nothing of a clip's metadata is left in `out`: not in its bytes, not in any tag
/// ffprobe shows (but brands, `language=und`, a blank vendor and the rotation), not in
/// exiftool's (no GPS, make, model, software, encoder, title or location; every date zero;
/// handler and compressor names empty). pixseal's own C2PA manifest (exiftool's JUMBF groups)
/// is not the clip's metadata.
pub fn assert_no_metadata(out: &[u8], what: &str) {
    for s in PERSONAL {
        assert!(
            !out.windows(s.len()).any(|w| w == s.as_bytes()),
            "{what}: the bytes still hold {s:?}"
        );
    }
    let probe = ffprobe(out);
    for line in probe.lines().filter(|l| l.contains(".tags.")) {
        let key = line
            .split(".tags.")
            .nth(1)
            .unwrap()
            .split('=')
            .next()
            .unwrap();
        assert!(
            ALLOWED_TAGS.contains(&key),
            "{what}: ffprobe still sees {line}"
        );
        if key == "language" {
            assert!(line.ends_with("\"und\""), "{what}: {line}");
        }
    }
    let tags = exiftool(out);
    // File-system facts (the scratch file's own dates) are not the video's.
    for line in tags.lines().filter(|l| {
        !["[System]", "[ExifTool]", "[JUMBF]", "[CBOR]", "[JSON]"]
            .iter()
            .any(|g| l.starts_with(g))
    }) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.trim();
        for bad in [
            "GPS", "Make", "Model", "Software", "Encoder", "Title", "Location",
        ] {
            assert!(!name.contains(bad), "{what}: exiftool still sees {line}");
        }
        if name.contains("Date") {
            assert_eq!(value, "0000:00:00 00:00:00", "{what}: exiftool sees {line}");
        }
        if name.contains("Handler Description") || name.contains("Compressor Name") {
            assert_eq!(value, "", "{what}: exiftool sees {line}");
        }
    }
}

fn with_file<R>(bytes: &[u8], f: impl FnOnce(&Path) -> R) -> R {
    let dir = scratch();
    let path = dir.join("in.mp4");
    std::fs::write(&path, bytes).expect("write");
    let r = f(&path);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Everything ffprobe reports of a file's container and streams (`key=value` lines).
pub fn ffprobe(bytes: &[u8]) -> String {
    with_file(bytes, |p| {
        let out = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_format",
                "-show_streams",
                "-of",
                "flat",
            ])
            .arg(p));
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
}

/// Every tag exiftool reads from a file (`-a -u -G1`, one `[Group] Name : value` per line).
pub fn exiftool(bytes: &[u8]) -> String {
    with_file(bytes, |p| {
        let out = run(Command::new("exiftool")
            .args(["-a", "-u", "-G1", "-ee"])
            .arg(p));
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
}

/// One MD5 per packet of the video and audio streams, as ffmpeg's demuxer hands them to a
/// decoder (`-c copy`, `framemd5`): two files with the same list carry the same samples.
pub fn packet_hashes(bytes: &[u8]) -> Vec<String> {
    with_file(bytes, |p| {
        let out = run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(p)
            .args([
                "-map", "0:v", "-map", "0:a?", "-c", "copy", "-f", "framemd5", "-",
            ]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    })
}

/// Decode every frame with ffmpeg; the number of video frames decoded, or its errors.
pub fn decode_frames(bytes: &[u8]) -> Result<u64, String> {
    with_file(bytes, |p| {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(p)
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stderr.trim().is_empty() {
            return Err(stderr.into_owned());
        }
        // The count is the first field; a rotated stream adds its side data after it.
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text.split([',', '\n']).next().unwrap_or("").trim();
        first.parse().map_err(|e| format!("{e}: {text}"))
    })
}

/// The box at `path` (e.g. `["moov", "trak", "mdia", "mdhd"]`, first match at each level):
/// its whole range in `b`, header included. Only container boxes are descended into.
pub fn find_box(b: &[u8], path: &[&str]) -> Option<Range<usize>> {
    let mut range = 0..b.len();
    let mut found = None;
    for (depth, name) in path.iter().enumerate() {
        let mut pos = range.start;
        let mut hit = None;
        while pos + 8 <= range.end {
            let size = u32::from_be_bytes(b[pos..pos + 4].try_into().ok()?) as usize;
            let size = if size == 0 { range.end - pos } else { size };
            if size < 8 || pos + size > range.end {
                return None;
            }
            if &b[pos + 4..pos + 8] == name.as_bytes() {
                hit = Some(pos..pos + size);
                break;
            }
            pos += size;
        }
        let h = hit?;
        // Full boxes among the containers walked: none but `meta` and `stsd`.
        let skip = match *name {
            "meta" => 12,
            "stsd" => 16,
            _ => 8,
        };
        if depth + 1 < path.len() {
            range = h.start + skip..h.end;
        }
        found = Some(h);
    }
    found
}

/// Write a big-endian u32 at `at`.
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
