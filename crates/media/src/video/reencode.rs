//! A sanitized video's picture re-encoded with every frame passed through the caller's hands
//! (the invisible watermark): one `ffmpeg` child decodes the first video track to upright
//! frames in their own YUV 4:2:0 at a constant rate, the caller changes each frame's luma in
//! place, a second child encodes
//! them with libx264, its sound tracks copied as they are. Both children are capped as the
//! keyframe decoder is (address space, CPU time, no core dump, files only), and killed at one
//! deadline for the whole re-encode. One frame is held at a time.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{VideoFormat, VideoInfo};
use crate::{IngestError, Pixels};

/// How the frames are encoded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReencodeOptions {
    /// libx264's constant rate factor: 18 is visually lossless for most footage, and leaves the
    /// watermark's low-amplitude pattern in place.
    pub crf: u8,
    /// libx264's speed preset.
    pub preset: &'static str,
    /// A keyframe at least this often (seeking, and the keyframes' perceptual hashes).
    pub keyframe_every: Duration,
    /// Both children are killed past this.
    pub timeout: Duration,
    /// Address space of each child, in bytes.
    pub max_memory: u64,
}

impl Default for ReencodeOptions {
    fn default() -> Self {
        ReencodeOptions {
            crf: 18,
            preset: "fast",
            keyframe_every: Duration::from_secs(2),
            timeout: Duration::from_secs(30 * 60),
            max_memory: 4 << 30,
        }
    }
}

/// The frame rate as ffmpeg takes it: `num/den`, reduced (a phone's variable rate becomes its
/// average).
fn rate_arg(info: &VideoInfo) -> Result<String, IngestError> {
    let (num, den) = info
        .frame_rate
        .filter(|&(n, d)| n > 0 && d > 0 && n / d <= 240)
        .ok_or_else(|| {
            IngestError::Corrupt("corrupt video: no frame rate to re-encode at".into())
        })?;
    let g = gcd(num, den);
    Ok(format!("{}/{}", num / g, den / g))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// The capped `ffmpeg` command every child starts from. Its CPU time is capped at the deadline
/// times the cores (the encoder's threads all count), so the wall-clock deadline is what stops
/// a slow re-encode.
fn ffmpeg(opts: &ReencodeOptions) -> Command {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={}", opts.max_memory))
        .arg(format!("--cpu={}", opts.timeout.as_secs().max(1) * cores))
        .arg("--core=0") // a crash must not write the user's frames to disk
        .args([
            "--",
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-nostdin",
            "-v",
            "error",
        ])
        .args(["-protocol_whitelist", "file,pipe"]);
    c
}

/// Re-encode the sanitized video at `clean` (its `info` as the sanitize said) into `out`, each
/// decoded frame handed to `mark` first. `out` is a new file in the same container family;
/// sanitize it before use (its container carries what the muxer writes). Returns the number
/// of frames encoded. x264 writes its
/// version and settings into the first frame's bitstream (an SEI message no metadata tool
/// reads), which stays.
pub fn reencode(
    clean: &Path,
    info: &VideoInfo,
    out: &Path,
    opts: &ReencodeOptions,
    mark: &mut (dyn FnMut(&mut Pixels) + Send),
) -> Result<u64, IngestError> {
    let started = std::time::Instant::now();
    let rate = rate_arg(info)?;
    let (width, height) = super::FrameShape::Upright {
        max_short: u32::MAX,
    }
    .size(info);
    let gop = {
        let (n, d) = info.frame_rate.unwrap_or((30, 1));
        (n * opts.keyframe_every.as_secs().max(1) / d).clamp(1, 600)
    };
    let spawn_failed = |e: std::io::Error| {
        IngestError::Internal(format!(
            "cannot start ffmpeg to re-encode ({e}); scripts/setup.sh installs it"
        ))
    };
    let mut decoder = ffmpeg(opts)
        .args(["-format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2"])
        .args(["-codec_whitelist", "h264,hevc,libdav1d,av1"])
        .arg("-i")
        .arg(clean)
        .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
        .arg("-vf")
        .arg(format!("scale={width}:{height}:flags=bicubic"))
        .args(["-fps_mode", "cfr", "-r", &rate])
        .args(["-pix_fmt", "yuv420p", "-f", "rawvideo", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_failed)?;
    let container = match info.format {
        VideoFormat::Mov => "mov",
        VideoFormat::Mp4 => "mp4",
    };
    let encoder = ffmpeg(opts)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p"])
        .args(["-s", &format!("{width}x{height}"), "-framerate", &rate])
        .args(["-i", "pipe:0"])
        .args(["-format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2"])
        .arg("-i")
        .arg(clean)
        .args(["-map", "0:v:0", "-map", "1:a?", "-c:a", "copy"])
        .args(["-map_metadata", "-1", "-map_chapters", "-1"])
        .args(["-c:v", "libx264", "-preset", opts.preset])
        .args(["-crf", &opts.crf.to_string(), "-g", &gop.to_string()])
        .args(["-pix_fmt", "yuv420p"])
        .args(colour_args(info.colour))
        .args(["-fflags", "+bitexact", "-f", container, "-y"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut encoder = match encoder {
        Ok(c) => c,
        Err(e) => {
            let _ = decoder.kill();
            let _ = decoder.wait();
            return Err(spawn_failed(e));
        }
    };
    // 4:2:0: the luma plane, then the two chroma planes at half size each way.
    let luma_len = width as usize * height as usize;
    let frame_len = luma_len + 2 * ((width as usize / 2) * (height as usize / 2));
    let mut frames_out = decoder.stdout.take().expect("piped stdout");
    let mut frames_in = encoder.stdin.take().expect("piped stdin");
    let decoder_said = tail_of(decoder.stderr.take().expect("piped stderr"));
    let encoder_said = tail_of(encoder.stderr.take().expect("piped stderr"));
    let (done_tx, done_rx) = mpsc::channel();
    let (counted, timed_out) = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let mut frame = vec![0u8; frame_len];
            let mut px = Pixels::new(width, height, 3, vec![0; luma_len * 3]);
            let mut n = 0u64;
            let mut broken = false;
            loop {
                if frames_out.read_exact(&mut frame).is_err() {
                    break;
                }
                mark_luma(&mut frame[..luma_len], &mut px, mark);
                if frames_in.write_all(&frame).is_err() {
                    broken = true;
                    break;
                }
                n += 1;
            }
            drop(frames_in);
            let _ = done_tx.send(());
            (n, broken)
        });
        let timed_out = matches!(
            done_rx.recv_timeout(opts.timeout),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            let _ = decoder.kill();
            let _ = encoder.kill();
        }
        let counted = worker.join();
        if !matches!(counted, Ok((_, false))) {
            // The encoder stopped taking frames (or the caller's hand failed): the decoder
            // would wait on a full pipe for ever.
            let _ = decoder.kill();
        }
        (counted, timed_out)
    });
    // The encoder finishes its last frames within what is left of the deadline.
    let left = opts.timeout.saturating_sub(started.elapsed());
    let decoded = decoder.wait().ok();
    let encoded = super::frames::exit_within(&mut encoder, left);
    let _ = encoder.wait();
    let (decoder_said, encoder_said) = (decoder_said.join(), encoder_said.join());
    if timed_out || encoded.is_none() {
        return Err(IngestError::DecodeTooCostly(format!(
            "re-encoding the video took over {} s",
            opts.timeout.as_secs()
        )));
    }
    let ran = |s: Option<std::process::ExitStatus>| s.and_then(|s| s.code());
    if matches!(ran(decoded), Some(126 | 127)) || matches!(ran(encoded), Some(126 | 127)) {
        return Err(IngestError::Internal(
            "ffmpeg cannot be run to re-encode; scripts/setup.sh installs it".into(),
        ));
    }
    let (frames, broken) =
        counted.map_err(|_| IngestError::Internal("marking a frame failed".into()))?;
    if broken {
        return Err(IngestError::Internal(format!(
            "the encoder failed{}",
            said(encoder_said)
        )));
    }
    if !decoded.is_some_and(|s| s.success()) || frames == 0 {
        return Err(IngestError::Corrupt(format!(
            "corrupt video: its frames do not decode{}",
            said(decoder_said)
        )));
    }
    if !encoded.is_some_and(|s| s.success()) {
        return Err(IngestError::Internal(format!(
            "the encoder failed{}",
            said(encoder_said)
        )));
    }
    Ok(frames)
}

/// Hands the luma plane to `mark` as a grey RGB picture and takes back its luma. The frames
/// stay in the video's own YUV: no colour conversion happens on the way (the watermark is a
/// luma pattern, and the chroma planes pass untouched).
fn mark_luma(luma: &mut [u8], px: &mut Pixels, mark: &mut (dyn FnMut(&mut Pixels) + Send)) {
    for (rgb, &y) in px.data.chunks_exact_mut(3).zip(luma.iter()) {
        rgb.fill(y);
    }
    mark(px);
    for (y, rgb) in luma.iter_mut().zip(px.data.chunks_exact(3)) {
        // BT.601 weights, as the watermark measures luma.
        let l = 299 * rgb[0] as u32 + 587 * rgb[1] as u32 + 114 * rgb[2] as u32;
        *y = ((l + 500) / 1000) as u8;
    }
}

/// The encoder's colour tags: the input's own numbers, where ffmpeg has a name for them (an
/// untagged input stays untagged, so players guess as they did for the input).
fn colour_args(c: Option<super::Nclx>) -> Vec<String> {
    let Some(c) = c else { return Vec::new() };
    let primaries = match c.primaries {
        1 => Some("bt709"),
        5 => Some("bt470bg"),
        6 => Some("smpte170m"),
        9 => Some("bt2020"),
        12 => Some("smpte432"),
        _ => None,
    };
    let transfer = match c.transfer {
        1 => Some("bt709"),
        6 => Some("smpte170m"),
        13 => Some("iec61966-2-1"),
        14 => Some("bt2020-10"),
        16 => Some("smpte2084"),
        18 => Some("arib-std-b67"),
        _ => None,
    };
    let matrix = match c.matrix {
        1 => Some("bt709"),
        5 => Some("bt470bg"),
        6 => Some("smpte170m"),
        9 => Some("bt2020nc"),
        _ => None,
    };
    let mut out = Vec::new();
    for (flag, name) in [
        ("-color_primaries", primaries),
        ("-color_trc", transfer),
        ("-colorspace", matrix),
        // The decoder's yuv420p is limited range (a full-range input is scaled into it).
        ("-color_range", Some("tv")),
    ] {
        if let Some(name) = name {
            out.extend([flag.to_string(), name.to_string()]);
        }
    }
    out
}

/// The last 2 KiB a child wrote to its error stream, read on a thread of its own so that a
/// chatty child never blocks on a full pipe.
fn tail_of(mut err: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if all.len() > 2048 {
                all.drain(..all.len() - 2048);
            }
        }
        String::from_utf8_lossy(&all).trim().to_string()
    })
}

fn said(h: std::thread::Result<String>) -> String {
    match h {
        Ok(s) if !s.is_empty() => format!(": {s}"),
        _ => String::new(),
    }
}
