#!/usr/bin/env python3
"""bench-phone.py - `pixseal sanitize` throughput on phone formats (HEIC/HEIF, AVIF, JPEG XL) next to pyvips.

The job is bench_pipeline.py's "sanitize" job on other inputs: decode -> orient -> ICC (or nclx) to
sRGB -> strip all metadata -> JPEG quality 85, full size. One table per input format (heic, avif, and
jxl when there are any), each contender at every --jobs value, median of --repeat runs.

Contenders
  pixseal  PIXSEAL_BIN sanitize IN... -o DIR --format jpeg --quality 85 --jobs J: one process over all
           the inputs of one format; time = wall clock of the whole command (process start included).
  pyvips   Image.thumbnail (loads at full size, auto-rotates; plain load + autorot if thumbnail fails)
           + embedded ICC -> sRGB + jpegsave(Q=85, strip) in a pool of J worker processes spawned and
           warmed before the clock starts, VIPS_CONCURRENCY=1 (--vips-concurrency) per process.
  pillow   (optional) Pillow + pillow-heif for HEIC, Pillow's own AVIF plugin (else pillow-heif's) for
           AVIF, pillow-jxl-plugin for JXL; exif_transpose + ImageCms ICC -> sRGB + save(quality=85).
  Measuring is bench_pipeline.py's own code (imported from ../shared/tools/bench_pipeline.py, or
  --bench-pipeline / $BENCH_PIPELINE): run_measured() runs each contender under /usr/bin/time (largest
  single process RSS, CPU) with a /proc sampler for the summed RSS of the process tree.

Which libvips: pyvips-binary's bundled libvips (pip install pyvips-binary) decodes AVIF but has no HEVC
decoder, so it cannot read HEIC. With --pyvips-lib auto (default) the script probes the inputs with the
libvips pyvips imports by default and, if that one fails on some of them, with the system libvips
(Debian: apt-get install libvips42, whose libheif1 has libde265 and dav1d/aom) in cffi ABI mode
(pyvips-binary's _libvips module is kept from loading), and uses whichever decodes more inputs, for
every format. --pyvips-lib default|system forces one. The header names the libvips and libheif used.

Inputs: every HEIC/HEIF, AVIF and JPEG XL file under the given directories or files (default
../shared/corpus/photos from the repository root), recursively, found by their first bytes (ftyp
brands; a generic mif1/msf1 brand is resolved by the codec libvips reports), never by name. Files pyvips
cannot decode, or over 50 MP / 16384 px a side (pixseal's default limits), are skipped with a note. They
are copied to a work dir under /tmp as NNNN_stem.ext so that every contender reads the same copies.

Checks (on the last repeat's outputs): one decodable JPEG per input, named like the input; dimensions
equal to pyvips' auto-rotated size (+-2 px); no metadata (APPn other than JFIF/Adobe, COM, bytes after
EOI); and the mean abs difference (0-255) of a 16x16 BOX thumbnail against one made the same way from
pyvips' sRGB decode, flagged as "content" over --max-mae (default 3: pyvips' and Pillow's own outputs
stay under 0.5; a flip or half turn, which sizes cannot catch, or a skipped Display P3 -> sRGB
conversion, about 4, go over it).

Installs (Debian 12): apt-get install libvips42 (libheif1 + libde265 + dav1d come with it);
pip install pyvips (cffi ABI mode on that libvips; pyvips-binary may also be installed, see above);
Pillow is required (output checks); pillow-heif for the optional Pillow contender on HEIC.

Examples
  PIXSEAL_BIN=target/release/pixseal python3 scripts/bench-phone.py --markdown /tmp/phone.md
  python3 scripts/bench-phone.py --contenders pyvips,pillow --jobs 1 --repeat 1     # no pixseal
  python3 scripts/bench-phone.py /some/dir/of/heics --formats heic --repeat 5 --json /tmp/phone.json

Last lines printed, one per format: `heic: pixseal/pyvips MP/s ratio: X.XX (jobs=1); Y.YY (jobs=2)`,
or why there is none (`heic: pixseal: not available ...` / `... run failed ...`).
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
DEFAULT_INPUT = os.path.join(SHARED, "corpus", "photos")
DEFAULT_BENCH_PIPELINE = os.path.join(SHARED, "tools", "bench_pipeline.py")
MAX_PIXELS = 50_000_000
MAX_SIDE = 16384
KINDS = ("heic", "avif", "jxl")
ALL_CONTENDERS = ["pixseal", "pyvips", "pillow"]
BIG = 10_000_000  # "no resize" target for pyvips.Image.thumbnail


def die(msg: str, code: int = 1):
    print(f"bench-phone: {msg}", file=sys.stderr)
    sys.exit(code)


# --------------------------------------------------------------------------------------------
# format detection from bytes
# --------------------------------------------------------------------------------------------
JXL_CONTAINER = b"\0\0\0\x0cJXL \r\n\x87\n"
HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
AV1_BRANDS = {b"avif", b"avis"}
GENERIC_BRANDS = {b"mif1", b"msf1", b"mif2", b"miaf"}


def sniff(head: bytes) -> str | None:
    """'heic', 'avif', 'jxl', 'heif' (HEIF container, codec not named by the brands) or None."""
    if head.startswith(b"\xff\x0a") or head.startswith(JXL_CONTAINER):
        return "jxl"
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    major = head[8:12]
    brands = [major] + [head[i:i + 4] for i in range(16, end - 3, 4)]
    if major in AV1_BRANDS:
        return "avif"
    if major in HEVC_BRANDS:
        return "heic"
    if any(b in AV1_BRANDS for b in brands):
        return "avif"
    if any(b in HEVC_BRANDS for b in brands):
        return "heic"
    if any(b in GENERIC_BRANDS for b in brands):
        return "heif"
    return None


def find_inputs(paths: list[str]) -> tuple[list[tuple[str, str]], int]:
    found, other = [], 0
    for d in paths:
        if os.path.isfile(d):
            walk = [(os.path.dirname(d), [], [os.path.basename(d)])]
        elif os.path.isdir(d):
            walk = os.walk(d)
        else:
            die(f"input not found: {d}")
        for root, dnames, fnames in walk:
            dnames.sort()
            for fn in sorted(fnames):
                p = os.path.join(root, fn)
                try:
                    with open(p, "rb") as f:
                        kind = sniff(f.read(256))
                except OSError:
                    kind = None
                if kind:
                    found.append((p, kind))
                else:
                    other += 1
    return found, other


# --------------------------------------------------------------------------------------------
# pyvips helpers (used in the probe and driver subprocesses only, never in the main process)
# --------------------------------------------------------------------------------------------
def import_pyvips(mode: str):
    """mode 'system': keep pyvips-binary's compiled _libvips from loading, so that pyvips falls back to
    cffi ABI mode and dlopens libvips.so.42 from the system library path."""
    if mode == "system":
        sys.modules.setdefault("_libvips", None)
    import pyvips
    return pyvips


def _lib_info(pyvips) -> dict:
    import ctypes
    info = {"pyvips": pyvips.__version__, "api_mode": bool(pyvips.API_mode),
            "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
            "libvips_path": "?", "libheif": "?", "hevc_decoder": None, "av1_decoder": None}
    heif_path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if line.strip() else ""
                base = os.path.basename(p)
                if base.startswith("libvips") and ".so" in base and "cpp" not in base:
                    info["libvips_path"] = p
                elif base.startswith("libheif.so"):
                    heif_path = p
    except OSError:
        pass
    for cand in (heif_path, info["libvips_path"]):  # bundled builds link libheif statically
        if not cand or cand == "?":
            continue
        try:
            lib = ctypes.CDLL(cand)
            lib.heif_get_version.restype = ctypes.c_char_p
            info["libheif"] = lib.heif_get_version().decode()
            if hasattr(lib, "heif_have_decoder_for_format"):
                info["hevc_decoder"] = bool(lib.heif_have_decoder_for_format(1))  # heif_compression_HEVC
                info["av1_decoder"] = bool(lib.heif_have_decoder_for_format(4))  # heif_compression_AV1
            break
        except (OSError, AttributeError):
            continue
    if info["libheif"] == "?" and heif_path is None:
        info["libheif"] = "linked into libvips (version not exported)"
    return info


def to_srgb(pyvips, img):
    if img.get_typeof("icc-profile-data"):
        img = img.icc_transform("srgb", embedded=True)
    if img.interpretation != "srgb":
        img = img.colourspace("srgb")
    return img


def probe_main(args) -> None:
    """Full decode of every listed file with pyvips; prints one JSON object."""
    try:
        pyvips = import_pyvips(args._probe)
        pyvips.cache_set_max(0)
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"error": f"import pyvips failed: {type(e).__name__}: {e}"}))
        return
    out = {"lib": _lib_info(pyvips), "mode": args._probe, "files": []}
    with open(args._list) as f:
        paths = [ln.rstrip("\n") for ln in f if ln.strip()]
    for p in paths:
        rec = {"path": p}
        try:
            img = pyvips.Image.new_from_file(p)
            rec["compression"] = img.get("heif-compression") if img.get_typeof("heif-compression") else None
            rec["bitdepth"] = img.get("heif-bitdepth") if img.get_typeof("heif-bitdepth") else None
            rec["has_icc"] = bool(img.get_typeof("icc-profile-data"))
            rec["src_width"], rec["src_height"] = img.width, img.height
            img = img.autorot()
            rec["width"], rec["height"] = img.width, img.height
            ref = to_srgb(pyvips, img)
            if ref.bands > 3:
                ref = ref.extract_band(0, n=3)
            ref = ref.cast("uchar")
            # pulls every pixel: a file that fails to decode fails here. The thumbnail is made by Pillow
            # (BOX), as the outputs' are in check_outputs, so that only the pictures differ.
            from PIL import Image
            full = Image.frombuffer("RGB", (ref.width, ref.height), bytes(ref.write_to_memory()), "raw", "RGB", 0, 1)
            rec["thumb"] = full.resize((16, 16), Image.Resampling.BOX).tobytes().hex()
            del full
        except Exception as e:  # noqa: BLE001
            rec["error"] = " ".join(str(e).split())[:300]
        out["files"].append(rec)
    print(json.dumps(out))


# --------------------------------------------------------------------------------------------
# workers (run in the pool of the --_driver subprocess)
# --------------------------------------------------------------------------------------------
_W: dict = {}


def _init_pyvips(mode: str):
    pyvips = import_pyvips(mode)
    pyvips.cache_set_max(0)
    _W["pyvips"] = pyvips
    # libvips >= 8.15 replaced strip=True with keep=none
    _W["save"] = {"keep": 0} if (pyvips.version(0), pyvips.version(1)) >= (8, 15) else {"strip": True}


def pyvips_one(src: str, dst: str, quality: int) -> str | None:
    pyvips = _W["pyvips"]
    try:
        try:
            img = pyvips.Image.thumbnail(src, BIG, height=BIG, size="down")
        except pyvips.Error:
            img = pyvips.Image.new_from_file(src, access="sequential").autorot()
        img = to_srgb(pyvips, img)
        img.jpegsave(dst, Q=quality, **_W["save"])
        return None
    except Exception as e:  # noqa: BLE001
        return f"{os.path.basename(src)}: {type(e).__name__}: {' '.join(str(e).split())[:200]}"


def pillow_support() -> dict[str, str | None]:
    """Per kind: None when Pillow can decode it here, else why not."""
    why: dict[str, str | None] = {}
    from PIL import features
    try:
        import pillow_heif
        dec = " ".join(pillow_heif.libheif_info().get("decoders", {}).keys()).lower()
        why["heic"] = None if ("de265" in dec or "hevc" in dec or "ffmpeg" in dec) else \
            f"pillow-heif {pillow_heif.__version__} has no HEVC decoder"
        heif_av1 = any(k in dec for k in ("dav1d", "aom", "av1"))
    except Exception:  # noqa: BLE001
        why["heic"] = "pillow-heif not installed (pip install pillow-heif)"
        heif_av1 = False
    why["avif"] = None if (features.check("avif") or heif_av1) else "neither Pillow's AVIF plugin nor pillow-heif AV1"
    try:
        import pillow_jxl  # noqa: F401
        why["jxl"] = None
    except Exception:  # noqa: BLE001
        why["jxl"] = "pillow-jxl-plugin not installed"
    return why


def _init_pillow():
    from PIL import ImageCms, features
    try:
        import pillow_heif
        pillow_heif.register_heif_opener()
        if not features.check("avif") and hasattr(pillow_heif, "register_avif_opener"):
            pillow_heif.register_avif_opener()
    except ImportError:
        pass
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL plugin)
    except ImportError:
        pass
    _W["srgb"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def pillow_one(src: str, dst: str, quality: int) -> str | None:
    try:
        from PIL import Image, ImageCms, ImageOps
        with Image.open(src) as im:
            im.load()
            icc = im.info.get("icc_profile")
            im = ImageOps.exif_transpose(im)
        if icc:
            try:
                im = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _W["srgb"],
                                               outputMode="RGB")
            except Exception:  # noqa: BLE001
                pass
        if im.mode != "RGB":
            im = im.convert("RGB")
        im.info = {}
        im.save(dst, "JPEG", quality=quality, comment=b"", exif=b"", icc_profile=None)
        return None
    except Exception as e:  # noqa: BLE001
        return f"{os.path.basename(src)}: {type(e).__name__}: {e}"


def _warm(_):
    time.sleep(0.2)
    return os.getpid()


def driver_main(args) -> None:
    """One timed batch of a pool contender; prints one JSON line."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    sizes = {}
    with open(args._list) as f:  # lines: MP <tab> path
        for line in f:
            if line.strip():
                mp_, path = line.rstrip("\n").split("\t", 1)
                sizes[path] = float(mp_)
    files = sorted(sizes, key=lambda s: -sizes[s])  # largest first: better balance across workers
    if args._driver == "pyvips":
        init, initargs, fn = _init_pyvips, (args._mode,), pyvips_one
    elif args._driver == "pillow":
        init, initargs, fn = _init_pillow, (), pillow_one
    else:
        die(f"unknown driver {args._driver}")
    errors = []
    with ProcessPoolExecutor(args._jobs, mp_context=mp.get_context("spawn"), initializer=init,
                             initargs=initargs) as ex:
        list(ex.map(_warm, range(args._jobs * 2)))  # spawn + import everything before the clock starts
        t0 = time.perf_counter()
        futs = [ex.submit(fn, s, os.path.join(args._out, os.path.splitext(os.path.basename(s))[0] + ".jpg"),
                          args.quality) for s in files]
        for fu in futs:
            e = fu.result()
            if e:
                errors.append(e)
        secs = time.perf_counter() - t0
    print(json.dumps({"seconds": secs, "errors": errors}))


# --------------------------------------------------------------------------------------------
# main process
# --------------------------------------------------------------------------------------------
def load_bench_pipeline(path: str):
    if not os.path.isfile(path):
        die(f"bench_pipeline.py not found at {path} (its measuring code is reused: pass --bench-pipeline "
            f"PATH or set $BENCH_PIPELINE)")
    spec = importlib.util.spec_from_file_location("bench_pipeline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in ("run_measured", "jpeg_metadata_issues", "resolve_pixseal", "fmt"):
        if not hasattr(mod, name):
            die(f"{path} has no {name}(); this script needs a bench_pipeline.py that defines it")
    return mod


def run_probe(mode: str, paths: list[str], work: str) -> dict:
    listfile = os.path.join(work, f"probe_{mode}.txt")
    with open(listfile, "w") as f:
        f.write("".join(p + "\n" for p in paths))
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--_probe", mode, "--_list", listfile],
                       capture_output=True, text=True, timeout=1800)
    try:
        return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    except Exception:  # noqa: BLE001
        return {"error": f"probe ({mode}) failed rc={p.returncode}: {p.stderr.strip()[-400:]}"}


def choose_pyvips(paths: list[str], want: str, work: str) -> dict:
    if want != "auto":
        return run_probe(want, paths, work)
    first = run_probe("default", paths, work)
    if "error" in first:  # e.g. a broken compiled binding: the system libvips in ABI mode may still work
        second = run_probe("system", paths, work)
        return first if "error" in second else second
    bad = sum(1 for r in first["files"] if "error" in r)
    if bad and first["lib"]["api_mode"]:  # a compiled binding, maybe pyvips-binary's: try the system libvips
        second = run_probe("system", paths, work)
        if "error" not in second and sum(1 for r in second["files"] if "error" in r) < bad:
            second["why"] = (f"libvips {first['lib']['libvips']} ({first['lib']['libvips_path']}) decoded "
                             f"{len(paths) - bad}/{len(paths)} inputs; the system libvips decodes more")
            return second
    return first


def describe_lib(pv: dict) -> str:
    lib = pv["lib"]
    dec = []
    if lib.get("hevc_decoder") is not None:
        dec.append("HEVC " + ("yes" if lib["hevc_decoder"] else "no"))
        dec.append("AV1 " + ("yes" if lib["av1_decoder"] else "no"))
    return (f"pyvips {lib['pyvips']} ({'API' if lib['api_mode'] else 'ABI'} mode, --pyvips-lib {pv['mode']}), "
            f"libvips {lib['libvips']} [{lib['libvips_path']}], libheif {lib['libheif']}"
            + (f" (decoders: {', '.join(dec)})" if dec else ""))


def run_contender(bp, name: str, st: dict, staged: list[str], sizes: dict, outdir: str, J: int, args,
                  pyvips_mode: str) -> dict:
    if os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    env = dict(os.environ)
    if name == "pixseal":
        cmd = [st["bin"], "sanitize", *staged, "-o", outdir, "--format", "jpeg",
               "--quality", str(args.quality), "--jobs", str(J)]
        r = bp.run_measured(cmd, env, timeout=args.timeout)
        r["seconds"] = r["wall_s"]
        r["errors"] = [ln for ln in r["stderr"].splitlines() if ln.strip()][:20]
        return r
    listfile = os.path.join(os.path.dirname(outdir), f"list_{name}.txt")
    with open(listfile, "w") as f:
        f.write("".join(f"{sizes[s]}\t{s}\n" for s in staged))
    env["VIPS_CONCURRENCY"] = str(args.vips_concurrency)
    cmd = [sys.executable, os.path.abspath(__file__), "--_driver", name, "--_list", listfile, "--_out", outdir,
           "--_jobs", str(J), "--_mode", pyvips_mode, "--quality", str(args.quality)]
    r = bp.run_measured(cmd, env, timeout=args.timeout)
    try:
        j = json.loads([ln for ln in r["stdout"].splitlines() if ln.startswith("{")][-1])
        r["seconds"], r["errors"] = j["seconds"], j["errors"]
    except Exception:  # noqa: BLE001
        r["seconds"], r["errors"] = None, [f"driver failed rc={r['rc']}: {r['stderr'].strip()[-500:]}"]
    return r


def check_outputs(bp, recs: list[dict], outdir: str, max_mae: float) -> dict:
    from PIL import Image
    res = {"inputs": len(recs), "ok": 0, "missing": [], "undecodable": [], "wrong_dims": [], "metadata": [],
           "content": [], "extra_files": 0, "max_thumb_mae": 0.0, "mae": {}}
    names = set(os.listdir(outdir)) if os.path.isdir(outdir) else set()
    used = set()
    for rec in recs:
        stem = os.path.splitext(os.path.basename(rec["staged"]))[0]
        fn = next((stem + e for e in (".jpg", ".jpeg", ".JPG") if stem + e in names), None)
        if not fn:
            res["missing"].append(stem)
            continue
        used.add(fn)
        with open(os.path.join(outdir, fn), "rb") as f:
            data = f.read()
        try:
            im = Image.open(io.BytesIO(data))
            if im.format != "JPEG":
                raise ValueError(f"format {im.format}")
            im.load()
        except Exception as e:  # noqa: BLE001
            res["undecodable"].append(f"{stem}: {e}")
            continue
        bad = False
        if abs(im.width - rec["width"]) > 2 or abs(im.height - rec["height"]) > 2:
            res["wrong_dims"].append(f"{stem}: got {im.width}x{im.height}, pyvips {rec['width']}x{rec['height']}")
            bad = True
        else:
            t = im.convert("RGB").resize((16, 16), Image.Resampling.BOX).tobytes()
            ref = bytes.fromhex(rec["thumb"])
            if len(ref) == len(t):
                mae = sum(abs(a - b) for a, b in zip(t, ref)) / len(t)
                res["mae"][stem] = round(mae, 2)
                res["max_thumb_mae"] = max(res["max_thumb_mae"], round(mae, 1))
                if mae > max_mae:
                    res["content"].append(f"{stem}: 16x16 thumbnail differs from pyvips' by {mae:.1f}/255")
                    bad = True
        meta = bp.jpeg_metadata_issues(data)
        if meta:
            res["metadata"].append(f"{stem}: {','.join(meta)}")
            bad = True
        if not bad:
            res["ok"] += 1
    res["extra_files"] = len(names - used)
    return res


def check_summary(c: dict | None) -> str:
    if c is None:
        return "skipped"
    parts = [f"{len(c[k])} {k.replace('_', ' ')}" for k in ("missing", "undecodable", "wrong_dims", "metadata",
                                                             "content") if c[k]]
    if c["extra_files"]:
        parts.append(f"{c['extra_files']} extra files")
    s = f"{c['ok']}/{c['inputs']} ok" + (f", mae≤{c['max_thumb_mae']:.1f}" if c["mae"] else "")
    return s if not parts else f"{s}; " + ", ".join(parts)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring for installs and details.")
    ap.add_argument("inputs", nargs="*", help=f"directories (recursed) or files; default {DEFAULT_INPUT}")
    ap.add_argument("--jobs", default="1,2", help="comma list of worker counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender; the median is reported (default 3)")
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--formats", default=",".join(KINDS), help="comma list of heic,avif,jxl (default: all found)")
    ap.add_argument("--contenders", default=",".join(ALL_CONTENDERS), help="comma list (default: all)")
    ap.add_argument("--pixseal-bin", default=None, help="pixseal binary (default $PIXSEAL_BIN, then PATH)")
    ap.add_argument("--pyvips-lib", choices=("auto", "default", "system"), default="auto",
                    help="libvips for pyvips: what `import pyvips` loads, the system one (ABI mode), or "
                         "auto: the one that decodes more inputs (default)")
    ap.add_argument("--vips-concurrency", type=int, default=1, help="VIPS_CONCURRENCY per libvips process (default 1)")
    ap.add_argument("--bench-pipeline", default=os.environ.get("BENCH_PIPELINE", DEFAULT_BENCH_PIPELINE),
                    help="bench_pipeline.py whose measuring code is reused (default ../shared/tools/)")
    ap.add_argument("--max-mae", type=float, default=3.0,
                    help="flag outputs whose 16x16 thumbnail differs from pyvips' by more (default 3/255; pyvips and "
                         "Pillow stay under 0.5, a skipped Display P3 -> sRGB conversion gives about 4)")
    ap.add_argument("--markdown", default=None, help="write the report as markdown to this file")
    ap.add_argument("--json", dest="json_out", default=None, help="write all results to this JSON file")
    ap.add_argument("--workdir", default=None, help="work dir (default: a new dir under /tmp, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (staged inputs and outputs)")
    ap.add_argument("--no-check", action="store_true", help="skip the output checks")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per contender run")
    S = argparse.SUPPRESS
    ap.add_argument("--_driver", help=S)
    ap.add_argument("--_probe", help=S)
    ap.add_argument("--_list", help=S)
    ap.add_argument("--_out", help=S)
    ap.add_argument("--_jobs", type=int, default=1, help=S)
    ap.add_argument("--_mode", default="default", help=S)
    return ap.parse_args(argv)


def contender_status(bp, args, pv: dict) -> dict:
    st = {}
    pix, why = bp.resolve_pixseal(args.pixseal_bin)
    st["pixseal"] = {"ok": bool(pix), "note": why, "bin": pix}
    if pix:
        try:
            v = subprocess.run([pix, "--version"], capture_output=True, text=True, timeout=20)
            txt = (v.stdout or v.stderr).strip()
            st["pixseal"]["version"] = f"{txt.splitlines()[0] if txt else '?'} [{pix}]"
        except Exception as e:  # noqa: BLE001
            st["pixseal"]["version"] = f"? ({e}) [{pix}]"
    st["pyvips"] = {"ok": "error" not in pv, "note": pv.get("error", ""),
                    "version": describe_lib(pv) if "lib" in pv else ""}
    try:
        import PIL
        sup = pillow_support()
        ver = f"Pillow {PIL.__version__}"
        try:
            import pillow_heif
            info = pillow_heif.libheif_info()
            ver += (f", pillow-heif {pillow_heif.__version__} (libheif {info.get('libheif')}, decoders: "
                    f"{', '.join(info.get('decoders', {}).values()) or 'none'})")
        except Exception:  # noqa: BLE001
            pass
        from PIL import features
        if features.check("avif"):
            ver += f", Pillow AVIF plugin (libavif {features.version('avif')})"
        st["pillow"] = {"ok": True, "note": "", "version": ver, "per_kind": sup}
    except Exception as e:  # noqa: BLE001
        st["pillow"] = {"ok": False, "note": f"Pillow: {e}"}
    return st


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._probe:
        probe_main(args)
        return 0
    if args._driver:
        driver_main(args)
        return 0
    try:
        from PIL import Image  # noqa: F401
    except ImportError:
        die("Pillow is required (output checks): pip install pillow")
    bp = load_bench_pipeline(args.bench_pipeline)
    try:
        jobs_list = [int(j) for j in args.jobs.split(",") if j.strip()]
        assert jobs_list and all(j >= 1 for j in jobs_list)
    except (ValueError, AssertionError):
        die(f"--jobs wants a comma list of positive integers, got {args.jobs!r}")
    wanted = [c.strip() for c in args.contenders.split(",") if c.strip()]
    kinds_wanted = [k.strip() for k in args.formats.split(",") if k.strip()]
    for c in wanted:
        if c not in ALL_CONTENDERS:
            die(f"unknown contender {c!r} (known: {', '.join(ALL_CONTENDERS)})")
    for k in kinds_wanted:
        if k not in KINDS:
            die(f"unknown format {k!r} (known: {', '.join(KINDS)})")

    inputs = args.inputs or [DEFAULT_INPUT]
    load0 = os.getloadavg()[0]
    if load0 > 0.5:
        print(f"# WARNING: load average {load0:.2f} at start: other work on this machine skews the figures",
              flush=True)
    found, n_other = find_inputs(inputs)
    print(f"# {len(found)} HEIF/AVIF/JXL files (by their first bytes) under {', '.join(inputs)}; "
          f"{n_other} other files ignored", flush=True)
    if not found:
        die("no HEIC/HEIF, AVIF or JPEG XL input found")

    own_workdir = args.workdir is None
    work = args.workdir or tempfile.mkdtemp(prefix="bench_phone_", dir="/tmp")
    os.makedirs(work, exist_ok=True)
    results: dict = {}
    try:
        pv = choose_pyvips([p for p, _ in found], args.pyvips_lib, work)
        if "error" in pv:
            die(f"pyvips is the reference (sizes, checks) and is not usable: {pv['error']}\n"
                "  install: apt-get install libvips42 && pip install pyvips")
        if pv.get("why"):
            print(f"# pyvips: using the system libvips: {pv['why']}", flush=True)
        by_path = {r["path"]: r for r in pv["files"]}
        recs, skipped = [], []
        for path, brand_kind in found:
            r = by_path[path]
            if "error" in r:
                skipped.append(f"{path}: pyvips cannot decode it: {r['error'][:200]}")
                continue
            kind = {"hevc": "heic", "av1": "avif"}.get(r.get("compression") or "", brand_kind)
            if kind == "heif":
                skipped.append(f"{path}: HEIF with codec {r.get('compression')!r}, neither HEVC nor AV1")
                continue
            if kind not in kinds_wanted:
                continue
            w, h = r["width"], r["height"]
            if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
                skipped.append(f"{path}: over pixseal's default limits ({w}x{h})")
                continue
            recs.append({**r, "kind": kind, "brand_kind": brand_kind, "mp": w * h / 1e6})
        for s in skipped:
            print(f"# skipped {s}")
        kinds = [k for k in KINDS if k in kinds_wanted and any(r["kind"] == k for r in recs)]
        if not kinds:
            die("no decodable input in the formats asked for")

        st = contender_status(bp, args, pv)
        for c in wanted:
            print(f"# {c}: " + (st[c].get("version", "") if st[c]["ok"] else f"NOT AVAILABLE - {st[c]['note']}"),
                  flush=True)

        # stage copies: NNNN_stem.ext, per format
        for i, r in enumerate(recs):
            stem = os.path.splitext(os.path.basename(r["path"]))[0]
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:40]
            ext = os.path.splitext(r["path"])[1].lower() or "." + r["kind"]
            d = os.path.join(work, "in", r["kind"])
            os.makedirs(d, exist_ok=True)
            r["staged"] = os.path.join(d, f"{i:04d}_{safe}{ext}")
            shutil.copyfile(r["path"], r["staged"])

        results = {"config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
                   "host": {"platform": platform.platform(), "python": sys.version.split()[0],
                            "cpus": os.cpu_count()},
                   "contenders": st, "pyvips_lib": pv["lib"], "pyvips_mode": pv["mode"],
                   "pyvips_choice": pv.get("why"),
                   "inputs": [{k: r[k] for k in ("path", "kind", "brand_kind", "compression", "bitdepth",
                                                 "has_icc", "src_width", "src_height", "width", "height")}
                              | {"mp": round(r["mp"], 3)} for r in recs],
                   "skipped_inputs": skipped, "formats": {}}
        sections, finals = [], []
        for kind in kinds:
            krecs = [r for r in recs if r["kind"] == kind]
            staged = [r["staged"] for r in krecs]
            sizes = {r["staged"]: r["mp"] for r in krecs}
            total_mp = sum(sizes.values())
            active = [c for c in wanted if st[c]["ok"] and not (c == "pillow" and st[c]["per_kind"].get(kind))]
            print(f"# {kind}: {len(krecs)} files, {total_mp:.1f} MP (largest {max(sizes.values()):.1f} MP), "
                  f"contenders {', '.join(active) or 'none'}; repeat {args.repeat}; cpus {os.cpu_count()}",
                  flush=True)
            krows: dict = {}
            for J in jobs_list:
                runs = {c: [] for c in active}
                for rep in range(args.repeat):
                    order = active[rep % len(active):] + active[:rep % len(active)]  # rotate to spread drift
                    for c in order:
                        r = run_contender(bp, c, st[c], staged, sizes, os.path.join(work, "out", kind, f"j{J}", c),
                                          J, args, pv["mode"])
                        runs[c].append(r)
                        print(f"#   {kind} jobs={J} run {rep + 1}/{args.repeat} {c:8s} "
                              f"{bp.fmt(r['seconds'], '.3f')} s  rc={r['rc']}  cpu {r['cpu_s']:.2f} s  "
                              f"rss {r['tree_rss_kb'] / 1024:.0f}/{r['max_proc_rss_kb'] / 1024:.0f} MiB"
                              + (f"  errors: {len(r['errors'])} (first: {r['errors'][0][:200]})"
                                 if r["errors"] else ""), flush=True)
                for c in active:
                    rs = runs[c]
                    chk = None if args.no_check else check_outputs(
                        bp, krecs, os.path.join(work, "out", kind, f"j{J}", c), args.max_mae)
                    failed = [r for r in rs if r["rc"] != 0 or r["seconds"] is None]
                    complete = chk is None or not (chk["missing"] or chk["undecodable"])
                    secs = [r["seconds"] for r in rs if r["seconds"] is not None]
                    med = statistics.median(secs) if secs and not failed and complete else None
                    why = ""
                    if failed:
                        r0 = failed[0]
                        why = f"run failed (rc={r0['rc']}): " + (r0["errors"][0][:200] if r0["errors"] else "")
                    elif not complete:
                        why = "incomplete output: " + check_summary(chk)
                    krows[(c, J)] = {
                        "contender": c, "jobs": J, "files": len(krecs), "mp": total_mp, "seconds": secs,
                        "median_s": med, "mp_per_s": total_mp / med if med else None,
                        "cpu_s_median": statistics.median([r["cpu_s"] for r in rs]),
                        "tree_rss_mib": max(r["tree_rss_kb"] for r in rs) / 1024,
                        "max_proc_rss_mib": max(r["max_proc_rss_kb"] for r in rs) / 1024,
                        "rc": [r["rc"] for r in rs], "errors": rs[-1]["errors"][:20], "check": chk, "invalid": why,
                    }
            # table
            lines = [f"### {kind}: {len(krecs)} files, {total_mp:.1f} MP, sanitize -> JPEG q{args.quality}, "
                     f"full size, median of {args.repeat}", "",
                     "| contender | jobs | files | MP | median s | MP/s | MP/s ÷ pyvips | CPU s | "
                     "peak RSS MiB (tree / 1 proc) | check |",
                     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
            ratios = {}
            for J in jobs_list:
                base = krows.get(("pyvips", J), {}).get("mp_per_s")
                for c in active:
                    rw = krows[(c, J)]
                    ratio = rw["mp_per_s"] / base if base and rw["mp_per_s"] else None
                    rw["ratio_vs_pyvips"] = ratio
                    if c == "pixseal" and ratio:
                        ratios[J] = ratio
                    note = check_summary(rw["check"]) + (f"; {rw['invalid']}" if rw["invalid"] else "")
                    lines.append(f"| {c} | {J} | {rw['files']} | {rw['mp']:.1f} | {bp.fmt(rw['median_s'], '.3f')} | "
                                 f"{bp.fmt(rw['mp_per_s'], '.1f')} | {bp.fmt(ratio)} | {rw['cpu_s_median']:.2f} | "
                                 f"{rw['tree_rss_mib']:.0f} / {rw['max_proc_rss_mib']:.0f} | {note} |")
            for c in wanted:
                if c not in active:
                    why = st[c]["note"] if not st[c]["ok"] else st[c]["per_kind"].get(kind)
                    lines.append(f"| {c} | - | - | - | - | - | - | - | - | not available: {why} |")
            if "pixseal" not in wanted:
                final = f"{kind}: pixseal not run (--contenders)"
            elif not st["pixseal"]["ok"]:
                final = f"{kind}: pixseal: not available ({st['pixseal']['note']})"
            elif "pyvips" not in active:
                final = f"{kind}: pixseal/pyvips MP/s ratio: n/a (pyvips not run)"
            elif ratios:
                final = f"{kind}: pixseal/pyvips MP/s ratio: " + "; ".join(
                    f"{v:.2f} (jobs={J})" for J, v in ratios.items())
                missing = [J for J in jobs_list if J not in ratios]
                if missing:
                    final += "; n/a at jobs=" + ",".join(map(str, missing))
            else:
                bad = [krows[("pixseal", J)]["invalid"] for J in jobs_list if krows[("pixseal", J)]["invalid"]]
                final = f"{kind}: pixseal: {bad[0] if bad else 'no valid run'}"
            lines += ["", final]
            sections.append("\n".join(lines))
            finals.append(final)
            results["formats"][kind] = {"total_mp": total_mp, "files": [r["path"] for r in krecs],
                                        "rows": [v for v in krows.values()], "pixseal_over_pyvips": ratios,
                                        "summary": final}
    finally:
        if own_workdir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"# work dir kept: {work}")

    notes = ("MP = decoded megapixels of the primary image; pixseal time is the CLI's wall clock (process "
             "start included); pyvips/pillow time is the batch inside a driver whose worker pool was already "
             "spawned and warmed; CPU s = user+sys of the whole process tree (/usr/bin/time; drivers include "
             "interpreter start and pool spawn); peak RSS: tree = sampled peak of the summed process tree, "
             "1 proc = largest single process. MP/s is left out ('-') for a contender whose run failed or "
             "whose output is incomplete. mae = largest mean abs difference (0-255) of a 16x16 thumbnail "
             "against pyvips' own sRGB decode.")
    print()
    print("\n\n".join(sections))
    print()
    print("Notes: " + notes)
    for kind, fr in results["formats"].items():
        for rw in fr["rows"]:
            c = rw["check"]
            if c and (c["missing"] or c["undecodable"] or c["wrong_dims"] or c["metadata"] or c["content"]):
                detail = (c["missing"] + c["undecodable"] + c["wrong_dims"] + c["metadata"] + c["content"])[:5]
                print(f"check {kind} jobs={rw['jobs']} {rw['contender']}: {check_summary(c)}; e.g. "
                      + "; ".join(detail))
    if args.markdown:
        md = ["# Phone formats: `pixseal sanitize` vs pyvips", "",
              f"`python3 scripts/bench-phone.py {' '.join(sys.argv[1:] if argv is None else argv)}` on "
              f"{platform.node() or 'this machine'}, {os.cpu_count()} cpus, "
              f"{time.strftime('%Y-%m-%d %H:%M %Z')}.", ""]
        for c in wanted:
            md.append(f"- {c}: " + (st[c].get("version", "") if st[c]["ok"] else f"not available: {st[c]['note']}"))
        if pv.get("why"):
            md.append(f"- pyvips uses the system libvips: {pv['why']}")
        md += [f"- load average (1 min) at start {load0:.2f}, at end {os.getloadavg()[0]:.2f} "
               "(other work on the machine skews the figures)"]
        md += ["", "Inputs (size as pyvips loads it, irot/imir applied by libheif, then after autorot):", "",
               "| file | format | codec | bits | ICC | loaded | autorotated | MP |",
               "|---|---|---|---:|---|---|---|---:|"]
        top = os.path.commonpath([os.path.dirname(r["path"]) for r in recs])
        for r in recs:
            md.append(f"| {os.path.relpath(r['path'], top)} "
                      f"| {r['kind']} | {r.get('compression') or '-'} | {r.get('bitdepth') or '-'} | "
                      f"{'yes' if r['has_icc'] else 'no'} | {r['src_width']}x{r['src_height']} | "
                      f"{r['width']}x{r['height']} | {r['mp']:.1f} |")
        if skipped:
            md += ["", "Skipped:", ""] + [f"- {s}" for s in skipped]
        md += [""] + ["\n\n".join(sections), "", "Notes: " + notes, ""]
        with open(args.markdown, "w") as f:
            f.write("\n".join(md))
        print(f"wrote {args.markdown}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"wrote {args.json_out}")
    load1 = os.getloadavg()[0]
    if max(load0, load1) > 0.5:
        print(f"# load average {load0:.2f} at start, {load1:.2f} at end (busy machine: figures skewed)")
    for line in finals:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
