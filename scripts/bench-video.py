#!/usr/bin/env python3
"""Video sanitize benchmark: `pixseal sanitize` of a 60 s 1080p MP4 side by side with
`ffmpeg -map_metadata -1 -c copy` (the issue's anchor: a remux without metadata), in the same run.

The clip is made once with Debian's ffmpeg (scripts/setup.sh installs it) and kept under
--cache: 60 s of 1920x1080 at 30 fps, H.264 at 16 Mbit/s (a phone's rate) with AAC audio, moov
at the end as phones write it, and phone-like metadata (location, make, model, dates). Each
round runs both commands once, in turn (pixseal first in odd rounds, ffmpeg first in even ones),
on the same warm file, writing to a fresh directory on the same disk; each run's wall time is a
monotonic clock around the child and its peak RSS the kernel's, as GNU time reports it
(/usr/bin/time -f %M, Debian's `time`). Not this script's own wait4: Python starts children
with vfork, and at exec the kernel folds the parent's peak into the child's ru_maxrss
(fs/exec.c, setmax_mm_hiwater_rss), so every child would read at least this script's own
peak, ~14.6 MiB (`/bin/true` does). GNU time forks, from a process of about 1 MiB. Every output is checked: it
must exist and ffprobe must read a video stream from it.

Targets (the issue's): pixseal's median time <= 1.0x ffmpeg's, its peak RSS <= 1/4 of ffmpeg's.

usage: bench-video.py [--rounds 7] [--bin target/release/pixseal] [--cache /var/tmp/pixseal-bench]
Prints a markdown table.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_clip(path, rate_mbit=16):
    if os.path.exists(path):
        return
    tmp = path + ".partial.mp4"
    rate = "%dM" % rate_mbit
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=60",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=60",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", rate, "-maxrate", rate,
         "-bufsize", "%dM" % (2 * rate_mbit), "-g", "30", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k",
         "-metadata", "location=+37.3349-122.0090/", "-metadata", "make=Apple",
         "-metadata", "model=iPhone 15 Pro", "-metadata", "creation_time=2026-06-01T10:00:00Z",
         tmp],
        check=True,
    )
    os.replace(tmp, path)


def run(cmd):
    """Wall seconds and peak RSS (MiB) of one run of `cmd`."""
    with tempfile.NamedTemporaryFile("r", prefix="pixseal-bench-rss.") as rss:
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd
        start = time.monotonic()
        p = subprocess.run(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.monotonic() - start
        if p.returncode != 0:
            err = p.stderr.decode(errors="replace")
            sys.exit(f"{cmd[0]} failed ({p.returncode}): {err}")
        return wall, int(rss.read().split()[-1]) / 1024


def check(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name", "-of", "csv=p=0", path],
        capture_output=True, text=True,
    )
    if out.returncode != 0 or out.stdout.strip() != "h264":
        sys.exit(f"{path}: not a readable H.264 video: {out.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pixseal"))
    ap.add_argument("--cache", default="/var/tmp/pixseal-bench")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    clip = os.path.join(a.cache, "phone-60s-1080p.mp4")
    make_clip(clip)
    size = os.path.getsize(clip)
    work = tempfile.mkdtemp(prefix="pixseal-bench-video.", dir=a.cache)
    results = {"pixseal": [], "ffmpeg": []}
    try:
        for r in range(a.rounds):
            out = os.path.join(work, f"r{r}")
            os.makedirs(out)
            sides = [
                ("pixseal", [a.bin, "sanitize", clip, "-o", os.path.join(out, "p")],
                 os.path.join(out, "p", "phone-60s-1080p.mp4")),
                ("ffmpeg", ["ffmpeg", "-v", "error", "-y", "-i", clip, "-map_metadata", "-1",
                            "-c", "copy", os.path.join(out, "f.mp4")],
                 os.path.join(out, "f.mp4")),
            ]
            if r % 2:
                sides.reverse()
            for name, cmd, made in sides:
                results[name].append(run(cmd))
                check(made)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(name, i):
        return statistics.median(x[i] for x in results[name])

    pt, ft = med("pixseal", 0), med("ffmpeg", 0)
    pm, fm = med("pixseal", 1), med("ffmpeg", 1)
    print(f"60 s 1920x1080 H.264 16 Mbit/s + AAC, {size / 2**20:.1f} MiB, moov at the end; "
          f"{a.rounds} rounds, medians")
    print()
    print("| command | wall s (min–max) | peak RSS MiB (min–max) |")
    print("|---|---|---|")
    for name, label in [("pixseal", "`pixseal sanitize`"),
                        ("ffmpeg", "`ffmpeg -map_metadata -1 -c copy`")]:
        w = [x[0] for x in results[name]]
        m = [x[1] for x in results[name]]
        print(f"| {label} | {med(name, 0):.3f} ({min(w):.3f}–{max(w):.3f}) "
              f"| {med(name, 1):.1f} ({min(m):.1f}–{max(m):.1f}) |")
    print()
    print(f"time pixseal/ffmpeg: {pt / ft:.2f}x (target <= 1.0x); "
          f"peak RSS pixseal/ffmpeg: {pm / fm:.2f} (target <= 0.25)")


if __name__ == "__main__":
    main()
