#!/usr/bin/env python3
"""visible-examples.py - before/after pictures of the visible mark for docs/watermark.md.

Stamps three corpus photos (light sky, dark interior, busy park) with `pixseal stamp`, then writes
docs/img/visible-<name>.jpg: the sanitized original on the left, the stamped output on the right,
each 480 px wide, plus a crop of the mark at full resolution underneath. Prints the stamp's JSON
facts about each mark (placement, colour, alpha, measured contrast).

  pip install pillow
  PIXSEAL_BIN=/var/tmp/pixseal-target/release/pixseal python3 scripts/visible-examples.py
"""
import json
import os
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "photos")
PHOTOS = {
    "sky": "orientation/Landscape_3.jpg",
    "interior": "exif-samples/22-canon_tags.jpg",
    "park": "exif-samples/DSCN0021.jpg",
}


def run(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main():
    binary = os.environ.get("PIXSEAL_BIN", "pixseal")
    outdir = os.path.join(ROOT, "docs", "img")
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        run(binary, "--data-dir", data, "keys", "init")
        for name, rel in PHOTOS.items():
            src = os.path.join(CORPUS, rel)
            before = run(binary, "--json", "sanitize", src, "-o", os.path.join(tmp, "before", name))
            after = run(binary, "--data-dir", data, "--json", "stamp", src, "-o",
                        os.path.join(tmp, "after", name))
            a, b = Image.open(before[0]["output"]).convert("RGB"), Image.open(after[0]["output"]).convert("RGB")
            mark = after[0]["visible_mark"]
            print(name, json.dumps(mark))
            w = 480
            h = round(a.height * w / a.width)
            x, y, mw, mh = mark["x"], mark["y"], mark["width"], mark["height"]
            crop = b.crop((x, y, x + mw, y + mh))
            if crop.width > 2 * w:
                crop = crop.resize((2 * w, round(crop.height * 2 * w / crop.width)), Image.LANCZOS)
            sheet = Image.new("RGB", (2 * w + 8, h + 8 + crop.height), (255, 255, 255))
            sheet.paste(a.resize((w, h), Image.LANCZOS), (0, 0))
            sheet.paste(b.resize((w, h), Image.LANCZOS), (w + 8, 0))
            sheet.paste(crop, (0, h + 8))
            sheet.save(os.path.join(outdir, f"visible-{name}.jpg"), quality=85)
    return 0


if __name__ == "__main__":
    sys.exit(main())
