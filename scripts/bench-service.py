#!/usr/bin/env python3
"""Load benchmark of `pixseal serve`: uploads of ~2 MP photos over loopback for a fixed time.

For SQLite and PostgreSQL (fresh database on 127.0.0.1:5432), reports uploads/s, p50/p99
latency and the server's peak RSS, next to the bare pipeline's photos/s (`pixseal sanitize
--format webp`, the same output format as the service, all cores) and the CLI doing an upload's
work (`pixseal stamp --format webp`) on the same files.

usage: bench-service.py [--seconds 60] [--clients 4] [--bin target/release/pixseal]
Needs: Pillow (to make the 2 MP inputs from ../shared/corpus or the repo's fixtures), psql.
"""
import argparse, glob, http.client, io, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_inputs(d, n=12):
    srcs = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "corpus", "photos", "**", "*.jpg"), recursive=True))
    srcs = [p for p in srcs if os.path.getsize(p) > 300_000][: n * 2] or glob.glob(os.path.join(ROOT, "fixtures", "photos", "*.jpg"))
    out = []
    for p in srcs:
        try:
            im = Image.open(p).convert("RGB")
        except Exception:
            continue
        scale = (2_000_000 / (im.width * im.height)) ** 0.5
        im = im.resize((max(1, int(im.width * scale)), max(1, int(im.height * scale))), Image.LANCZOS)
        f = os.path.join(d, "in%02d.jpg" % len(out))
        im.save(f, quality=90)
        out.append(f)
        if len(out) == n:
            break
    return out


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def peak_rss_mb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_server(binary, data, port, env):
    p = subprocess.Popen([binary, "--data-dir", data, "serve", "--listen", "127.0.0.1:%d" % port],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return p
        except OSError:
            pass
        time.sleep(0.05)
    p.kill(); raise SystemExit("server did not start")


def load(port, key, bodies, seconds, clients):
    lat, errors, stop = [], [0], time.monotonic() + seconds
    lock = threading.Lock()

    def worker(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        k = i
        while time.monotonic() < stop:
            body = bodies[k % len(bodies)]; k += clients
            t = time.monotonic()
            try:
                c.request("POST", "/v1/artifacts", body=body, headers={"Authorization": "Bearer " + key})
                r = c.getresponse(); r.read()
                ok = r.status == 201
            except OSError:
                ok = False; c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                if ok:
                    lat.append(time.monotonic() - t)
                else:
                    errors[0] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in ts: t.start()
    for t in ts: t.join()
    return lat, errors[0], time.monotonic() - t0


def bench_db(name, binary, files, bodies, seconds, clients):
    data = tempfile.mkdtemp(prefix="pixseal-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXSEAL_")}
    env["PIXSEAL_LOG"] = "warn"
    env["PIXSEAL_SERVER_RATE_LIMIT_PER_KEY"] = "0"  # measure throughput, not the limiter
    if name == "postgres":
        db = "pixseal_bench_%d" % os.getpid()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS %s" % db], check=True, capture_output=True)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE %s" % db], check=True, capture_output=True)
        env["PIXSEAL_SERVER_DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/%s" % db
    subprocess.run([binary, "--data-dir", data, "tenant", "create", "bench", "--region", "us"], env=env, check=True, capture_output=True)
    out = subprocess.run([binary, "--data-dir", data, "apikey", "create", "--tenant", "bench", "--scope", "artifacts:write", "--json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    key = json.loads(out)["key"]
    port = free_port()
    p = run_server(binary, data, port, env)
    try:
        lat, errors, wall = load(port, key, bodies, seconds, clients)
        rss = peak_rss_mb(p.pid)
    finally:
        p.terminate(); p.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000 if lat else float("nan")
    return {"name": name, "uploads": len(lat), "errors": errors, "per_s": len(lat) / wall, "p50": q(0.5), "p99": q(0.99), "rss": rss}


def bench_cli(binary, command, files, seconds):
    """Photos/s of `pixseal COMMAND FILES -o DIR --format webp` (all cores), repeated for up to 20 s."""
    out = tempfile.mkdtemp(prefix="pixseal-bench-out-")
    data = tempfile.mkdtemp(prefix="pixseal-bench-data-")
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < min(seconds, 20):
        subprocess.run([binary, "--data-dir", data, command, *files, "-o", out, "--format", "webp"], check=True, capture_output=True)
        n += len(files)
    wall = time.monotonic() - t0
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return n / wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pixseal"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pixseal-bench-in-")
    files = make_inputs(work)
    bodies = [open(f, "rb").read() for f in files]
    mp = statistics.mean(Image.open(f).width * Image.open(f).height for f in files) / 1e6
    base = bench_cli(a.bin, "sanitize", files, a.seconds)
    stamp = bench_cli(a.bin, "stamp", files, a.seconds)
    rows = [bench_db(n, a.bin, files, bodies, a.seconds, a.clients) for n in ("sqlite", "postgres")]
    print("%d inputs of %.1f MP (JPEG q90), %d clients, %d s per database, %d cores\n" % (len(files), mp, a.clients, a.seconds, os.cpu_count()))
    print("| run | uploads/s | vs bare pipeline | vs `stamp` | p50 ms | p99 ms | errors | server peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("| bare pipeline: `pixseal sanitize --format webp` (all cores) | %.1f | 1.00 | | | | | |" % base)
    print("| the same work as an upload: `pixseal stamp --format webp` (all cores) | %.1f | %.2f | 1.00 | | | | |" % (stamp, stamp / base))
    for r in rows:
        print("| `pixseal serve`, %s | %.1f | %.2f | %.2f | %.0f | %.0f | %d | %.0f |" % (r["name"], r["per_s"], r["per_s"] / base, r["per_s"] / stamp, r["p50"], r["p99"], r["errors"], r["rss"]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
