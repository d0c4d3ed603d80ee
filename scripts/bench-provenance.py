#!/usr/bin/env python3
"""Provenance benchmark: pixseal stamp (sanitize + sign + embed) and verify, per photo, at 2, 12
and 24 MP, side by side with the reference C2PA library (c2pa-python) signing and reading the
same input files in the same run, with the same development certificate. Prints a Markdown
table (docs/benchmarks.md, "Provenance").

  python3 scripts/bench-provenance.py [--bin target/release/pixseal] [--runs 3]

Inputs are synthetic photo-like JPEGs (q90, 4:2:0) made with numpy + Pillow, so the run needs
nothing but setup.sh's packages.
"""
import argparse
import importlib.metadata
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

SIZES = [(2, 1728, 1152), (12, 4240, 2832), (24, 6000, 4000)]


def photo(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(2, 9), rng.uniform(2, 9), rng.uniform(0, 6.28)
        img[..., c] = 128 + 90 * np.sin(x / w * fx + ph) * np.cos(y / h * fy - ph)
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # sensor-like noise
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode not in (0, 2):
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--bin", default=os.path.join(target, "release", "pixseal"))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    import c2pa

    with tempfile.TemporaryDirectory(prefix="pixseal-bench-prov.") as tmp:
        data = os.path.join(tmp, "data")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXSEAL_")}
        run([a.bin, "--data-dir", data, "keys", "init"], env)
        chain = open(os.path.join(data, "c2pa/chain.pem"), "rb").read()
        key = open(os.path.join(data, "c2pa/signing-key.pem"), "rb").read()
        root = open(os.path.join(data, "c2pa/root.pem")).read()
        rows = []
        for mp, w, h in SIZES:
            ins = []
            for i in range(a.runs):
                p = os.path.join(tmp, f"in-{mp}mp-{i}.jpg")
                photo(w, h, 100 * mp + i).save(p, "JPEG", quality=90)
                ins.append(p)
            out = os.path.join(tmp, f"out-{mp}")
            st = run([a.bin, "--data-dir", data, "--json", "stamp", *ins, "-o", out, "--jobs", "1", "--quality", "85"], env)
            assert all(s["status"] == "ok" for s in st), st
            ver = run([a.bin, "--data-dir", data, "--json", "verify", *[s["output"] for s in st]], env)
            assert all(v["verdict"] == "verified" for v in ver), ver

            # The reference signs the same input files (no re-encode: it only embeds).
            ref_sign, ref_read, ref_over = [], [], []
            settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
            rsettings = {"trust": {"trust_anchors": root}, "verify": {"verify_trust": True}}
            for p in ins:
                src = open(p, "rb").read()
                manifest = {
                    "claim_generator_info": [{"name": "bench", "version": "1"}],
                    "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created",
                        "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}],
                }
                t0 = time.perf_counter()
                signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, key, None))
                b = c2pa.Builder(manifest, c2pa.Context(settings))
                dest = io.BytesIO()
                b.sign(signer, "image/jpeg", io.BytesIO(src), dest)
                ref_sign.append((time.perf_counter() - t0) * 1000)
                signed = dest.getvalue()
                ref_over.append(len(signed) - len(src))
                t0 = time.perf_counter()
                r = c2pa.Reader("image/jpeg", io.BytesIO(signed), None, c2pa.Context(c2pa.Settings.from_dict(rsettings)))
                state = r.get_validation_state()
                ref_read.append((time.perf_counter() - t0) * 1000)
                assert state == "Trusted", state
            med = statistics.median
            rows.append({
                "mp": mp,
                "stamp": med(s["ms"] for s in st),
                "embed": med(s["embed_ms"] for s in st),
                "verify": med(v["ms"] for v in ver),
                "ref_sign": med(ref_sign),
                "ref_read": med(ref_read),
                "overhead": med(s["manifest_bytes"] for s in st),
                "ref_overhead": med(ref_over),
                "out_bytes": med(s["bytes"] for s in st),
            })
        print(f"pixseal {a.bin}; c2pa-python {importlib.metadata.version('c2pa-python')} (c2pa-rs {c2pa.sdk_version()}); "
              f"{os.cpu_count()} cores; median of {a.runs} photos per size, one at a time\n")
        print("| photo | pixseal stamp (decode + sanitize + encode + sign + embed) | of which sign + embed | pixseal verify | c2pa-python sign + embed (same input) | c2pa-python read + validate | manifest bytes pixseal / c2pa-python |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['mp']} MP | {r['stamp']:.0f} ms | {r['embed']:.1f} ms | {r['verify']:.1f} ms | "
                  f"{r['ref_sign']:.1f} ms | {r['ref_read']:.1f} ms | {r['overhead']:.0f} / {r['ref_overhead']:.0f} |")


if __name__ == "__main__":
    main()
