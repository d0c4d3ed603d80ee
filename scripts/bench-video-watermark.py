#!/usr/bin/env python3
"""Video watermark survival: `pixseal stamp --reencode` on 10 clips, each stamped copy then
re-encoded as a sharing site would (manifest and metadata dropped, H.264 at half the stamped
video's bit rate), and `pixseal verify` asked which proof the copy carries.

The clips are made with Debian's ffmpeg (scripts/setup.sh installs it), 5 s of 1280x720 at
30 fps, H.264 (CRF 20) with AAC: four of ffmpeg's moving test sources and six slow pans and
zooms over the repository's photos (fixtures/photos) and, when ../shared/corpus is there, over
corpus photos of at least 300 KB (the pans stand in for camera footage: real texture, moving). For each clip the
table gives the stamped copy's luma PSNR against the clip (ffmpeg's psnr filter, the quality
the re-encode with the watermark costs), the bit rates, and the verdict on the half-bit-rate
copy; every unstamped clip's half-bit-rate copy is verified too (it must never carry a proof).

usage: bench-video-watermark.py [--bin target/release/pixseal] [--keep DIR]
Prints a markdown table.
"""
import argparse, glob, json, os, re, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PATTERNS = ["testsrc2", "mandelbrot", "life=mold=10:ratio=0.2:death_color=#204060:life_color=#e0c080", "cellauto=rule=110"]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode not in (0, 2):
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr}")
    return p


def ffmpeg(*args):
    run(["ffmpeg", "-v", "error", "-y", *args])


def made(make, *args):
    """Whether `make(*args)` made its clip (a corpus photo ffmpeg cannot read is skipped)."""
    try:
        make(*args)
        return True
    except SystemExit as e:
        print(f"note: skipped: {e}", file=sys.stderr)
        return False


def make_pattern(src, out):
    opts = "size=1280x720:rate=30"
    ffmpeg("-f", "lavfi", "-i", f"{src}:{opts}" if "=" in src else f"{src}={opts}",
           "-f", "lavfi", "-i", "sine=frequency=440",
           "-t", "5", "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-g", "60",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", out)


def make_pan(photo, out, k):
    # A slow zoom and drift over the photo, as a hand-held camera would frame it.
    zoom = "min(zoom+0.0015,1.3)"
    x = f"iw/2-(iw/zoom/2)+{(-1) ** k}*on*1.5"
    ffmpeg("-loop", "1", "-i", photo, "-f", "lavfi", "-i", "sine=frequency=330",
           "-vf", f"scale=2560:1440:force_original_aspect_ratio=increase,crop=2560:1440,"
                  f"zoompan=z='{zoom}':x='{x}':y='ih/2-(ih/zoom/2)':d=150:s=1280x720:fps=30",
           "-t", "5", "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-g", "60",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", out)


def bitrate(path):
    p = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=bit_rate", "-of", "default=nw=1:nk=1", path])
    return int(p.stdout.strip())


def half_bitrate(src, out):
    rate = bitrate(src)
    ffmpeg("-i", src, "-map", "0:v:0", "-map", "0:a?", "-map_metadata", "-1",
           "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-b:v", str(rate // 2),
           "-c:a", "copy", out)
    return rate


def psnr(a, b):
    # The stamped copy has square pixels: a clip with another pixel aspect is compared after
    # scaling the copy back to the clip's coded size.
    p = subprocess.run(["ffmpeg", "-i", a, "-i", b, "-lavfi",
                        "[1:v][0:v]scale2ref=flags=bicubic[b][a];[a][b]psnr", "-f", "null", "-"],
                       capture_output=True, text=True)
    m = re.search(r"PSNR y:([\d.]+|inf)", p.stderr)
    return float(m.group(1)) if m else float("nan")


def verify(bin_, data, path):
    p = run([bin_, "--data-dir", data, "--json", "verify", path])
    line = json.loads(p.stdout.splitlines()[0])
    return line.get("verdict"), line.get("proof_id")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pixseal"))
    ap.add_argument("--keep")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="pixseal-wm-video-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    if not os.path.exists(data):
        run([a.bin, "--data-dir", data, "keys", "init"])
    photos = sorted(glob.glob(os.path.join(ROOT, "fixtures/photos/*.jpg")) +
                    glob.glob(os.path.join(ROOT, "fixtures/photos/*.webp")))
    # Camera photos of at least 300 KB from the shared corpus, when it is there.
    shared = os.path.join(ROOT, "..", "shared", "corpus", "photos")
    photos += sorted(p for p in glob.glob(os.path.join(shared, "*", "*.jpg"))
                     if os.path.getsize(p) >= 300_000 and "corrupt" not in p.lower())
    clips = []
    for i, src in enumerate(PATTERNS):
        out = os.path.join(work, f"clip{i}.mp4")
        if not os.path.exists(out):
            make_pattern(src, out)
        clips.append((src.split("=")[0].split(":")[0], out))
    for k, photo in enumerate(photos):
        if len(clips) == 10:
            break
        out = os.path.join(work, f"pan{k}.mp4")
        if os.path.exists(out) or made(make_pan, photo, out, k):
            clips.append(("pan over " + os.path.basename(photo), out))
    if len(clips) < 10:
        print(f"note: only {len(clips)} clips (add photos under fixtures/ or ../shared/corpus)", file=sys.stderr)

    rows, found, false_found = [], 0, 0
    for name, clip in clips:
        outdir = os.path.join(work, "out-" + os.path.basename(clip))
        shutil.rmtree(outdir, ignore_errors=True)
        p = run([a.bin, "--data-dir", data, "--json", "stamp", "--reencode", clip, "-o", outdir])
        line = json.loads(p.stdout.splitlines()[0])
        stamped = line["output"]
        copy = os.path.join(work, "copy-" + os.path.basename(clip))
        stamped_rate = half_bitrate(stamped, copy)
        verdict, proof = verify(a.bin, data, copy)
        ok = verdict == "watermark_only" and proof == line["proof_id"]
        found += ok
        control = os.path.join(work, "control-" + os.path.basename(clip))
        half_bitrate(clip, control)
        cv, cp = verify(a.bin, data, control)
        false_found += cp is not None
        rows.append((name, psnr(clip, stamped), bitrate(clip), stamped_rate, bitrate(copy),
                     verdict + (" (same proof)" if ok else f" ({proof})"), cv))
    print("| clip | stamped PSNR-Y dB | clip kbit/s | stamped kbit/s | copy kbit/s | copy verdict | unstamped copy |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2] // 1000} | {r[3] // 1000} | {r[4] // 1000} | {r[5]} | {r[6]} |")
    print()
    print(f"proof id recovered from {found} of {len(rows)} half-bit-rate copies; "
          f"unstamped copies naming a proof: {false_found} of {len(rows)}")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
