//! Keyframes of a sanitized video, decoded by the `ffmpeg` binary in a child process. One
//! decoder for H.264, HEVC and AV1 that phones' files are made for, and a hostile bitstream can
//! crash or stall only that process — killed at a deadline, its address space and CPU time
//! capped by `prlimit`, fed on a pipe with every protocol but the pipe refused — never a worker;
//! no decoder state outlives one video.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Source, VideoInfo};
use crate::IngestError;

/// The size keyframes come out at (RGB, upright: the display rotation applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameShape {
    /// `side`×`side`: the perceptual hash works on a downscaled square anyway, and every video
    /// is hashed the same way.
    Square(u32),
    /// The video's own shape, scaled down (never up) so its short side is at most `max_short`:
    /// what the watermark detector reads.
    Upright { max_short: u32 },
}

impl FrameShape {
    /// Width and height of the frames of `info`'s video (even, at least 2).
    pub fn size(self, info: &VideoInfo) -> (u32, u32) {
        match self {
            FrameShape::Square(side) => (side, side),
            FrameShape::Upright { max_short } => {
                let (w, h) = if info.quarter_turn {
                    (info.height, info.width)
                } else {
                    (info.width, info.height)
                };
                let (w, h) = (w.max(2) as u64, h.max(2) as u64);
                let short = w.min(h);
                let target = short.min(max_short.max(2) as u64);
                let even = |v: u64| ((v * target / short) & !1).max(2) as u32;
                (even(w), even(h))
            }
        }
    }
}

/// How keyframes are picked and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameOptions {
    pub shape: FrameShape,
    /// Most frames decoded; more are thinned evenly over the video.
    pub max_frames: usize,
    /// Pick among every frame, not only the keyframes (a re-encoded copy may have few).
    pub any_frame: bool,
    /// Keyframes closer than this to the previous one picked are skipped.
    pub min_gap_ms: u64,
    /// Only frames of the video's first `first_ms` are picked: with [`Self::any_frame`] every
    /// frame up to the last one picked is decoded, so this bounds the work on a long video.
    pub first_ms: u64,
    /// The decoder is killed past this.
    pub timeout: Duration,
    /// Address space of the decoder process, in bytes.
    pub max_memory: u64,
}

impl Default for FrameOptions {
    fn default() -> Self {
        FrameOptions {
            shape: FrameShape::Square(256),
            max_frames: 120,
            any_frame: false,
            min_gap_ms: 500,
            first_ms: u64::MAX,
            timeout: Duration::from_secs(60),
            max_memory: 4 << 30,
        }
    }
}

/// One decoded keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyframe {
    /// When it is decoded, from the start of the video (its sync sample's time).
    pub time_ms: u64,
    /// Until the next keyframe picked (or the end of the video).
    pub until_ms: u64,
    /// `width`×`height`×3 bytes, rows packed.
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// When each frame that may be picked is decoded, in ms: the sync samples, or with
/// [`FrameOptions::any_frame`] every frame (at the track's average rate).
fn candidates(info: &VideoInfo, opts: &FrameOptions) -> Vec<u64> {
    if !opts.any_frame {
        return info.keyframe_times_ms.clone();
    }
    let samples = info
        .tracks
        .iter()
        .find(|t| t.kind == super::TrackKind::Video)
        .map_or(0, |t| t.samples as u64);
    match info.frame_rate {
        Some((num, den)) if num > 0 => (0..samples)
            .map(|i| {
                let ms = i as u128 * den as u128 * 1000 / num as u128;
                u64::try_from(ms).unwrap_or(u64::MAX)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Which frames to decode: at least `min_gap_ms` apart, at most `max_frames`, spread over the
/// whole video. Indices into `times` ([`candidates`]).
fn pick(times: &[u64], info: &VideoInfo, opts: &FrameOptions) -> Vec<usize> {
    let span = info.duration_ms.min(opts.first_ms).max(1);
    let gap = opts
        .min_gap_ms
        .max(span / opts.max_frames.max(1) as u64)
        .max(1);
    let mut picked: Vec<usize> = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        if t >= opts.first_ms {
            break;
        }
        if picked
            .last()
            .is_none_or(|&p| t >= times[p].saturating_add(gap))
        {
            picked.push(i);
        }
        if picked.len() == opts.max_frames {
            break;
        }
    }
    picked
}

/// Decode the picked keyframes of a video written by [`super::sanitize`] (its `moov` first,
/// so it is read front to back from a pipe). `info` is what the sanitize or a probe said.
pub fn keyframes<S: Source + ?Sized + Sync>(
    src: &S,
    info: &VideoInfo,
    opts: &FrameOptions,
) -> Result<Vec<Keyframe>, IngestError> {
    let mut frames = Vec::new();
    each_keyframe(src, info, opts, |f| frames.push(f))?;
    Ok(frames)
}

/// [`keyframes`], each handed to `each` as it is decoded rather than all kept: one frame in
/// memory at a time. On an error, what was handed over must be dropped. Returns how many.
pub fn each_keyframe<S: Source + ?Sized + Sync>(
    src: &S,
    info: &VideoInfo,
    opts: &FrameOptions,
    mut each: impl FnMut(Keyframe) + Send,
) -> Result<usize, IngestError> {
    let times = candidates(info, opts);
    let picked = pick(&times, info, opts);
    if picked.is_empty() {
        return Ok(0);
    }
    let select = picked
        .iter()
        .map(|i| format!("eq(n\\,{i})"))
        .collect::<Vec<_>>()
        .join("+");
    let (width, height) = opts.shape.size(info);
    // The decoder's threads all count against the CPU cap: the deadline times the cores, so
    // the wall-clock deadline is what stops a slow decode.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cpu_secs = opts.timeout.as_secs().max(1) * cores;
    let mut child = Command::new("prlimit")
        .arg(format!("--as={}", opts.max_memory))
        .arg(format!("--cpu={cpu_secs}"))
        .arg("--core=0") // a crash must not write the user's frames to disk
        .args(["--", "ffmpeg", "-hide_banner", "-nostats", "-v", "error"])
        .args(["-protocol_whitelist", "pipe"])
        .args(["-format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2"])
        .args(["-codec_whitelist", "h264,hevc,libdav1d,av1"])
        // Edit lists ignored: frames come out in sample order, as the sync-sample times say.
        .args(["-ignore_editlist", "1"])
        .args(if opts.any_frame {
            &[][..]
        } else {
            &["-skip_frame", "nokey"][..]
        })
        .args(["-f", "mov", "-i", "pipe:0"])
        .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
        .arg("-vf")
        .arg(format!(
            "select='{select}',scale={width}:{height}:flags=area"
        ))
        .args([
            "-fps_mode",
            "passthrough",
            "-pix_fmt",
            "rgb24",
            "-f",
            "rawvideo",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            IngestError::Internal(format!(
                "cannot start ffmpeg to decode keyframes ({e}); scripts/setup.sh installs it"
            ))
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let frame_len = (width as usize) * (height as usize) * 3;
    let wanted = picked.len();
    let (done_tx, done_rx) = mpsc::channel();
    let frames = std::thread::scope(|scope| {
        // The file goes in on one thread while the frames come out on another: ffmpeg may
        // write frames before it has read the whole file, and either pipe can fill.
        scope.spawn(move || {
            let size = src.size();
            let mut buf = vec![0u8; 256 * 1024];
            let mut at = 0u64;
            while at < size {
                let n = (size - at).min(buf.len() as u64) as usize;
                if src.read_at(at, &mut buf[..n]).is_err() || stdin.write_all(&buf[..n]).is_err() {
                    break;
                }
                at += n as u64;
            }
        });
        let (times, picked) = (&times, &picked);
        let reader = scope.spawn(move || {
            let mut n = 0;
            let mut rgb = vec![0u8; frame_len];
            while n < wanted {
                if stdout.read_exact(&mut rgb).is_err() {
                    break;
                }
                let time_ms = times[picked[n]];
                each(Keyframe {
                    time_ms,
                    until_ms: picked
                        .get(n + 1)
                        .map_or(info.duration_ms, |&next| times[next])
                        .max(time_ms),
                    rgb: std::mem::replace(&mut rgb, vec![0u8; frame_len]),
                    width,
                    height,
                });
                n += 1;
            }
            let _ = done_tx.send(());
            n
        });
        // Disconnected (the reader ended without saying so: the caller's hand failed) is not
        // a timeout; the join below reports it.
        let timed_out = matches!(
            done_rx.recv_timeout(opts.timeout),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        let frames = if timed_out {
            let _ = child.kill();
            None
        } else {
            reader.join().ok()
        };
        // With every frame wanted, nothing more is asked of the decoder (the file need not be
        // fed to the end). With fewer, it stopped writing: its exit says whether it failed.
        let complete = frames.is_some_and(|n| n == wanted);
        let status = if complete {
            let _ = child.kill();
            None
        } else {
            exit_within(&mut child, Duration::from_secs(5))
        };
        (frames, timed_out, status)
    });
    let _ = child.wait();
    let (frames, timed_out, status) = frames;
    if timed_out {
        return Err(IngestError::DecodeTooCostly(format!(
            "decoding the video's frames took over {} s",
            opts.timeout.as_secs()
        )));
    }
    let frames = frames.ok_or_else(|| IngestError::Internal("keyframe reader failed".into()))?;
    if frames < wanted {
        // The CPU cap's signal (SIGXCPU on Linux): too costly, not corrupt.
        if status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)) == Some(24) {
            return Err(IngestError::DecodeTooCostly(format!(
                "decoding the video's frames took over {cpu_secs} s of CPU"
            )));
        }
        match status.and_then(|s| s.code()) {
            // prlimit could not run ffmpeg: ours to fix, not the video's fault.
            Some(126 | 127) => {
                return Err(IngestError::Internal(
                    "ffmpeg cannot be run to decode keyframes; scripts/setup.sh installs it".into(),
                ));
            }
            // A clean end with fewer frames: the decoder's keyframes and the sync table
            // disagree, and the frames it gave are still the video's.
            Some(0) if frames > 0 => {}
            // A failure, a crash or no frame at all.
            _ => {
                return Err(IngestError::Corrupt(
                    "corrupt video: its frames do not decode".into(),
                ));
            }
        }
    }
    Ok(frames)
}

/// The child's exit status if it ends within `wait`; killed otherwise.
pub(super) fn exit_within(
    child: &mut std::process::Child,
    wait: Duration,
) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::VideoFormat;

    fn info(times: Vec<u64>, duration_ms: u64) -> VideoInfo {
        VideoInfo {
            format: VideoFormat::Mp4,
            width: 16,
            height: 16,
            duration_ms,
            tracks: Vec::new(),
            removed: Vec::new(),
            bytes: 0,
            keyframe_times_ms: times,
            quarter_turn: false,
            frame_rate: None,
            colour: None,
        }
    }

    #[test]
    fn keyframes_are_thinned_evenly_over_the_video() {
        let opts = FrameOptions::default();
        // Every frame a keyframe (all-intra, 30 fps, 60 s): one every 500 ms, 120 in all.
        let all: Vec<u64> = (0..1800).map(|i| i * 1000 / 30).collect();
        let p = pick(&all, &info(all.clone(), 60_000), &opts);
        assert_eq!(p.len(), 120);
        assert!(p.windows(2).all(|w| all[w[1]] - all[w[0]] >= 500));
        // A keyframe every 2 s: all of them.
        let sparse: Vec<u64> = (0..30).map(|i| i * 2000).collect();
        assert_eq!(
            pick(&sparse, &info(sparse.clone(), 60_000), &opts).len(),
            30
        );
        assert!(pick(&[], &info(Vec::new(), 1000), &opts).is_empty());
    }

    #[test]
    fn first_ms_keeps_the_picks_in_the_start_of_the_video_and_spreads_them_there() {
        let opts = FrameOptions {
            max_frames: 24,
            min_gap_ms: 100,
            first_ms: 8_000,
            ..FrameOptions::default()
        };
        let all: Vec<u64> = (0..1800).map(|i| i * 1000 / 30).collect();
        let p = pick(&all, &info(all.clone(), 60_000), &opts);
        assert_eq!(p.len(), 24);
        assert!(p.iter().all(|&i| all[i] < 8_000));
        // Spread over those 8 s, not bunched at the start: a third of a second apart.
        assert!(p.windows(2).all(|w| all[w[1]] - all[w[0]] >= 333));
        assert!(all[*p.last().unwrap()] >= 7_000);
    }
}
