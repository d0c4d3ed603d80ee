#!/usr/bin/env python3
"""Load test of `pixseal serve` under a hostile mix, loopback only, bounded in count and time.

N concurrent clients (default 200) for S seconds (default 60), each looping over one role:
  valid     uploads of ~2 MP photos (POST /v1/artifacts); a 503 `busy` is retried after its
            Retry-After, so "accepted" counts uploads that eventually got their 201
  hostile   uploads that must be refused: truncated JPEG, a PNG declaring 40000x40000 pixels,
            random bytes, an empty body
  slow      senders that declare 2 MB and trickle 1 KiB every 0.5 s (the server must cut them)
  verify    public verifications (POST /v1/verify) of a photo
plus one probe timing GET /healthz every 100 ms, and a sampler of the server's RSS.

Reports: server peak RSS (VmHWM), 5xx count, valid uploads accepted / attempted, refusals by
status, /healthz p50/p99/max, and the target from issue 18:
  decode_concurrency x (largest allowed decode + working set) + 256 MiB.

usage: load-test.py [--bin target/release/pixseal] [--clients 200] [--seconds 60]
Needs: Pillow (to make the inputs). The server runs on embedded defaults in a temporary
directory with rate limits off (one loopback address would otherwise be throttled at once).
"""
import argparse, asyncio, glob, io, json, os, random, socket, statistics, subprocess, sys, tempfile, time

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def photo(seed, mp=2.0):
    srcs = sorted(glob.glob(os.path.join(ROOT, "fixtures", "photos", "*.jpg")))
    im = Image.open(srcs[seed % len(srcs)]).convert("RGB")
    scale = (mp * 1e6 / (im.width * im.height)) ** 0.5
    im = im.resize((int(im.width * scale), int(im.height * scale)), Image.BICUBIC)
    px = im.load()
    rnd = random.Random(seed)
    for _ in range(2000):  # make each input distinct
        x, y = rnd.randrange(im.width), rnd.randrange(im.height)
        px[x, y] = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90)
    return b.getvalue()


def hostile_inputs(jpeg):
    import struct, zlib
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100000)) + chunk(b"IEND", b"")
    return [jpeg[: len(jpeg) // 3], bomb, os.urandom(50_000), b""]


async def request(port, method, path, body=b"", headers=(), timeout=120):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        w.write(head.encode() + body)
        await w.drain()
        data = await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()
    line = data.split(b"\r\n", 1)[0].split()
    status = int(line[1]) if len(line) > 1 else 0
    hdrs = {}
    for l in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode()
    return status, hdrs


class Stats:
    def __init__(self):
        self.status = {}
        self.valid_attempted = self.valid_accepted = self.busy_retries = 0
        self.slow_cut = self.slow_total = 0
        self.errors = []

    def count(self, role, st):
        self.status.setdefault(role, {}).setdefault(st, 0)
        self.status[role][st] += 1


async def client(i, port, key, photos, hostile, stats, deadline):
    role = ["valid", "hostile", "slow", "verify"][i % 4]
    auth = [("Authorization", f"Bearer {key}")]
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            if role == "valid":
                body = photos[(i * 7 + n) % len(photos)]
                stats.valid_attempted += 1
                while True:
                    st, h = await request(port, "POST", "/v1/artifacts?retention_days=7", body, auth)
                    stats.count(role, st)
                    if st == 503 and "retry-after" in h:
                        stats.busy_retries += 1
                        await asyncio.sleep(float(h["retry-after"]))
                        continue
                    break
                if st == 201:
                    stats.valid_accepted += 1
            elif role == "hostile":
                st, _ = await request(port, "POST", "/v1/artifacts", hostile[n % len(hostile)], auth)
                stats.count(role, st)
            elif role == "verify":
                st, _ = await request(port, "POST", "/v1/verify", photos[n % len(photos)])
                stats.count(role, st)
            else:
                stats.slow_total += 1
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n")
                cut = False
                try:
                    while time.monotonic() < deadline + 40:
                        w.write(b"\0" * 1024)
                        await w.drain()
                        await asyncio.sleep(0.5)
                        if r.at_eof():
                            break
                        try:
                            data = await asyncio.wait_for(r.read(4096), 0.01)
                            if data or r.at_eof():
                                st = int(data.split()[1]) if data.startswith(b"HTTP/") else 0
                                stats.count(role, st)
                                cut = True
                                break
                        except asyncio.TimeoutError:
                            pass
                except (ConnectionError, OSError):
                    cut = True
                stats.slow_cut += cut
                w.close()
        except Exception as e:  # a connection reset under load is data, not a crash of the test
            stats.errors.append(f"{role}: {type(e).__name__}")


async def probe(port, deadline, lat):
    while time.monotonic() < deadline:
        t = time.monotonic()
        try:
            st, _ = await request(port, "GET", "/healthz", timeout=10)
            lat.append((time.monotonic() - t) * 1000 if st == 200 else 10_000)
        except Exception:
            lat.append(10_000)
        await asyncio.sleep(0.1)


async def sampler(pid, deadline, rss):
    while time.monotonic() < deadline:
        try:
            for l in open(f"/proc/{pid}/status"):
                if l.startswith("VmRSS:"):
                    rss.append(int(l.split()[1]) * 1024)
        except FileNotFoundError:
            return
        await asyncio.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pixseal"))
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--decode-concurrency", type=int, default=0)
    a = ap.parse_args()
    a.clients = min(a.clients, 400)
    a.seconds = min(a.seconds, 300)

    photos = [photo(s) for s in range(8)]
    hostile = hostile_inputs(photos[0])
    tmp = tempfile.mkdtemp(prefix="pixseal-load.")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ, PIXSEAL_DATA_DIR=os.path.join(tmp, "data"),
               PIXSEAL_SERVER_RATE_LIMIT_PER_IP="0", PIXSEAL_SERVER_RATE_LIMIT_PER_KEY="0",
               PIXSEAL_SERVER_RATE_LIMIT_VERIFY_PER_IP="0", PIXSEAL_SERVER_PURGE_INTERVAL_SECS="0",
               PIXSEAL_SERVER_DECODE_CONCURRENCY=str(a.decode_concurrency))
    subprocess.run([a.bin, "tenant", "create", "load", "--region", "us"], env=env, check=True, capture_output=True)
    out = subprocess.run([a.bin, "--json", "apikey", "create", "--tenant", "load", "--scope", "artifacts:write"],
                         env=env, check=True, capture_output=True, text=True).stdout
    key = json.loads(out)["key"]
    srv = subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "serve.log"), "w"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        stats, lat, rss = Stats(), [], []
        deadline = time.monotonic() + a.seconds

        async def run():
            await asyncio.gather(
                probe(port, deadline, lat), sampler(srv.pid, deadline + 40, rss),
                *(client(i, port, key, photos, hostile, stats, deadline) for i in range(a.clients)))

        t0 = time.monotonic()
        asyncio.run(run())
        took = time.monotonic() - t0
        hwm = next(int(l.split()[1]) * 1024 for l in open(f"/proc/{srv.pid}/status") if l.startswith("VmHWM:"))
    finally:
        srv.terminate()
        srv.wait(30)
    five = sum(n for role in stats.status.values() for st, n in role.items() if st >= 500 and st != 503)
    busy = sum(role.get(503, 0) for role in stats.status.values())
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"clients {a.clients}, {a.seconds} s of load ({took:.0f} s with the slow senders' tail), decode_concurrency {a.decode_concurrency or os.cpu_count()}")
    print(f"| measure | value |\n|---|---|")
    print(f"| server peak RSS (VmHWM) | {hwm / 2**20:.0f} MiB |")
    print(f"| 5xx other than 503 busy | {five} |")
    print(f"| 503 busy (retried after Retry-After) | {busy} |")
    print(f"| valid uploads accepted / attempted | {stats.valid_accepted} / {stats.valid_attempted} |")
    print(f"| slow senders cut by the server | {stats.slow_cut} / {stats.slow_total} |")
    print(f"| /healthz p50 / p99 / max | {q(0.5):.1f} / {q(0.99):.1f} / {lat[-1]:.1f} ms ({len(lat)} probes) |")
    for role, d in sorted(stats.status.items()):
        print(f"| {role} answers | {', '.join(f'{k}: {v}' for k, v in sorted(d.items()))} |")
    if stats.errors:
        from collections import Counter
        print(f"| client-side errors | {dict(Counter(stats.errors))} |")
    return 1 if five else 0


if __name__ == "__main__":
    sys.exit(main())
