#!/usr/bin/env python3
"""The reference side of pixseal's provenance tests and benchmark (c2pa-python, pdqhash, Pillow).

Subcommands (JSON on stdout):
  read FILE [--trust PEM]              validation state, codes, claim generator, assertions of
                                       the active manifest as the reference reader sees them
  sign IN OUT --chain PEM --key PEM [--alg es256]
                                       sign IN with the reference library (a third-party manifest)
  pdq FILE...                          reference PDQ hash (Meta's C++ via pdqhash) and quality
  derive IN OUT --op OP [--arg N]      a changed copy: resize (scale %), jpeg (quality),
                                       webp (quality), crop (%), strip (re-encode, no metadata)
  variants OUTDIR IN...                resize 50%/25%, JPEG q60, WebP q70, 4% crop of each input
  flip-pixel IN OUT                    PNG only: change one pixel in the IDAT data, keep every
                                       other chunk (the C2PA caBX chunk included) byte for byte
  transplant DONOR HOST OUT            HOST's picture with DONOR's manifest store in place of its
                                       own (JPEG APP11 segments, PNG caBX, WebP C2PA chunk)
  rename-label IN OUT --old L --new M  an assertion label rewritten (same length) inside the
                                       manifest store: the assertion the claim names is gone
"""
import argparse
import io
import json
import struct
import sys
import zlib


def _context(trust_pem):
    import c2pa

    settings = {"verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_pem:
        with open(trust_pem, encoding="ascii") as f:
            settings["trust"] = {"trust_anchors": f.read()}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def mime_of(data):
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    return "application/octet-stream"


def cmd_read(a):
    import c2pa

    with open(a.file, "rb") as f:
        data = f.read()
    out = {"file": a.file}
    try:
        r = c2pa.Reader(mime_of(data), io.BytesIO(data), None, _context(a.trust))
    except Exception as e:  # noqa: BLE001 - report whatever the reference says
        out.update({"state": None, "error": f"{type(e).__name__}: {e}"})
        print(json.dumps(out))
        return
    store = json.loads(r.json())
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    results = r.get_validation_results() or {}
    am = results.get("activeManifest", {}) if isinstance(results, dict) else {}
    out.update(
        {
            "state": r.get_validation_state(),
            "failure": [s.get("code") for s in am.get("failure", [])],
            "success": [s.get("code") for s in am.get("success", [])],
            "informational": [s.get("code") for s in am.get("informational", [])],
            "claim_generator_info": active.get("claim_generator_info"),
            "assertions": {x.get("label"): x.get("data") for x in active.get("assertions", [])},
            # Every assertion in order: several may share a label (two soft bindings).
            "assertion_list": [{"label": x.get("label"), "data": x.get("data")} for x in active.get("assertions", [])],
            "signature_info": active.get("signature_info"),
        }
    )
    print(json.dumps(out))


# A watermark announced in a third party's manifest (C2PA 2.2 action names).
WATERMARK_ACTIONS = {"bound": "c2pa.watermarked.bound", "legacy": "c2pa.watermarked"}


def cmd_sign(a):
    import c2pa

    with open(a.chain, "rb") as f:
        chain = f.read()
    with open(a.key, "rb") as f:
        key = f.read()
    with open(a.input, "rb") as f:
        data = f.read()
    info = c2pa.C2paSignerInfo(a.alg.encode(), chain, key, None)
    signer = c2pa.Signer.from_info(info)
    manifest = {
        "claim_generator_info": [{"name": "c2pa-python-reference", "version": c2pa.sdk_version()}],
        "title": "reference-signed",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created",
                                      "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]},
            },
            {"label": "org.example.thirdparty", "data": {"note": "signed by the reference library"}},
        ],
    }
    if a.watermark_action:
        manifest["assertions"][0]["data"]["actions"].append({"action": WATERMARK_ACTIONS[a.watermark_action]})
    if a.soft_binding:
        manifest["assertions"].append(
            {
                "label": "c2pa.soft-binding",
                "data": {"alg": "org.example.wm.1", "blocks": [{"scope": {}, "value": "AAECAwQFBgc="}]},
            }
        )
    settings = {"builder": {"thumbnail": {"enabled": a.thumbnail}}}
    if a.watermark_action and not a.soft_binding:
        # The library checks its own output and refuses this one: the point is a manifest that
        # breaks the rule, to see readers call it invalid.
        settings["verify"] = {"verify_after_sign": False}
    ctx = c2pa.Context(c2pa.Settings.from_dict(settings))
    b = c2pa.Builder(manifest, ctx)
    dest = io.BytesIO()
    b.sign(signer, mime_of(data), io.BytesIO(data), dest)
    with open(a.output, "wb") as f:
        f.write(dest.getvalue())
    print(json.dumps({"output": a.output, "bytes": len(dest.getvalue())}))


def cmd_pdq(a):
    import numpy as np
    import pdqhash
    from PIL import Image

    for p in a.files:
        img = np.asarray(Image.open(p).convert("RGB"))
        bits, quality = pdqhash.compute(img)
        # pdqhash returns the bits most significant first (index 0 = bit 255 of the reference
        # Hash256, the first hex digit's top bit), so the hex is the bits in order.
        h = "".join("%x" % int("".join(str(int(b)) for b in bits[i : i + 4]), 2) for i in range(0, 256, 4))
        print(json.dumps({"file": p, "pdq": h, "quality": int(quality)}))


def cmd_derive(a):
    from PIL import Image

    img = Image.open(a.input).convert("RGB")
    op, n = a.op, a.arg
    if op == "resize":
        img = img.resize((max(8, img.width * n // 100), max(8, img.height * n // 100)), Image.LANCZOS)
        img.save(a.output, "JPEG", quality=90)
    elif op == "jpeg":
        img.save(a.output, "JPEG", quality=n)
    elif op == "webp":
        img.save(a.output, "WEBP", quality=n)
    elif op == "crop":
        dx, dy = img.width * n // 200, img.height * n // 200
        img.crop((dx, dy, img.width - dx, img.height - dy)).save(a.output, "JPEG", quality=90)
    elif op == "strip":
        img.save(a.output, "PNG")
    else:
        sys.exit(f"unknown op {op}")


VARIANTS = [("resize", 50), ("resize", 25), ("jpeg", 60), ("webp", 70), ("crop", 2)]


def cmd_variants(a):
    """Every VARIANTS transform of each input, as OUTDIR/<stem>.<op><arg>.<ext>."""
    import os

    for src in a.inputs:
        stem = os.path.splitext(os.path.basename(src))[0]
        for op, n in VARIANTS:
            ext = "webp" if op == "webp" else "jpg"
            out = os.path.join(a.outdir, f"{stem}.{op}{n}.{ext}")
            cmd_derive(argparse.Namespace(input=src, output=out, op=op, arg=n))
            print(json.dumps({"input": src, "op": f"{op}{n}", "output": out}))


def _chunks(data):
    i = 8
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        yield data[i + 4 : i + 8], data[i + 8 : i + 8 + n], i, i + 12 + n
        i += 12 + n


def cmd_flip_pixel(a):
    data = open(a.input, "rb").read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "PNG only"
    chunks = list(_chunks(data))
    ihdr = next(c for c in chunks if c[0] == b"IHDR")[1]
    w, h, depth, ctype = struct.unpack(">IIBB", ihdr[:10])
    assert depth == 8 and ctype in (2, 6), "8-bit RGB(A) only"
    bpp = 3 if ctype == 2 else 4
    idat = [c for c in chunks if c[0] == b"IDAT"]
    raw = bytearray(zlib.decompress(b"".join(c[1] for c in idat)))
    stride = 1 + w * bpp
    # The last byte of the last row: whatever its row's filter, no other byte is reconstructed
    # from it (nothing to its right, no row below), so exactly one channel of one pixel changes.
    raw[h * stride - 1] ^= 0x40
    new = zlib.compress(bytes(raw), 6)
    out = bytearray(data[: idat[0][2]])
    out += struct.pack(">I", len(new)) + b"IDAT" + new + struct.pack(">I", zlib.crc32(b"IDAT" + new) & 0xFFFFFFFF)
    out += data[idat[-1][3] :]
    open(a.output, "wb").write(out)
    print(json.dumps({"output": a.output}))


def _jpeg_segments(data):
    """(marker, start, end) of each segment before the first SOS, then ("scan", start, len)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        m = data[i + 1]
        (n,) = struct.unpack(">H", data[i + 2 : i + 4])
        if m == 0xDA:
            break
        yield m, i, i + 2 + n
        i += 2 + n
    yield "scan", i, len(data)


def _webp_chunks(data):
    i = 12
    while i + 8 <= len(data):
        fourcc = data[i : i + 4]
        (n,) = struct.unpack("<I", data[i + 4 : i + 8])
        end = i + 8 + n + (n & 1)
        yield fourcc, i, end
        i = end


def _manifest_parts(data):
    """The byte ranges of the manifest store, and where it sits, for each container."""
    if data.startswith(b"\xff\xd8"):
        parts = [(s, e) for m, s, e in _jpeg_segments(data) if m == 0xEB]
    elif data.startswith(b"\x89PNG"):
        parts = [(s, e) for t, _, s, e in _chunks(data) if t == b"caBX"]
    elif data[:4] == b"RIFF":
        parts = [(s, e) for t, s, e in _webp_chunks(data) if t == b"C2PA"]
    else:
        sys.exit("JPEG, PNG or WebP only")
    assert parts, "no manifest store in the file"
    return parts


def cmd_transplant(a):
    donor = open(a.donor, "rb").read()
    host = open(a.host, "rb").read()
    store = b"".join(donor[s:e] for s, e in _manifest_parts(donor))
    parts = _manifest_parts(host)
    out = bytearray(host[: parts[0][0]]) + store
    for (_, e), nxt in zip(parts, parts[1:] + [(len(host), None)]):
        out += host[e : nxt[0]]
    if out[:4] == b"RIFF":
        out[4:8] = struct.pack("<I", len(out) - 8)
    open(a.output, "wb").write(out)
    print(json.dumps({"output": a.output}))


def cmd_rename_label(a):
    data = open(a.input, "rb").read()
    old, new = a.old.encode(), a.new.encode()
    assert len(old) == len(new), "same length only (no box sizes change)"
    (s, _), e = _manifest_parts(data)[0], _manifest_parts(data)[-1][1]
    store = data[s:e]
    assert old in store, f"{a.old} not in the manifest store"
    out = data[:s] + store.replace(old, new) + data[e:]
    open(a.output, "wb").write(out)
    print(json.dumps({"output": a.output}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read")
    r.add_argument("file")
    r.add_argument("--trust")
    s = sub.add_parser("sign")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--chain", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--alg", default="es256")
    s.add_argument("--thumbnail", action="store_true")
    s.add_argument("--watermark-action", choices=sorted(WATERMARK_ACTIONS))
    s.add_argument("--soft-binding", action="store_true")
    q = sub.add_parser("pdq")
    q.add_argument("files", nargs="+")
    d = sub.add_parser("derive")
    d.add_argument("input")
    d.add_argument("output")
    d.add_argument("--op", required=True)
    d.add_argument("--arg", type=int, default=0)
    v = sub.add_parser("variants")
    v.add_argument("outdir")
    v.add_argument("inputs", nargs="+")
    f = sub.add_parser("flip-pixel")
    f.add_argument("input")
    f.add_argument("output")
    t = sub.add_parser("transplant")
    t.add_argument("donor")
    t.add_argument("host")
    t.add_argument("output")
    n = sub.add_parser("rename-label")
    n.add_argument("input")
    n.add_argument("output")
    n.add_argument("--old", required=True)
    n.add_argument("--new", required=True)
    a = p.parse_args()
    {
        "read": cmd_read,
        "sign": cmd_sign,
        "pdq": cmd_pdq,
        "derive": cmd_derive,
        "flip-pixel": cmd_flip_pixel,
        "variants": cmd_variants,
        "transplant": cmd_transplant,
        "rename-label": cmd_rename_label,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
