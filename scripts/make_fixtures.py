#!/usr/bin/env python3
"""Regenerate the small fixtures under fixtures/ (committed; tests do not need Python or ../shared).

Uses the byte-level helpers of ../shared/tools/make_bad_inputs.py to plant metadata.
  fixtures/orientation/orient-N.jpg  48x32 upright reference stored rotated, with EXIF Orientation N (1-8)
  fixtures/orientation/upright.png   the upright reference itself (lossless)
  fixtures/metadata/*                 photos carrying metadata and canaries (PXCANARY-FIXTURE-*)
  fixtures/photos/*                   a few clean pictures in every input format (the README's demo);
                                      garden-phone.heic is a phone-sized HEIC (pillow-heif's x265),
                                      alpha.heic a photo fading to transparent (an alpha auxiliary image)
  fixtures/damaged/restart-markers.jpg garden.jpg with a restart marker after every MCU row (the tests
                                      damage its entropy data; libjpeg resyncs at the next marker)
"""
import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools"))
import numpy as np
from PIL import Image
import make_bad_inputs as m

ROOT = os.path.join(HERE, "..", "fixtures")


def upright():
    """Four flat quadrants (red, green / blue, white) plus a black bar at the top-left: any flip
    or rotation moves a colour to another quadrant."""
    a = np.zeros((32, 48, 3), np.uint8)
    a[:16, :24] = (220, 30, 30)
    a[:16, 24:] = (30, 200, 30)
    a[16:, :24] = (30, 30, 220)
    a[16:, 24:] = (240, 240, 240)
    return Image.fromarray(a)


INVERSE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
           7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class C:  # the minimal "case" object make_bad_inputs' builders expect
    def __init__(self, name):
        self.name = name
        self.canary = "PXCANARY-FIXTURE-" + name


def main():
    up = upright()
    os.makedirs(os.path.join(ROOT, "orientation"), exist_ok=True)
    up.save(os.path.join(ROOT, "orientation", "upright.png"))
    for o, t in INVERSE.items():
        stored = up if t is None else up.transpose(t)
        b = m.jpeg(stored, quality=95)
        write(os.path.join(ROOT, "orientation", "orient-%d.jpg" % o), m.jpeg_insert(b, m.app1_exif(m.exif_orientation(o))))

    md = os.path.join(ROOT, "metadata")
    c = C("jpeg-all")
    b = m.jpeg(m.photo(160, 120, 1), quality=90, icc_profile=m.icc_srgb(c.canary))
    b = m.jpeg_insert(b, m.app1_exif(m.exif_full(c)), m.app1_xmp(c.canary), m.app13_iptc(c.canary),
                      m.seg(0xFE, b"comment " + c.canary.encode()))
    write(os.path.join(md, "jpeg-all.jpg"), b + m.tiny_zip("trailer.txt", c.canary.encode()))
    c = C("png-text")
    k = c.canary.encode()
    write(os.path.join(md, "png-text.png"), m.png_insert(m.png(m.photo(120, 90, 2)), [
        m.chunk(b"tEXt", b"Comment\x00" + k), m.chunk(b"iTXt", b"Description\x00\x00\x00en\x00\x00" + k),
        m.chunk(b"eXIf", m.tiff_bytes({0x010E: m.A(c.canary), 0x0112: m.S(1)}))]))
    c = C("webp-exif")
    write(os.path.join(md, "webp-exif.webp"), m.webp_file([
        m.vp8x(120, 90, 0x08 | 0x04), m.webp_frame(m.photo(120, 90, 3)),
        m.riff_chunk(b"EXIF", m.tiff_bytes({0x010E: m.A(c.canary), 0x0112: m.S(1)})),
        m.riff_chunk(b"XMP ", m.xmp_packet(c.canary))]))
    c = C("gif-comment")
    write(os.path.join(md, "gif-comment.gif"), m.encode(m.photo(80, 60, 4).convert("P"), "GIF", comment=k.replace(b"png-text", b"gif-comment")))
    c = C("tiff-desc")
    write(os.path.join(md, "tiff-desc.tif"), m.encode(m.photo(80, 60, 5), "TIFF", tiffinfo={270: c.canary, 315: c.canary}))
    import pillow_heif  # the HEIC fixtures only: pip install pillow-heif
    pillow_heif.register_heif_opener()
    c = C("heic-exif")
    photo = m.photo(160, 120, 6)
    icc = m.icc_srgb(c.canary)
    exif = m.tiff_bytes({0x010E: m.A(c.canary), 0x0112: m.S(1)})
    import io
    buf = io.BytesIO()
    photo.save(buf, "HEIF", quality=80, exif=b"Exif\x00\x00" + exif, xmp=m.xmp_packet(c.canary), icc_profile=icc)
    write(os.path.join(md, "heic-exif.heic"), buf.getvalue())

    ph = os.path.join(ROOT, "photos")
    write(os.path.join(ph, "garden.jpg"), m.jpeg(m.photo(640, 480, 7), quality=88))
    write(os.path.join(ph, "alpha.png"), m.png(m.photo(200, 150, 8, "RGBA")))
    write(os.path.join(ph, "street.webp"), m.encode(m.photo(320, 240, 9), "WEBP", quality=80))
    write(os.path.join(ph, "tiny.gif"), m.encode(m.photo(64, 48, 10).convert("P"), "GIF"))
    write(os.path.join(ph, "scan.tif"), m.encode(m.photo(120, 90, 11), "TIFF"))
    buf = io.BytesIO()
    Image.open(os.path.join(ph, "garden.jpg")).save(buf, "HEIF", quality=80)
    write(os.path.join(ph, "garden-phone.heic"), buf.getvalue())
    see_through = m.photo(200, 150, 12).convert("RGBA")
    see_through.putalpha(Image.linear_gradient("L").resize((200, 150)))
    buf = io.BytesIO()
    see_through.save(buf, "HEIF", quality=80)
    write(os.path.join(ph, "alpha.heic"), buf.getvalue())
    dm = os.path.join(ROOT, "damaged")
    os.makedirs(dm, exist_ok=True)
    Image.open(os.path.join(ph, "garden.jpg")).save(
        os.path.join(dm, "restart-markers.jpg"), "JPEG", quality=88, restart_marker_rows=1)
    print("fixtures written under", os.path.normpath(ROOT))


if __name__ == "__main__":
    main()
