#!/usr/bin/env python3
"""Ephemeral stamping benchmark: `POST /v1/stamp` against the offline CLI, and the
proof-of-work challenge's solve time in Rust and in Chromium.

1. Throughput. `pixseal serve` on embedded defaults (SQLite, local blobs and keys, in a
   temporary data dir; rate limits off, one loopback address), an API key with scope `stamp`,
   and CLIENTS threads each sending one ~2 MP photo per request (raw body, or `--multipart`
   one-file forms) for SECONDS; against `pixseal stamp FILES -o DIR --jobs JOBS` repeated on the
   same photos for SECONDS, in the same run: the two alternate in ROUNDS turns of SECONDS/ROUNDS
   each, so that a change in the machine's load falls on both.
   Both sides use the same options, the defaults of both: JPEG quality 85, visible mark on, no
   label (passed explicitly: `format=jpeg&quality=85`, `--format jpeg --quality 85`). Every
   answer must be a 200 `image/jpeg` whose SHA-256 is its `Pixseal-Sha256`; anything else counts
   as an error and is listed by status and code. Reports photos/s of both, their ratio
   (target: server >= 0.95x CLI), p50/p99 latency of the route and the server's peak RSS.
2. Proof-of-work solve time at the default difficulty, on an idle server (the difficulty rises
   while decode slots are busy, so nothing else runs meanwhile):
   - Rust (ALTCHA's solver, as `pixseal stamp --server` uses it): a second server with
     `PIXSEAL_STAMP_CHALLENGE_OVER=0` wants a challenge for every request, so each of SOLVES small
     pictures sent by `pixseal stamp --server URL --jobs 1` is refused once, then a challenge is
     fetched, solved and the picture sent again. The CLI talks to that server through a
     recording reverse proxy here, which reads each `Pixseal-Challenge` sent: the solution
     carries the solver's own time (ALTCHA's `solution.time`) and the counter it reached.
   - Chromium: Debian's chromium through chromedriver (`scripts/chromedriver.sh`, spoken to in
     W3C WebDriver over urllib) opens the server's `/stamp` page and, as its `stamp.js` does,
     fetches `GET /v1/challenge?route=stamp` and hands it to a Web Worker running the served
     `/assets/pow-worker.js`, SOLVES times with a fresh challenge each. The time is the worker's
     own (`solution.time`, what `stamp.js` records), plus the page's wall time (worker start
     included), and the counter it reached gives the cost per attempt. Each solution is then
     redeemed with a one-picture `POST /v1/stamp`, which must answer 200 (a header sent where
     none is needed is still checked and spent).
   The server's cost of checking a solution is `cargo bench --locked --workspace --bench
   challenge` (docs/stamping.md), not measured here.

usage: bench-stamp.py [--seconds 30] [--clients 4] [--jobs 4] [--rounds 3] [--solves 10]
                      [--multipart] [--no-browser] [--bin target/release/pixseal]
Needs: Pillow (to make the 2 MP inputs from ../shared/corpus or the repo's fixtures);
chromium and chromedriver (scripts/setup.sh) unless --no-browser. Prints markdown tables.
"""
import argparse, base64, collections, glob, hashlib, http.client, http.server, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request, uuid

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Both sides' defaults, spelled out so that a changed default cannot make them differ.
QUERY = "format=jpeg&quality=85"
CLI_OPTS = ["--format", "jpeg", "--quality", "85"]


def make_inputs(d, n=12):
    """n ~2 MP JPEGs (q90) from the corpus's larger photos, or the repo's fixtures."""
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


def make_small(d, src, n):
    """n copies of a 0.17 MP JPEG: pictures whose stamp is cheap next to a solve."""
    im = Image.open(src).convert("RGB")
    im.thumbnail((480, 480), Image.LANCZOS)
    out = []
    for i in range(n):
        f = os.path.join(d, "pow%02d.jpg" % i)
        im.save(f, quality=90)
        out.append(f)
    return out


def pct(sorted_values, p):
    return sorted_values[round((len(sorted_values) - 1) * p)] if sorted_values else float("nan")


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


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXSEAL_")}
    env["PIXSEAL_LOG"] = "warn"
    # Measure the route, not the limiter: every client is one loopback address.
    env["PIXSEAL_SERVER_RATE_LIMIT_PER_KEY"] = "0"
    env["PIXSEAL_SERVER_RATE_LIMIT_PER_IP"] = "0"
    return env


class Server:
    """`pixseal serve` on a free loopback port, a fresh data dir, a tenant and a `stamp` key."""

    def __init__(self, binary, work, name, extra_env=None):
        self.binary, self.work = binary, work
        self.data = tempfile.mkdtemp(prefix="data-%s-" % name, dir=work)
        self.env = base_env()
        self.env.update(extra_env or {})
        run = lambda *a: subprocess.run([binary, "--data-dir", self.data, *a], env=self.env, cwd=work,
                                        check=True, capture_output=True, text=True).stdout
        run("tenant", "create", "bench", "--region", "us")
        self.key = json.loads(run("apikey", "create", "--tenant", "bench", "--scope", "stamp", "--json"))["key"]
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(work, "server-%s.log" % name), "wb")
        self.proc = subprocess.Popen([binary, "--data-dir", self.data, "serve", "--listen", "127.0.0.1:%d" % self.port],
                                     env=self.env, cwd=work, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        for _ in range(400):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2); c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit("the server did not start:\n" + self.tail())

    def tail(self, lines=20):
        """The end of its log (warnings and errors only: PIXSEAL_LOG=warn)."""
        with open(self.log.name, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def request_of(body, multipart):
    """(body, headers) of one picture sent raw or as a one-file multipart form."""
    if not multipart:
        return body, {"Content-Type": "image/jpeg"}
    b = uuid.uuid4().hex
    form = (b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" % b.encode()) + body + b"\r\n--%s--\r\n" % b.encode()
    return form, {"Content-Type": "multipart/form-data; boundary=" + b}


def post_stamp(conn, key, body, headers, challenge=None):
    """One POST /v1/stamp; (ok, status, error code or '')."""
    h = dict(headers, Authorization="Bearer " + key)
    if challenge:
        h["Pixseal-Challenge"] = challenge
    conn.request("POST", "/v1/stamp?" + QUERY, body=body, headers=h)
    r = conn.getresponse(); data = r.read()
    if r.status == 200:
        ok = r.getheader("Content-Type") == "image/jpeg" and hashlib.sha256(data).hexdigest() == r.getheader("Pixseal-Sha256")
        return ok, r.status, "" if ok else "bad_answer"
    try:
        code = json.loads(data)["error"]["code"]
    except Exception:
        code = data[:80].decode("utf-8", "replace")
    return False, r.status, code


def load(server, bodies, seconds, clients, multipart):
    """CLIENTS threads stamping for SECONDS; (latencies s, errors Counter, wall s)."""
    reqs = [request_of(b, multipart) for b in bodies]
    lat, errors, lock = [], collections.Counter(), threading.Lock()
    stop = time.monotonic() + seconds

    def worker(i):
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        k = i
        while time.monotonic() < stop:
            body, headers = reqs[k % len(reqs)]; k += clients
            t = time.monotonic()
            try:
                ok, status, code = post_stamp(c, server.key, body, headers)
            except (OSError, http.client.HTTPException) as e:
                ok, status, code = False, 0, type(e).__name__
                c.close(); c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            with lock:
                if ok:
                    lat.append(time.monotonic() - t)
                else:
                    errors["%s %s" % (status, code)] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in ts: t.start()
    for t in ts: t.join()
    return lat, errors, time.monotonic() - t0


def cli_stamp(binary, work, data, files, seconds, jobs):
    """`pixseal stamp FILES -o DIR --jobs JOBS` repeated for SECONDS; (photos, wall s)."""
    out = tempfile.mkdtemp(prefix="pixseal-bench-out-", dir=work)
    n, wall, t_end = 0, 0.0, time.monotonic() + seconds
    while time.monotonic() < t_end:
        t = time.monotonic()
        subprocess.run([binary, "--data-dir", data, "stamp", *files, "-o", out, "--jobs", str(jobs), *CLI_OPTS],
                       env=base_env(), cwd=work, check=True, capture_output=True)
        wall += time.monotonic() - t
        n += len(files)
    shutil.rmtree(out, ignore_errors=True)
    return n, wall


class Recorder(http.server.ThreadingHTTPServer):
    """A reverse proxy on loopback to the server on UPSTREAM_PORT that keeps the solution of
    every `Pixseal-Challenge` header passing through (`solutions`)."""

    daemon_threads = True

    def __init__(self, upstream_port):
        self.upstream_port, self.solutions = upstream_port, []
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class RecorderHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    HOP = ("host", "connection", "keep-alive", "transfer-encoding", "content-length")

    def log_message(self, *args):
        pass

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        solved = self.headers.get("Pixseal-Challenge")
        if solved:
            self.server.solutions.append(json.loads(base64.b64decode(solved))["solution"])
        up = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
        up.request(self.command, self.path, body=body, headers={k: v for k, v in self.headers.items() if k.lower() not in self.HOP})
        r = up.getresponse(); data = r.read(); up.close()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in self.HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = forward


def cli_solves(binary, work, server, files):
    """`pixseal stamp --server URL FILES --jobs 1 --json` through a Recorder: the solutions sent."""
    proxy = Recorder(server.port)
    out = tempfile.mkdtemp(prefix="pixseal-bench-out-", dir=work)
    env = dict(base_env(), PIXSEAL_API_KEY=server.key)
    try:
        p = subprocess.run([binary, "--data-dir", os.path.join(work, "cli-remote-data"), "--json", "stamp", *files, "-o", out,
                            "--server", proxy.url, "--jobs", "1", *CLI_OPTS], env=env, cwd=work, capture_output=True, text=True)
    finally:
        proxy.shutdown(); proxy.server_close()
        shutil.rmtree(out, ignore_errors=True)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    bad = [r for r in rows if r.get("status") != "ok" or not r.get("challenge_solved")]
    if p.returncode != 0 or bad or len(rows) != len(files) or len(proxy.solutions) != len(files):
        raise SystemExit("pixseal stamp --server failed (exit %d, %d solutions): %s %s"
                         % (p.returncode, len(proxy.solutions), bad[:2], p.stderr[-500:]))
    return proxy.solutions


class WebDriver:
    """A headless Chromium session through chromedriver, in W3C WebDriver over urllib."""

    def __init__(self, work):
        env = subprocess.run(["bash", os.path.join(HERE, "chromedriver.sh")], check=True, capture_output=True, text=True).stdout
        vals = dict(l.replace("export ", "").split("=", 1) for l in env.splitlines() if "=" in l)
        self.base = vals["PIXSEAL_TEST_WEBDRIVER"]
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=work)
        args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--user-data-dir=" + self.profile]
        caps = {"browserName": "chrome", "goog:chromeOptions": {"binary": vals["PIXSEAL_TEST_CHROMIUM"], "args": args}}
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        self.call("POST", self.s("/timeouts"), {"script": 600_000, "pageLoad": 60_000})

    def s(self, path):
        return "/session/%s%s" % (self.session, path)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=900) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            v = json.loads(e.read() or b"{}").get("value", {})
            raise RuntimeError("WebDriver %s %s: %s: %s" % (method, path, v.get("error"), str(v.get("message"))[:300])) from None

    def open(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def run_async(self, script, *args):
        return self.call("POST", self.s("/execute/async"), {"script": script, "args": list(args)})

    def close(self):
        try:
            self.call("DELETE", self.s(""))
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


# What stamp.js's solveChallenge does, timed: a fresh challenge, solved by the served worker.
SOLVE_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const r = await fetch("/v1/challenge?route=stamp", { credentials: "omit" });
  if (!r.ok) throw new Error(`no challenge (${r.status})`);
  const challenge = await r.json();
  const started = performance.now();
  const worker = new Worker("/assets/pow-worker.js");
  try {
    const solution = await new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => {
        if (data.solution) resolve(data.solution);
        else if (data.error) reject(new Error(data.error));
      };
      worker.onerror = (e) => reject(new Error(e.message || "worker error"));
      worker.postMessage(challenge);
    });
    return { challenge, solution, wall: performance.now() - started };
  } finally {
    worker.terminate();
  }
})().then(done, (e) => done({ error: String(e) }));
"""


def browser_solves(server, small_body, n, work):
    """n fresh challenges solved in Chromium's worker, each redeemed; list of dicts."""
    wd = WebDriver(work)
    out = []
    try:
        wd.open(server.url + "/stamp")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        body, headers = request_of(small_body, False)
        for _ in range(n):
            r = wd.run_async(SOLVE_JS)
            if "error" in r:
                raise SystemExit("Chromium could not solve: %s" % r["error"])
            header = base64.b64encode(json.dumps({"challenge": r["challenge"], "solution": r["solution"]}).encode()).decode()
            ok, status, code = post_stamp(conn, server.key, body, headers, challenge=header)
            out.append({"worker": r["solution"]["time"], "wall": r["wall"], "counter": r["solution"]["counter"],
                        "redeemed": ok, "refusal": "" if ok else "%s %s" % (status, code)})
    finally:
        wd.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30, help="load time of each side (default 30)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients of POST /v1/stamp (default 4)")
    ap.add_argument("--jobs", type=int, help="parallel workers of pixseal stamp (default: --clients)")
    ap.add_argument("--rounds", type=int, default=3, help="alternate CLI and server this many times, SECONDS/ROUNDS each (default 3)")
    ap.add_argument("--solves", type=int, default=10, help="challenges solved per solver (default 10)")
    ap.add_argument("--inputs", type=int, default=12, help="number of ~2 MP photos (default 12)")
    ap.add_argument("--multipart", action="store_true", help="send one-file multipart forms instead of raw bodies")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium solves")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pixseal"))
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    jobs = a.jobs or a.clients
    work = tempfile.mkdtemp(prefix="pixseal-bench-stamp-")
    load_before = os.getloadavg()[0]
    say = lambda m: print(m, file=sys.stderr, flush=True)
    try:
        files = make_inputs(work, a.inputs)
        bodies = [open(f, "rb").read() for f in files]
        mp = statistics.mean(Image.open(f).width * Image.open(f).height for f in files) / 1e6
        small = make_small(work, files[0], a.solves)

        # 1. Throughput, CLI and server in the same run.
        cli_data = os.path.join(work, "cli-data")
        # The CLI's signing identity is made on first use: outside the timing.
        subprocess.run([a.bin, "--data-dir", cli_data, "stamp", files[0], "-o", os.path.join(work, "warm"), *CLI_OPTS],
                       env=base_env(), cwd=work, check=True, capture_output=True)
        srv = Server(a.bin, work, "stamp")
        try:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
            for b in bodies[:2]:  # first use of the signer and the decoder, outside the timing
                post_stamp(c, srv.key, *request_of(b, a.multipart))
            c.close()
            cli_n, cli_wall, lat, errors, srv_wall = 0, 0.0, [], collections.Counter(), 0.0
            part = a.seconds / a.rounds
            for r in range(a.rounds):
                say("round %d/%d: pixseal stamp --jobs %d for %.0f s" % (r + 1, a.rounds, jobs, part))
                n, w = cli_stamp(a.bin, work, cli_data, files, part, jobs)
                cli_n += n; cli_wall += w
                say("round %d/%d: POST /v1/stamp, %d clients for %.0f s" % (r + 1, a.rounds, a.clients, part))
                l, e, w = load(srv, bodies, part, a.clients, a.multipart)
                lat += l; errors.update(e); srv_wall += w
            rss = peak_rss_mb(srv.proc.pid)
            if errors:
                say("the server's log ends with:\n" + srv.tail())

            # 2a. Chromium's worker on fresh challenges of this idle server.
            solves = []
            if not a.no_browser:
                say("Chromium: %d challenges solved by /assets/pow-worker.js" % a.solves)
                solves = browser_solves(srv, open(small[0], "rb").read(), a.solves, work)
        finally:
            srv.stop()
        # 2b. Rust solves: a server that wants a challenge for every request.
        say("pixseal stamp --server: %d small pictures, each with a challenge" % a.solves)
        srv = Server(a.bin, work, "challenge", {"PIXSEAL_STAMP_CHALLENGE_OVER": "0"})
        try:
            rust = cli_solves(a.bin, work, srv, small)
        finally:
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # Report.
    cli_rate = cli_n / cli_wall
    ok = len(lat)
    srv_rate = ok / srv_wall
    lat.sort()
    ratio = srv_rate / cli_rate
    print("\n%d inputs of %.1f MP (JPEG q90), stamped to JPEG q85 with the visible mark; %d clients (%s bodies) "
          "against `pixseal stamp --jobs %d`, %.0f s each%s; %d cores, load average %.1f at the start, %.1f at the end\n"
          % (len(files), mp, a.clients, "multipart" if a.multipart else "raw", jobs, a.seconds,
             " in %d alternating rounds" % a.rounds if a.rounds > 1 else "", os.cpu_count(), load_before, os.getloadavg()[0]))
    print("| run | photos | photos/s | vs CLI | p50 ms | p99 ms | errors | server peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("| `pixseal stamp --jobs %d` (offline CLI, process per batch of %d) | %d | %.2f | 1.00 | | | | |" % (jobs, len(files), cli_n, cli_rate))
    print("| `POST /v1/stamp`, %d clients, SQLite | %d | %.2f | **%.2f** | %.0f | %.0f | %d | %.0f |"
          % (a.clients, ok, srv_rate, ratio, pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000, sum(errors.values()), rss))
    print("\nTarget server >= 0.95x CLI: **%s** (%.2f)." % ("met" if ratio >= 0.95 else "not met", ratio))
    if errors:
        print("Errors of the route: " + ", ".join("%s x %d" % (k, v) for k, v in sorted(errors.items())) + ".")

    def solve_row(what, times, counters):
        t = sorted(times)
        per = statistics.median(ms / (c + 1) * 1000 for ms, c in zip(times, counters))
        print("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f |"
              % (what, len(t), pct(t, 0.5), pct(t, 0.9), t[-1], statistics.median(counters), per))
        return pct(t, 0.5)

    print("\nProof-of-work challenge at the default difficulty (idle server), %d fresh challenges per solver:\n" % a.solves)
    print("| solver | n | median ms | p90 ms | max ms | median counter | ms per 1000 attempts |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rust_median = solve_row("Rust: ALTCHA's solver in `pixseal stamp --server` (its `solution.time`)",
                            [s["time"] for s in rust], [s["counter"] for s in rust])
    if solves:
        chromium_median = solve_row("Chromium: `pow-worker.js` in a Web Worker (its `solution.time`)",
                                    [s["worker"] for s in solves], [s["counter"] for s in solves])
        wall = sorted(s["wall"] for s in solves)
        print("| Chromium: the page's wall time (worker start + solve) | %d | %.0f | %.0f | %.0f | | |"
              % (len(wall), pct(wall, 0.5), pct(wall, 0.9), wall[-1]))
        redeemed = sum(s["redeemed"] for s in solves)
        print("\nChromium's solutions accepted by `POST /v1/stamp`: %d/%d%s." % (redeemed, len(solves), "".join(
            "; refused: " + s["refusal"] for s in solves if not s["redeemed"])))
        print("Chromium vs Rust, median: %.2fx." % (chromium_median / rust_median))
    print("\nThe server's cost of checking a solution: `cargo bench --locked --workspace --bench challenge` (docs/stamping.md).")


if __name__ == "__main__":
    main()
