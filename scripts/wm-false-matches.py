#!/usr/bin/env python3
"""wm-false-matches.py - false-match rate of `pixseal watermark detect` on thousands of unmarked crops.

Cuts 16 random crops from every corpus photo (30-100 % of width and height, large ones then downscaled
to 50 % or 25 %, at most 1600 px, JPEG q60/75/90, seeded), runs one `pixseal watermark detect --json`
over all of them and counts `found: true` (every one is a false match: nothing here was marked).

  pip install pillow
  PIXSEAL_BIN=/var/tmp/pixseal-target/release/pixseal python3 scripts/wm-false-matches.py
"""
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "photos")


def crops(out):
    rng = random.Random(7)
    files = sorted(f for f in glob.glob(CORPUS + "/**/*", recursive=True) if os.path.isfile(f))
    n = 0
    for f in files:
        try:
            im = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
        except Exception:
            continue
        if min(im.size) < 128:
            continue
        for _ in range(16):
            w, h = im.size
            cw, ch = max(64, int(w * rng.uniform(0.3, 1.0))), max(64, int(h * rng.uniform(0.3, 1.0)))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            c = im.crop((x, y, x + cw, y + ch))
            s = rng.choice([1.0, 0.5, 0.25]) if max(c.size) > 800 else 1.0
            if s < 1:
                c = c.resize((max(64, int(c.width * s)), max(64, int(c.height * s))), Image.LANCZOS)
            if max(c.size) > 1600:
                r = 1600 / max(c.size)
                c = c.resize((int(c.width * r), int(c.height * r)), Image.LANCZOS)
            c.save(os.path.join(out, f"{n:05d}.jpg"), quality=rng.choice([60, 75, 90]))
            n += 1
    return n


def main():
    binary = os.environ.get("PIXSEAL_BIN", "pixseal")
    with tempfile.TemporaryDirectory() as tmp:
        n = crops(tmp)
        files = sorted(glob.glob(os.path.join(tmp, "*.jpg")))
        out = subprocess.run([binary, "watermark", "detect", "--json", *files],
                             capture_output=True, text=True)
        lines = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        found = [l for l in lines if l.get("found")]
        errors = [l for l in lines if l.get("status") != "ok"]
        print(f"unmarked crops: {n}, answered: {len(lines)}, found (false matches): {len(found)}, "
              f"errors: {len(errors)}")
        for l in found:
            print("  false match:", l)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
