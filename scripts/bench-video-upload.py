#!/usr/bin/env python3
"""Peak memory of `pixseal serve` storing a ~200 MiB video (issue: an upload never sits in memory
more than once; peak RSS for a 200 MiB video <= 64 MiB + one sample).

Makes the clip once with Debian's ffmpeg under --cache (60 s of 1920x1080 at 30 fps, H.264 at
26 Mbit/s with AAC, moov at the end as phones write it: ~200 MiB), starts the server on embedded
defaults with the video limits raised to fit it, and reads the server's peak RSS (VmHWM) after
start-up, after one photo upload (the baseline a server has anyway), and after the video
upload, which is also fetched back whole and in one range and checked (its length, its first
bytes). The ffmpeg child that decodes keyframes is another process (capped by prlimit, see
docs/video.md) and is not counted here.

usage: bench-video-upload.py [--bin target/release/pixseal] [--cache /var/tmp/pixseal-bench]
Prints a markdown table.
"""
import argparse, http.client, importlib.util, json, os, shutil, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_clip(path):
    """bench-video.py's clip at 26 Mbit/s (~200 MiB for 60 s)."""
    spec = importlib.util.spec_from_file_location("bench_video", os.path.join(HERE, "bench-video.py"))
    bench_video = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_video)
    bench_video.make_clip(path, rate_mbit=26)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def peak_rss_mb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(port, method, path, key, body=None, headers=None, timeout=300):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": "Bearer " + key}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r.read(), r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "pixseal"))
    ap.add_argument("--cache", default="/var/tmp/pixseal-bench")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    clip = os.path.join(a.cache, "phone-60s-1080p-26M.mp4")
    make_clip(clip)
    size = os.path.getsize(clip)
    data = tempfile.mkdtemp(prefix="pixseal-bench-video-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXSEAL_")}
    env.update({
        "PIXSEAL_LOG": "warn",
        "PIXSEAL_VIDEO_MAX_FILE_BYTES": str(size + 1024),
        "PIXSEAL_SERVER_REQUEST_TIMEOUT_SECS": "300",
    })
    subprocess.run([a.bin, "--data-dir", data, "tenant", "create", "bench", "--region", "us"], env=env, check=True, capture_output=True)
    out = subprocess.run([a.bin, "--data-dir", data, "apikey", "create", "--tenant", "bench", "--scope", "artifacts:write",
                          "--scope", "artifacts:read", "--json"], env=env, check=True, capture_output=True, text=True).stdout
    key = json.loads(out)["key"]
    port = free_port()
    p = subprocess.Popen([a.bin, "--data-dir", data, "serve", "--listen", "127.0.0.1:%d" % port],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(400):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        started = peak_rss_mb(p.pid)
        photo = open(os.path.join(ROOT, "fixtures", "metadata", "jpeg-all.jpg"), "rb").read()
        st, body, _ = request(port, "POST", "/v1/artifacts", key, photo)
        if st != 201:
            sys.exit("photo upload: %d %s" % (st, body[:300]))
        after_photo = peak_rss_mb(p.pid)
        t = time.monotonic()
        with open(clip, "rb") as f:
            st, body, _ = request(port, "POST", "/v1/artifacts", key, f, {"Content-Length": str(size)})
        upload_s = time.monotonic() - t
        if st != 201:
            sys.exit("video upload: %d %s" % (st, body[:300]))
        up = json.loads(body)
        after_video = peak_rss_mb(p.pid)
        st, whole, _ = request(port, "GET", "/v1/artifacts/%s/content" % up["id"], key)
        assert st == 200 and len(whole) == up["bytes"], (st, len(whole), up["bytes"])
        del whole
        after_read = peak_rss_mb(p.pid)
        st, part, r = request(port, "GET", "/v1/artifacts/%s/content" % up["id"], key, headers={"Range": "bytes=100000000-100999999"})
        assert st == 206 and len(part) == 1_000_000, (st, len(part))
    finally:
        p.terminate(); p.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    print("| video %.0f MiB, %s | server peak RSS (MiB) |" % (size / 2**20, os.path.basename(clip)))
    print("|---|---:|")
    print("| started | %.1f |" % started)
    print("| after a photo upload (baseline) | %.1f |" % after_photo)
    print("| after the video upload (%.1f s) | %.1f |" % (upload_s, after_video))
    print("| after reading it back whole | %.1f |" % after_read)
    print()
    print("Growth for the video: %.1f MiB over the baseline (target: peak <= 64 MiB + one sample)" % (after_video - after_photo))


if __name__ == "__main__":
    main()
