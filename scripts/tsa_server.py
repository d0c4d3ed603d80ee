"""A minimal RFC 3161 time-stamping authority over HTTP for tests: each POST of an
`application/timestamp-query` body is answered by OpenSSL's `ts -reply` with the configured
signer (scripts/tsa.sh makes the keys and config). GET /healthz answers 200.

Usage: python3 scripts/tsa_server.py --port PORT --config ts.cnf   (needs only openssl)
"""
import argparse
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_QUERY = 16 * 1024
# `ts -reply` advances the serial file: one reply at a time.
LOCK = threading.Lock()


def make_handler(config):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def send(self, code, ctype, body):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/healthz":
                self.send(200, "text/plain", b"ok\n")
            else:
                self.send(404, "text/plain", b"not found\n")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            ctype = self.headers.get("Content-Type", "")
            if ctype != "application/timestamp-query" or not 0 < length <= MAX_QUERY:
                self.send(400, "text/plain", b"expected an application/timestamp-query body\n")
                return
            query = self.rfile.read(length)
            with tempfile.TemporaryDirectory() as tmp, LOCK:
                qpath, rpath = f"{tmp}/q.tsq", f"{tmp}/r.tsr"
                with open(qpath, "wb") as f:
                    f.write(query)
                done = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", config,
                     "-queryfile", qpath, "-out", rpath],
                    capture_output=True, timeout=20,
                )
                if done.returncode != 0:
                    self.send(500, "text/plain", done.stderr[-2000:])
                    return
                with open(rpath, "rb") as f:
                    reply = f.read()
            self.send(200, "application/timestamp-reply", reply)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.config)).serve_forever()


if __name__ == "__main__":
    main()
