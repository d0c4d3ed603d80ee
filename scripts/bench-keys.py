#!/usr/bin/env python3
"""What each key placement adds to an upload and to a deletion (docs/keys.md), measured in one run.

Starts one `pixseal serve` per placement, all at once, and sends ~2 MP photos to them in turn
(upload 1 to every server, then upload 2 to every server, ...), one request at a time, so each
placement sees the same inputs under the same machine load; then deletes every artifact the
same way (a deletion signs a receipt). Prints p50/p90 latency per placement and the difference
from the all-local one.

Placements: everything local (key files); region master keys in Transit; the tenant's own key in
pixseal's Transit (`tenant set-key`); the tenant's key in its own Vault (a second OpenBao,
`tenant set-key --vault-addr`); the C2PA claim key in Transit; the claim key on a PKCS#11 token
(SoftHSM2); receipts signed in Transit; receipts signed on the token.

usage: bench-keys.py [--uploads 40] [--bin target/release/pixseal]
Needs: Pillow, OpenBao (scripts/openbao.sh), softhsm2-util and pkcs11-tool (scripts/setup.sh).
"""
import argparse, glob, http.client, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
bench_service = __import__("bench-service")

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def openbao(state_dir=None):
    env = dict(os.environ, PIXSEAL_BAO_REGIONS="us eu rot shred")
    if state_dir:
        env["PIXSEAL_BAO_STATE_DIR"] = state_dir
    out = subprocess.run(["bash", os.path.join(HERE, "openbao.sh")], env=env,
                         check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    return {k: v.strip('"') for k, v in (l[len("export "):].split("=", 1) for l in out.splitlines() if l.startswith("export "))}


def bao_key(bao, name):
    """Creates the aes256-gcm96 Transit key `name` with the root token (if missing)."""
    import urllib.request
    req = urllib.request.Request(bao["BAO_ADDR"] + "/v1/transit/keys/" + name, data=b'{"type":"aes256-gcm96"}', method="POST",
                                 headers={"X-Vault-Token": bao["BAO_ROOT_TOKEN"]})
    urllib.request.urlopen(req, timeout=10).read()


def softhsm(label, pin):
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "bench-so"], check=True, capture_output=True)
    for key, kind in (("bench-c2pa", "EC:prime256v1"), ("bench-receipts", "EC:edwards25519")):
        subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", label, "--login", "--pin", pin,
                        "--keypairgen", "--key-type", kind, "--label", key, "--usage-sign"], check=True, capture_output=True)


def placements(bao, tenant_bao, token, pin_file, work):
    """(name, environment, `pixseal` commands run once the tenant `bench` exists)."""
    transit = {"PIXSEAL_KEYS_TRANSIT_ADDR": bao["BAO_ADDR"], "PIXSEAL_KEYS_TRANSIT_TOKEN": bao["BAO_TOKEN"]}
    pkcs11 = {"PIXSEAL_PKCS11_MODULE": MODULE, "PIXSEAL_PKCS11_TOKEN_LABEL": token, "PIXSEAL_PKCS11_PIN_FILE": pin_file,
              "PIXSEAL_PKCS11_CLAIM_KEY_LABEL": "bench-c2pa", "PIXSEAL_PKCS11_RECEIPT_KEY_LABEL": "bench-receipts"}
    tenant_key = "pixseal-tenant-bench-%d" % os.getpid()
    bao_key(bao, tenant_key)
    bao_key(tenant_bao, "bench-own")
    token_file = os.path.join(work, "tenant-token")
    open(token_file, "w").write(tenant_bao["BAO_ROOT_TOKEN"])
    return [
        ("all local (key files)", {}, []),
        ("region master keys in Transit", dict(transit, PIXSEAL_KEYS_PROVIDER="transit"), []),
        ("tenant key in pixseal's Transit", dict(transit, PIXSEAL_KEYS_PROVIDER="transit"),
         [["tenant", "set-key", "bench", "--transit-key", tenant_key]]),
        ("tenant key in its own Vault (2nd OpenBao)", {},
         [["tenant", "set-key", "bench", "--transit-key", "bench-own", "--vault-addr", tenant_bao["BAO_ADDR"], "--vault-token-file", token_file]]),
        ("C2PA claim key in Transit", dict(transit, PIXSEAL_PROVENANCE_SIGNER="transit"), []),
        ("C2PA claim key on PKCS#11 (SoftHSM2)", dict(pkcs11, PIXSEAL_PROVENANCE_SIGNER="pkcs11"), []),
        ("receipt key in Transit", dict(transit, PIXSEAL_KEYS_RECEIPT_PROVIDER="transit"), []),
        ("receipt key on PKCS#11 (SoftHSM2)", dict(pkcs11, PIXSEAL_KEYS_RECEIPT_PROVIDER="pkcs11"), []),
    ]


def start(binary, name, extra, setup):
    data = tempfile.mkdtemp(prefix="pixseal-bench-keys-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXSEAL_")}
    env.update({"PIXSEAL_LOG": "warn", "PIXSEAL_SERVER_RATE_LIMIT_PER_KEY": "0", "PIXSEAL_REGIONS": '["us"]'}, **extra)
    run = lambda *a: subprocess.run([binary, "--data-dir", data, *a], env=env, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    run("keys", "init")
    run("tenant", "create", "bench", "--region", "us")
    for cmd in setup:
        run(*cmd)
    key = json.loads(run("apikey", "create", "--tenant", "bench", "--scope", "artifacts:write", "--scope", "artifacts:delete", "--json"))["key"]
    port = bench_service.free_port()
    proc = bench_service.run_server(binary, data, port, env)
    return {"name": name, "data": data, "port": port, "key": key, "proc": proc, "up": [], "del": [], "ids": [], "errors": 0,
            "conn": http.client.HTTPConnection("127.0.0.1", port, timeout=60)}


def timed(s, method, path, body=None):
    t = time.monotonic()
    s["conn"].request(method, path, body=body, headers={"Authorization": "Bearer " + s["key"]})
    r = s["conn"].getresponse()
    payload = r.read()
    return r.status, payload, time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uploads", type=int, default=40)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pixseal"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pixseal-bench-keys-in-")
    files = bench_service.make_inputs(work)
    bodies = [open(f, "rb").read() for f in files]
    bao = openbao()
    tenant_bao = openbao("/tmp/pixseal-openbao-tenant")
    token, pin = "pixseal-bench-%d" % os.getpid(), "bench-pin"
    pin_file = os.path.join(work, "pin")
    open(pin_file, "w").write(pin + "\n")
    softhsm(token, pin)
    servers = []
    try:
        servers = [start(a.bin, n, e, c) for n, e, c in placements(bao, tenant_bao, token, pin_file, work)]
        for i in range(a.uploads):
            for s in servers:
                st, payload, dt = timed(s, "POST", "/v1/artifacts?visible=true", bodies[i % len(bodies)])
                if st == 201:
                    s["up"].append(dt); s["ids"].append(json.loads(payload)["id"])
                else:
                    s["errors"] += 1
        for i in range(a.uploads):
            for s in servers:
                if i < len(s["ids"]):
                    st, _, dt = timed(s, "DELETE", "/v1/artifacts/" + s["ids"][i])
                    if st == 200:
                        s["del"].append(dt)
                    else:
                        s["errors"] += 1
    finally:
        for s in servers:
            s["proc"].terminate(); s["proc"].wait(timeout=30); shutil.rmtree(s["data"], ignore_errors=True)
        subprocess.run(["softhsm2-util", "--delete-token", "--token", token], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    def q(xs, f):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(f * len(xs)))] * 1000 if xs else float("nan")

    base = servers[0]
    print("%d uploads of ~2 MP JPEGs then %d deletions per placement, interleaved across placements, one request at a time, %d cores\n"
          % (a.uploads, a.uploads, os.cpu_count()))
    print("| placement | upload p50 ms | p90 | Δ p50 vs all local | delete p50 ms | p90 | Δ p50 vs all local | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        print("| %s | %.0f | %.0f | %+.1f | %.1f | %.1f | %+.1f | %d |" % (
            s["name"], q(s["up"], .5), q(s["up"], .9), q(s["up"], .5) - q(base["up"], .5),
            q(s["del"], .5), q(s["del"], .9), q(s["del"], .5) - q(base["del"], .5), s["errors"]))


if __name__ == "__main__":
    main()
