#!/usr/bin/env python3
"""Regenerate the phone-format fixtures under crates/media/tests/fixtures/phone/ (committed;
tests do not need Python).

  valid-*.heic|avif|jxl    small pictures that must decode (HEVC HEIC, a 2x2-tile grid HEIC, AVIF,
                           JPEG XL as a bare codestream and in the ISO BMFF container)
  hostile-*.heic|avif|jxl  the same files with one lie each (see the README beside them)

Needs Python 3.11 with numpy, Pillow >= 11.2 (its built-in AVIF plugin encodes the AVIF),
pillow-heif (libheif + x265 encode the HEVC) and pillow-jxl-plugin (libjxl encodes the JPEG XL):

  python3 -m pip install pillow pillow-heif pillow-jxl-plugin numpy
  python3 scripts/make_phone_fixtures.py            # writes the fixtures and checks them
  python3 scripts/make_phone_fixtures.py --report   # also prints what libheif / libavif / libjxl
                                                    # (and heif-info, if installed) make of each file

Deterministic and idempotent: the encoders are run single-image with fixed settings, every hostile
file is rebuilt from the parsed boxes by the small ISO BMFF reader/writer below (sizes and iloc
offsets recomputed, so only the intended lie remains), and files named valid-* / hostile-* that the
script no longer makes are removed. Made with pillow-heif 1.9.0 (libheif 1.23.7, x265 4.3),
Pillow 13.0.0 (libavif 1.4.2) and pillow-jxl-plugin 1.3.8; other versions may encode different
bytes, which is harmless since the files are committed.

Note: libheif's x265 plugin pads a picture with a side under 64 px to 64 and adds a `clap` crop,
so valid-64x48.heic is a 64x64 HEVC stream (ispe 64x64) cropped to 64x48. The hostile HEIC files
are therefore built from valid-128x96.heic, whose stream, ispe and displayed size all agree.
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
import pillow_heif
import pillow_jxl  # noqa: F401  (registers the JXL plugin with Pillow)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "crates", "media", "tests", "fixtures", "phone")


# ----------------------------------------------------------------------------------------------
# pictures


def quadrants(w: int, h: int) -> Image.Image:
    """Four flat quadrants (red, green / blue, white) and a black bar at the top left, so a wrong
    tile order, flip or crop shows."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (220, 30, 30)
    a[: h // 2, w // 2 :] = (30, 200, 30)
    a[h // 2 :, : w // 2] = (30, 30, 220)
    a[h // 2 :, w // 2 :] = (240, 240, 240)
    a[: max(1, h // 16), : w // 4] = (0, 0, 0)
    return Image.fromarray(a)


def heic_bytes(im: Image.Image) -> bytes:
    b = io.BytesIO()
    pillow_heif.from_pillow(im).save(b, quality=90, chroma=420)
    return b.getvalue()


def avif_bytes(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, format="AVIF", quality=90, speed=6, max_threads=1)
    return b.getvalue()


def jxl_bytes(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, format="JXL", lossless=True, effort=7)
    return b.getvalue()


# ----------------------------------------------------------------------------------------------
# ISO BMFF (ISO/IEC 14496-12) boxes and the HEIF (ISO/IEC 23008-12) items they describe


def u16(v: int) -> bytes:
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def box(typ: bytes, payload: bytes) -> bytes:
    return u32(8 + len(payload)) + typ + payload


def fullbox(typ: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(typ, bytes([version]) + flags.to_bytes(3, "big") + payload)


def iter_boxes(d: bytes, start: int = 0, end: int | None = None):
    """(type, payload, offset) for each box in d[start:end]; refuses a box that overruns."""
    end = len(d) if end is None else end
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise ValueError(f"box header cut at {pos}")
        size, typ, hdr = struct.unpack_from(">I", d, pos)[0], d[pos + 4 : pos + 8], 8
        if size == 1:
            size, hdr = struct.unpack_from(">Q", d, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < hdr or pos + size > end:
            raise ValueError(f"box {typ!r} at {pos} overruns its parent")
        yield typ, d[pos + hdr : pos + size], pos
        pos += size


class Reader:
    def __init__(self, d: bytes, pos: int = 0):
        self.d, self.pos = d, pos

    def n(self, size: int) -> int:
        if size == 0:
            return 0
        v = int.from_bytes(self.d[self.pos : self.pos + size], "big")
        self.pos += size
        return v

    def raw(self, size: int) -> bytes:
        v = self.d[self.pos : self.pos + size]
        self.pos += size
        return v

    def cstr(self) -> bytes:
        end = self.d.index(b"\0", self.pos)
        v = self.d[self.pos : end]
        self.pos = end + 1
        return v


@dataclass
class Item:
    id: int
    type: bytes
    data: bytes = b""
    name: bytes = b""
    hidden: bool = False
    props: list[tuple[int, bool]] = field(default_factory=list)  # (1-based ipco index, essential)


@dataclass
class Heif:
    major: bytes
    minor: int
    compat: list[bytes]
    hdlr: bytes  # the hdlr box payload as found (version/flags included)
    pitm: int
    items: list[Item]
    props: list[bytes]  # whole property boxes, in ipco order
    refs: list[tuple[bytes, int, list[int]]]  # (type, from, [to, ...])

    def item(self, item_id: int) -> Item:
        return next(i for i in self.items if i.id == item_id)

    def prop_index(self, item_id: int, typ: bytes) -> int:
        """1-based ipco index of the item's first property of this type."""
        for idx, _ in self.item(item_id).props:
            if self.props[idx - 1][4:8] == typ:
                return idx
        raise KeyError(typ)

    def add_prop(self, b: bytes) -> int:
        if b not in self.props:
            self.props.append(b)
        return self.props.index(b) + 1

    def remove_prop(self, idx: int) -> None:
        """Drop property idx from ipco and every ipma association, renumbering the rest."""
        del self.props[idx - 1]
        for it in self.items:
            it.props = [(i - (i > idx), e) for i, e in it.props if i != idx]


def parse_heif(d: bytes) -> Heif:
    top = {t: (p, o) for t, p, o in iter_boxes(d)}
    ftyp = top[b"ftyp"][0]
    major, minor = ftyp[:4], struct.unpack_from(">I", ftyp, 4)[0]
    compat = [ftyp[i : i + 4] for i in range(8, len(ftyp), 4)]
    meta = top[b"meta"][0]
    kids = {t: p for t, p, _ in iter_boxes(meta, 4)}
    h = Heif(major, minor, compat, kids[b"hdlr"], 0, [], [], [])
    h.pitm = Reader(kids[b"pitm"], 4).n(2 if kids[b"pitm"][0] == 0 else 4)

    inf = kids[b"iinf"]
    r = Reader(inf, 4)
    count = r.n(2 if inf[0] == 0 else 4)
    for t, p, _ in iter_boxes(inf, r.pos):
        assert t == b"infe" and p[0] in (2, 3), "only infe version 2/3"
        ir = Reader(p, 4)
        iid = ir.n(2 if p[0] == 2 else 4)
        ir.n(2)  # protection index
        h.items.append(Item(iid, ir.raw(4), name=ir.cstr(), hidden=bool(p[3] & 1)))
    assert count == len(h.items), "iinf count disagrees with its entries"

    idat = kids.get(b"idat", b"")
    loc = kids[b"iloc"]
    r = Reader(loc)
    ver = r.n(1)
    r.n(3)
    a, b = r.n(1), r.n(1)
    osz, lsz, bsz, isz = a >> 4, a & 15, b >> 4, (b & 15) if ver else 0
    for _ in range(r.n(2 if ver < 2 else 4)):
        iid = r.n(2 if ver < 2 else 4)
        method = r.n(2) & 15 if ver else 0
        r.n(2)  # data reference index
        base = r.n(bsz)
        data = b""
        for _ in range(r.n(2)):
            r.n(isz)
            off, ln = base + r.n(osz), r.n(lsz)
            src = d if method == 0 else idat
            data += src[off : off + ln]
        h.item(iid).data = data

    for t, p, _ in iter_boxes(kids[b"iprp"]):
        if t == b"ipco":
            h.props = [p_box for p_box in _whole_boxes(p)]
        elif t == b"ipma":
            r = Reader(p)
            ver, flags = r.n(1), r.n(3)
            for _ in range(r.n(4)):
                iid = r.n(2 if ver < 1 else 4)
                for _ in range(r.n(1)):
                    v = r.n(2 if flags & 1 else 1)
                    top_bit = 0x8000 if flags & 1 else 0x80
                    h.item(iid).props.append((v & (top_bit - 1), bool(v & top_bit)))

    if b"iref" in kids:
        ref = kids[b"iref"]
        w = 2 if ref[0] == 0 else 4
        for t, p, _ in iter_boxes(ref, 4):
            r = Reader(p)
            frm, n = r.n(w), r.n(2)
            h.refs.append((t, frm, [r.n(w) for _ in range(n)]))
    return h


def _whole_boxes(d: bytes) -> list[bytes]:
    out = []
    for _, p, o in iter_boxes(d):
        out.append(d[o : o + struct.unpack_from(">I", d, o)[0]])
    return out


def write_heif(h: Heif, *, iinf_count: int | None = None, with_meta: bool = True) -> bytes:
    """Serialise: ftyp, meta (hdlr pitm iloc iinf iref iprp), mdat holding every item's data in
    item order, iloc offsets absolute (construction method 0, one extent per item).
    iinf_count overrides the declared entry count (iinf version 1, 32-bit count)."""
    ftyp = box(b"ftyp", h.major + u32(h.minor) + b"".join(h.compat))
    with_data = [it for it in h.items if it.data]
    if iinf_count is None:
        iinf = fullbox(b"iinf", 0, 0, u16(len(h.items)) + b"".join(_infe(it) for it in h.items))
    else:
        iinf = fullbox(b"iinf", 1, 0, u32(iinf_count) + b"".join(_infe(it) for it in h.items))
    iref = b""
    if h.refs:
        iref = fullbox(b"iref", 0, 0, b"".join(
            box(t, u16(f) + u16(len(to)) + b"".join(u16(x) for x in to)) for t, f, to in h.refs))
    big = any(i > 127 for it in h.items for i, _ in it.props)
    ipma = b""
    assoc = [it for it in h.items if it.props]
    for it in assoc:
        ipma += u16(it.id) + bytes([len(it.props)])
        for i, e in it.props:
            ipma += u16(i | (0x8000 if e else 0)) if big else bytes([i | (0x80 if e else 0)])
    iprp = box(b"iprp", box(b"ipco", b"".join(h.props)) + fullbox(b"ipma", 0, int(big), u32(len(assoc)) + ipma))
    pitm = fullbox(b"pitm", 0, 0, u16(h.pitm))

    def iloc(mdat_data_start: int) -> bytes:
        body, off = b"", mdat_data_start
        for it in with_data:
            body += u16(it.id) + u16(0) + u16(1) + u32(off) + u32(len(it.data))
            off += len(it.data)
        return fullbox(b"iloc", 0, 0, bytes([0x44, 0x00]) + u16(len(with_data)) + body)

    mdat_payload = b"".join(it.data for it in with_data)
    if not with_meta:
        return ftyp + box(b"mdat", mdat_payload)

    def meta(start: int) -> bytes:
        return fullbox(b"meta", 0, 0, box(b"hdlr", h.hdlr) + pitm + iloc(start) + iinf + iref + iprp)

    start = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(start) + box(b"mdat", mdat_payload)


def _infe(it: Item) -> bytes:
    return fullbox(b"infe", 2, 1 if it.hidden else 0, u16(it.id) + u16(0) + it.type + it.name + b"\0")


def ispe(w: int, h: int) -> bytes:
    return fullbox(b"ispe", 0, 0, u32(w) + u32(h))


def grid_descriptor(rows: int, cols: int, w: int, h: int) -> bytes:
    big = w > 0xFFFF or h > 0xFFFF
    size = u32 if big else u16
    return bytes([0, int(big), rows - 1, cols - 1]) + size(w) + size(h)


def iloc_extent_offset_pos(f: bytes, item_id: int) -> int:
    """Byte position, in a file written by write_heif, of the item's extent offset field."""
    _, meta, mo = next(x for x in iter_boxes(f) if x[0] == b"meta")
    for t, p, o in iter_boxes(f, mo + 12, mo + 8 + len(meta)):
        if t == b"iloc":
            pos = o + 8 + 4 + 2 + 2
            while True:
                if struct.unpack_from(">H", f, pos)[0] == item_id:
                    return pos + 6
                pos += 14
    raise KeyError(item_id)


def mdat_payload_start(f: bytes) -> int:
    return next(o for t, _, o in iter_boxes(f) if t == b"mdat") + 8


# ----------------------------------------------------------------------------------------------
# JPEG XL (ISO/IEC 18181-1) codestream headers


class BitWriter:
    def __init__(self):
        self.bits: list[int] = []

    def put(self, v: int, n: int) -> None:
        self.bits += [(v >> i) & 1 for i in range(n)]  # least significant bit first

    def u32(self, v: int, dist: list[tuple[int, int]]) -> None:
        """U32(...) with distributions of (offset, bits)."""
        for sel, (off, n) in enumerate(dist):
            if off <= v < off + (1 << n):
                self.put(sel, 2)
                self.put(v - off, n)
                return
        raise ValueError(v)

    def bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)  # ZeroPadToByte
        return bytes(sum(bits[i + j] << j for j in range(8)) for i in range(0, len(bits), 8))


SIZE_DIST = [(1, 9), (1, 13), (1, 18), (1, 30)]


def jxl_header(w: int, h: int) -> bytes:
    """Signature FF 0A, SizeHeader (not `small`, explicit width: ratio 0), ImageMetadata with
    all_default (8-bit sRGB, XYB) and CustomTransformData all_default; then pad to a byte.
    That is all a decoder needs to know the size; no frame follows."""
    bw = BitWriter()
    bw.put(0, 1)  # small = false
    bw.u32(h, SIZE_DIST)
    bw.put(0, 3)  # ratio 0: width coded
    bw.u32(w, SIZE_DIST)
    bw.put(1, 1)  # ImageMetadata.all_default
    bw.put(1, 1)  # CustomTransformData.all_default
    return b"\xff\x0a" + bw.bytes()


class BitReader:
    def __init__(self, d: bytes, pos_bits: int = 0):
        self.d, self.p = d, pos_bits

    def get(self, n: int) -> int:
        v = 0
        for i in range(n):
            byte = self.d[self.p >> 3]
            v |= ((byte >> (self.p & 7)) & 1) << i
            self.p += 1
        return v

    def u32(self, dist) -> int:
        off, n = dist[self.get(2)]
        return off + self.get(n)

    def u64(self) -> int:
        sel = self.get(2)
        if sel == 0:
            return 0
        if sel == 1:
            return 1 + self.get(4)
        if sel == 2:
            return 17 + self.get(8)
        v, shift = self.get(12), 12
        while self.get(1):
            if shift == 60:
                return v | self.get(4) << 60
            v |= self.get(8) << shift
            shift += 8
        return v


ENUM = [(0, 0), (1, 0), (2, 4), (18, 6)]


def jxl_headers_end(cs: bytes) -> tuple[int, int, int]:
    """(width, height, byte offset where the first frame header starts) of a bare codestream,
    for the subset of headers an 8-bit lossless libjxl encode writes (no preview, animation,
    ICC, extra channels or extensions; anything else raises)."""
    assert cs[:2] == b"\xff\x0a"
    r = BitReader(cs, 16)
    if r.get(1):  # small
        h = (r.get(5) + 1) * 8
        ratio = r.get(3)
        w = (r.get(5) + 1) * 8 if ratio == 0 else None
    else:
        h = r.u32(SIZE_DIST)
        ratio = r.get(3)
        w = r.u32(SIZE_DIST) if ratio == 0 else None
    if w is None:
        num, den = [(1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1)][ratio - 1]
        w = h * num // den
    xyb = True
    if not r.get(1):  # ImageMetadata.all_default
        if r.get(1):
            raise ValueError("extra_fields (orientation/preview/animation) not handled")
        if r.get(1):
            raise ValueError("float samples not handled")
        r.u32([(8, 0), (10, 0), (12, 0), (1, 6)])
        r.get(1)  # modular_16_bit_buffer_sufficient
        if r.u32([(0, 0), (1, 0), (2, 4), (1, 12)]):
            raise ValueError("extra channels not handled")
        xyb = bool(r.get(1))
        if not r.get(1):  # ColourEncoding.all_default
            if r.get(1):
                raise ValueError("ICC profile not handled")
            cs_ = r.u32(ENUM)
            if cs_ != 2:
                if r.u32(ENUM) == 2:
                    raise ValueError("custom white point not handled")
            if cs_ not in (1, 2):
                if r.u32(ENUM) == 2:
                    raise ValueError("custom primaries not handled")
            if cs_ != 2:
                if r.get(1):
                    r.get(24)
                else:
                    r.u32(ENUM)
                r.u32(ENUM)  # rendering intent
        if r.u64():
            raise ValueError("metadata extensions not handled")
    if not r.get(1):  # CustomTransformData.all_default
        if xyb:
            raise ValueError("custom opsin matrix not handled")
        if r.get(3):
            raise ValueError("custom upsampling weights not handled")
    return w, h, (r.p + 7) // 8


def jxl_container(codestream: bytes) -> bytes:
    """The JXL signature box, ftyp `jxl `, and the codestream in one jxlc box."""
    return (u32(12) + b"JXL \r\n\x87\n" + box(b"ftyp", b"jxl " + u32(0) + b"jxl ")
            + box(b"jxlc", codestream))


# ----------------------------------------------------------------------------------------------
# the fixtures


def make() -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    # --- valid HEIF / AVIF
    files["valid-64x48.heic"] = heic_bytes(quadrants(64, 48))
    base_bytes = heic_bytes(quadrants(128, 96))
    files["valid-128x96.heic"] = base_bytes
    files["valid-64x48.avif"] = avif_bytes(quadrants(64, 48))

    base = parse_heif(base_bytes)
    assert [i.type for i in base.items] == [b"hvc1"] and not any(
        p[4:8] == b"clap" for p in base.props), "expected a single uncropped hvc1 item"

    def fresh() -> Heif:
        return parse_heif(base_bytes)

    # --- the 2x2 grid: four 64x64 tiles of a 128x128 picture, output cropped to 128x96
    pic = quadrants(128, 96)
    canvas = Image.new("RGB", (128, 128))
    canvas.paste(pic, (0, 0))
    canvas.paste(pic.crop((0, 95, 128, 96)).resize((128, 32)), (0, 96))  # repeat the last row
    tiles = [parse_heif(heic_bytes(canvas.crop((c * 64, r * 64, c * 64 + 64, r * 64 + 64))))
             for r in range(2) for c in range(2)]

    def grid_file(rows: int, cols: int, w: int, h: int, dimg: list[int], extra: list[Item] = ()) -> Heif:
        g = Heif(b"heic", 0, [b"mif1", b"heic"], tiles[0].hdlr, 5, [], [], [])
        for n, t in enumerate(tiles, 1):
            it = Item(n, b"hvc1", t.items[0].data, hidden=True)
            for idx, ess in t.items[0].props:
                it.props.append((g.add_prop(t.props[idx - 1]), ess))
            g.items.append(it)
        gi = Item(5, b"grid", grid_descriptor(rows, cols, w, h))
        for p in (b"colr", b"pixi"):
            gi.props.append((g.add_prop(tiles[0].props[tiles[0].prop_index(1, p) - 1]), False))
        gi.props.append((g.add_prop(ispe(w, h)), False))
        g.items.append(gi)
        g.items += extra
        g.refs.append((b"dimg", 5, dimg))
        return g

    files["valid-grid-2x2.heic"] = write_heif(grid_file(2, 2, 128, 96, [1, 2, 3, 4]))

    # --- lying ispe on the primary item (the HEVC stream stays 128x96)
    for name, (w, h) in {"ispe-40000x40000": (40000, 40000), "ispe-8000x8000": (8000, 8000),
                         "ispe-16x16": (16, 16)}.items():
        m = fresh()
        m.props[m.prop_index(m.pitm, b"ispe") - 1] = ispe(w, h)
        files[f"hostile-{name}.heic"] = write_heif(m)

    # --- grids that claim 10 000 tiles
    cycle = [1 + (n % 4) for n in range(10_000)]  # the four real tiles, 2 500 references each
    files["hostile-grid-10000-tiles.heic"] = write_heif(grid_file(100, 100, 6400, 6400, cycle))
    files["hostile-grid-100x100-4-refs.heic"] = write_heif(grid_file(100, 100, 6400, 6400, [1, 2, 3, 4]))

    # --- reference loops
    files["hostile-grid-self-ref.heic"] = write_heif(grid_file(2, 2, 128, 96, [5, 5, 5, 5]))
    g = grid_file(2, 2, 128, 96, [1, 2, 3, 6])
    inner = Item(6, b"grid", grid_descriptor(1, 1, 64, 64), hidden=True)
    inner.props = [(g.add_prop(ispe(64, 64)), False)]
    g.items.append(inner)
    g.refs.append((b"dimg", 6, [5]))
    files["hostile-grid-mutual-ref.heic"] = write_heif(g)

    # --- missing hvcC
    m = fresh()
    m.remove_prop(m.prop_index(m.pitm, b"hvcC"))
    files["hostile-no-hvcC.heic"] = write_heif(m)

    # --- iloc extents past the end of the file
    f = bytearray(write_heif(fresh()))
    at = iloc_extent_offset_pos(f, base.pitm)
    f[at : at + 4] = u32(len(f) + 4096)
    files["hostile-iloc-offset-past-eof.heic"] = bytes(f)
    f = bytearray(write_heif(fresh()))
    at = iloc_extent_offset_pos(f, base.pitm) + 4
    f[at : at + 4] = u32(struct.unpack_from(">I", f, at)[0] + 4096)
    files["hostile-iloc-length-past-eof.heic"] = bytes(f)

    # --- truncated mdat: cut half way through the HEVC data (mdat's size still claims all of it)
    f = write_heif(fresh())
    files["hostile-mdat-truncated.heic"] = f[: mdat_payload_start(f) + len(base.items[0].data) // 2]

    # --- lying ftyp
    m = fresh()
    m.major, m.compat = b"avif", [b"mif1", b"avif", b"miaf"]
    files["hostile-ftyp-avif-on-hevc.avif"] = write_heif(m)
    m = fresh()
    m.major, m.compat = b"mp42", [b"isom", b"mp42"]
    files["hostile-ftyp-mp42.heic"] = write_heif(m)
    files["hostile-ftyp-heic-no-meta.heic"] = write_heif(fresh(), with_meta=False)

    # --- item count bomb
    files["hostile-iinf-1000000-items.heic"] = write_heif(fresh(), iinf_count=1_000_000)

    # --- AVIF: the same lies on the AV1 file
    avif = files["valid-64x48.avif"]
    m = parse_heif(avif)
    m.props[m.prop_index(m.pitm, b"ispe") - 1] = ispe(40000, 40000)
    files["hostile-avif-ispe-40000x40000.avif"] = write_heif(m)
    m = parse_heif(avif)
    m.remove_prop(m.prop_index(m.pitm, b"av1C"))
    files["hostile-avif-no-av1C.avif"] = write_heif(m)
    m = parse_heif(avif)
    f = write_heif(m)
    files["hostile-avif-mdat-truncated.avif"] = f[: mdat_payload_start(f) + len(m.item(m.pitm).data) // 2]

    # --- JPEG XL
    cs = jxl_bytes(quadrants(8, 8))
    assert cs[:2] == b"\xff\x0a", "expected a bare codestream"
    files["valid-8x8.jxl"] = cs
    files["valid-8x8-container.jxl"] = jxl_container(cs)
    files["hostile-jxl-32768x32768.jxl"] = jxl_header(32768, 32768)
    files["hostile-jxl-16384x16384.jxl"] = jxl_header(16384, 16384)
    files["hostile-jxl-container-32768x32768.jxl"] = jxl_container(jxl_header(32768, 32768))
    w, h, end = jxl_headers_end(cs)
    assert (w, h) == (8, 8) and end < len(cs)
    files["hostile-jxl-truncated-after-header.jxl"] = cs[:end]
    files["hostile-jxl-truncated-mid-frame.jxl"] = cs[: (end + len(cs)) // 2]
    return files


# ----------------------------------------------------------------------------------------------
# checks


def check(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert len(data) < 64 * 1024, f"{name} is {len(data)} bytes"

    def near(got: Image.Image, want: Image.Image, tol: float) -> None:
        a = np.asarray(got.convert("RGB"), np.int16)
        b = np.asarray(want, np.int16)
        assert a.shape == b.shape, (a.shape, b.shape)
        err = np.abs(a - b).mean()
        assert err <= tol, f"mean error {err}"

    for name, want in {"valid-64x48.heic": quadrants(64, 48), "valid-128x96.heic": quadrants(128, 96),
                       "valid-grid-2x2.heic": quadrants(128, 96)}.items():
        hf = pillow_heif.open_heif(io.BytesIO(files[name]))
        near(hf.to_pillow(), want, 6)
    with Image.open(io.BytesIO(files["valid-64x48.avif"])) as im:
        near(im, quadrants(64, 48), 6)
    for name in ("valid-8x8.jxl", "valid-8x8-container.jxl"):
        with Image.open(io.BytesIO(files[name])) as im:
            near(im, quadrants(8, 8), 0)
    # the writer must not change a file's meaning: the rebuilt base decodes like the original
    for name in ("valid-128x96.heic",):
        a = pillow_heif.open_heif(io.BytesIO(files[name])).to_pillow()
        b = pillow_heif.open_heif(io.BytesIO(write_heif(parse_heif(files[name])))).to_pillow()
        assert a.tobytes() == b.tobytes()
    # the hand-written JXL headers read back
    assert jxl_headers_end(files["hostile-jxl-32768x32768.jxl"])[:2] == (32768, 32768)
    assert jxl_headers_end(files["hostile-jxl-16384x16384.jxl"])[:2] == (16384, 16384)


PROBE = r"""
import ctypes, glob, io, os, sys, resource
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import pillow_heif, pillow_jxl
from PIL import Image
path, how = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
def line(s):
    return s.replace("\n", " ")
if how == "pillow_heif":
    try:
        hf = pillow_heif.open_heif(io.BytesIO(data))
        print(f"opens {hf.size}", end="; ")
        hf.data
        print(f"decodes {hf.size}")
    except Exception as e:
        print(line(f"{type(e).__name__}: {e}"))
elif how == "libheif":
    # libheif's own error for each step, from the library pillow-heif ships
    lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(pillow_heif.__file__) + ".libs", "libheif*"))[0])
    class Err(ctypes.Structure):
        _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]
    for f in ("heif_context_read_from_memory_without_copy", "heif_context_get_primary_image_handle",
              "heif_decode_image"):
        getattr(lib, f).restype = Err
    lib.heif_context_alloc.restype = ctypes.c_void_p
    lib.heif_init(None)
    ctx = lib.heif_context_alloc()
    buf = ctypes.create_string_buffer(data, len(data))
    def step(name, err):
        if err.code:
            print(f"{name}: error {err.code}/{err.subcode}: {err.message.decode()}")
            sys.exit(0)
    step("read", lib.heif_context_read_from_memory_without_copy(ctypes.c_void_p(ctx), buf, ctypes.c_size_t(len(data)), None))
    h = ctypes.c_void_p()
    step("primary", lib.heif_context_get_primary_image_handle(ctypes.c_void_p(ctx), ctypes.byref(h)))
    w, hh = lib.heif_image_handle_get_width(h), lib.heif_image_handle_get_height(h)
    print(f"primary {w}x{hh}", end="; ")
    img = ctypes.c_void_p()
    step("decode", lib.heif_decode_image(h, ctypes.byref(img), 1, 10, None))
    print(f"decodes {lib.heif_image_get_width(img, 10)}x{lib.heif_image_get_height(img, 10)}")
elif how == "libavif":
    from PIL import _avif
    try:
        dec = _avif.AvifDecoder(data, "auto", 1)
        size = dec.get_info()[0]
        print(f"opens {size}", end="; ")
        dec.get_frame(0)
        print(f"decodes {size}")
    except Exception as e:
        print(line(f"{type(e).__name__}: {e}"))
else:
    try:
        with Image.open(io.BytesIO(data)) as im:
            print(f"opens {im.format} {im.size}", end="; ")
            im.load()
            print(f"decodes {im.size}")
    except Exception as e:
        print(line(f"{type(e).__name__}: {e}"))
"""


def run(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "timeout after 120 s"
    out = (p.stdout.strip() + " " + p.stderr.strip()).strip()
    if p.returncode < 0:
        out += f" [killed by signal {-p.returncode}]"
    return out


def report(names: list[str]) -> None:
    """What the reference decoders make of each file: libheif 1.23 as pillow-heif ships it (its
    Python wrapper, then the library's own error through ctypes), libavif through Pillow,
    libjxl through pillow-jxl-plugin, and Debian's heif-info / heif-convert / jxlinfo / djxl
    when installed (apt-get install libheif-examples libjxl-tools)."""
    import shutil
    import tempfile

    tools = {t: shutil.which(t) for t in ("heif-info", "heif-convert", "jxlinfo", "djxl")}
    tmp = tempfile.mkdtemp()
    for name in names:
        path = os.path.join(OUT, name)
        print(f"== {name} ({os.path.getsize(path)} bytes)")
        probe = [sys.executable, "-c", PROBE, path]
        if name.endswith(".jxl"):
            print("  pillow_jxl  :", run(probe + ["pil"]))
            if tools["jxlinfo"]:
                print("  jxlinfo     :", " | ".join(l.strip() for l in run([tools["jxlinfo"], path]).splitlines()[:3]))
            if tools["djxl"]:
                out = run([tools["djxl"], path, os.path.join(tmp, "out.png")]).splitlines()
                print("  djxl        :", " | ".join(l.strip() for l in out if "decoder v" not in l)[:300])
            continue
        print("  pillow_heif :", run(probe + ["pillow_heif"]))
        print("  libheif 1.23:", run(probe + ["libheif"]))
        if name.endswith(".avif"):
            print("  libavif     :", run(probe + ["libavif"]))
        if tools["heif-info"]:
            out = [l.strip() for l in run([tools["heif-info"], path]).splitlines()]
            keep = [l for l in out if l.startswith(("main brand", "image:", "Could not")) or "rror" in l]
            print("  heif-info   :", " | ".join(keep))
        if tools["heif-convert"]:
            out = run([tools["heif-convert"], path, os.path.join(tmp, "out.png")]).splitlines()
            print("  heif-convert:", " | ".join(l.strip() for l in out if l.strip())[:300])


def main() -> None:
    files = make()
    check(files)
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.startswith(("valid-", "hostile-")) and old not in files:
            os.remove(os.path.join(OUT, old))
    for name, data in sorted(files.items()):
        path = os.path.join(OUT, name)
        if not os.path.exists(path) or open(path, "rb").read() != data:
            with open(path, "wb") as f:
                f.write(data)
        print(f"{len(data):6d}  {name}")
    if "--report" in sys.argv:
        report(sorted(files))


if __name__ == "__main__":
    main()
