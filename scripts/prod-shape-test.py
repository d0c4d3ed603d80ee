#!/usr/bin/env python3
"""End to end against the production shape of scripts/prod-shape.sh (run `start` first and
export what it prints): two instances behind Caddy (TLS) sharing PostgreSQL, SeaweedFS, Redis
and OpenBao.

Checks: an upload through instance A is read, verified and deleted through instance B; the
receipt's public view verifies and names no artifact; a purge worker runs on A while B serves;
after the purge the signed manifest is still served and the C2PA Soft Binding Resolution API
resolves the stamp's watermark, its PDQ hash and a re-encoded copy to it, as c2pa-python reads
them (a client that is not pixseal); rate limits are shared by both instances; a client cannot
choose its address with X-Forwarded-For. Exit 0 when every check passes.
Needs: requests (installed with schemathesis by scripts/setup.sh), Pillow, c2pa-python.
"""
import io, json, os, sys, time

import requests
from PIL import Image

E = os.environ
CA, KEY = E["PIXSEAL_PROD_CA"], E["PIXSEAL_PROD_KEY"]
A, B, BOTH = E["PIXSEAL_PROD_URL_A"], E["PIXSEAL_PROD_URL_B"], E["PIXSEAL_PROD_URL"]
AUTH = {"Authorization": f"Bearer {KEY}"}
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def photo():
    # A real photo: the resolution checks below find a re-encoded copy by its watermark and PDQ
    # hash, which a synthetic pattern does not keep reliably through a resize.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "fixtures", "photos", "garden.jpg"), "rb") as f:
        return f.read()


s = requests.Session()
s.verify = CA
s.trust_env = False  # a CA bundle named in the environment would replace ours
r = s.post(f"{A}/v1/artifacts?retention_days=7", data=photo(), headers=AUTH)
check(r.status_code == 201, f"upload through A: {r.status_code}")
up = r.json()
aid, pid = up["id"], up["proof_id"]
r = s.get(f"{B}/v1/artifacts/{aid}", headers=AUTH)
check(r.status_code == 200 and r.json()["proof_id"] == pid, "metadata through B")
r = s.get(f"{B}/v1/artifacts/{aid}/content", headers=AUTH)
content = r.content
check(r.status_code == 200 and content[:4] == b"RIFF", "content through B (decrypted with Transit)")
r = s.post(f"{B}/v1/verify", data=content)
v = r.json()
check(r.status_code == 200 and v.get("verdict") == "verified" and v.get("proof_id") == pid,
      f"verify through B: {v.get('verdict')}")
check(all(s.get(f"{BOTH}/healthz").status_code == 200 for _ in range(4)), "the balanced route answers")

# A purges every second; B keeps serving meanwhile.
codes = [s.get(f"{B}/v1/artifacts/{aid}", headers=AUTH).status_code for _ in range(20)]
check(all(c == 200 for c in codes), f"B serves while A purges: {set(codes)}")

r = s.delete(f"{B}/v1/artifacts/{aid}", headers=AUTH)
check(r.status_code == 200, f"delete through B: {r.status_code}")
receipt = r.json()
rid = receipt["receipt"]["receipt_id"]
check("opening" in receipt, "the owner gets the tenant's view")
r = s.get(f"{A}/v1/receipts/{rid}")
pub = r.json()
check(r.status_code == 200 and "opening" not in pub and "artifact_id" not in pub["receipt"],
      "the public view through A names no artifact")
r = s.get(f"{A}/v1/artifacts/{aid}", headers=AUTH)
check(r.status_code == 404, "gone for A too")
r = s.get(f"{A}/v1/proofs/{pid}")
check(r.status_code == 200 and r.json().get("status") == "purged", "the public proof record says purged")

# The credential outlives the artifact: the signed manifest store, read by the reference C2PA
# library against the stamped bytes, then found again through each soft binding it carries.
import c2pa  # noqa: E402

r = s.get(f"{A}/v1/proofs/{pid}/manifest")
check(r.status_code == 200 and r.headers.get("content-type") == "application/c2pa",
      f"the purged proof's manifest is served: {r.status_code} {r.headers.get('content-type')}")
store = r.content
reader = c2pa.Reader("image/webp", io.BytesIO(content), manifest_data=store)
doc = json.loads(reader.json())
manifest_id = doc.get("active_manifest")
state = reader.get_validation_state()
check(state in ("Valid", "Trusted") and (manifest_id or "").startswith("urn:c2pa:"),
      f"c2pa-python validates the stamped bytes against the kept manifest: {state}, {manifest_id}")
bindings = {a["data"]["alg"]: a["data"]["blocks"][0]["value"]
            for a in doc["manifests"][manifest_id]["assertions"]
            if a["label"].startswith("c2pa.soft-binding")}
check(sorted(bindings) == ["org.pixseal.pdq.1", "org.pixseal.watermark.1"], f"soft bindings {sorted(bindings)}")
r = s.get(f"{B}/v1/services/supportedAlgorithms")
check(r.status_code == 200 and {"alg": "org.pixseal.watermark.1"} in r.json()["watermarks"],
      "supported algorithms listed")
for alg, value in bindings.items():
    r = s.get(f"{B}/v1/matches/byBinding", params={"alg": alg, "value": value})
    m = r.json().get("matches", []) if r.status_code == 200 else []
    check(bool(m) and m[0]["manifestId"] == manifest_id and m[0]["proofId"] == pid,
          f"byBinding {alg} resolves to the manifest: {r.status_code} {m[:1]}")
r = s.get(f"{B}/v1/matches/byBinding", params={"alg": "com.example.unknown", "value": "AAAA"})
check(r.status_code == 400 and r.json()["error"]["code"] == "unsupported_algorithm",
      f"an unknown algorithm is a clear 400: {r.status_code}")
im = Image.open(io.BytesIO(content)).convert("RGB")
im = im.resize((im.width * 3 // 4, im.height * 3 // 4))
buf = io.BytesIO()
im.save(buf, "JPEG", quality=80)
r = s.post(f"{A}/v1/matches/byContent", data=buf.getvalue())
m = r.json().get("matches", []) if r.status_code == 200 else []
check(bool(m) and m[0]["manifestId"] == manifest_id,
      f"byContent: a resized, re-encoded copy resolves to the manifest: {r.status_code} {m[:1]}")
r = s.get(f"{B}/v1/manifests/{m[0]['manifestId'] if m else manifest_id}")
check(r.status_code == 200 and r.content == store, "GET /v1/manifests/{id} is the same store")
r = s.post(f"{B}/v1/verify", data=buf.getvalue())
v = r.json()
cred = v.get("credential") or {}
check(v.get("verdict") in ("watermark_only", "near_match") and cred.get("manifest_id") == manifest_id
      and "not the file that was signed" in cred.get("statement", ""),
      f"a stripped copy is shown the original credential: {v.get('verdict')} {cred.get('manifest_id')}")

# One budget for both instances, whatever the client claims to be: 60 per minute per address.
statuses = []
for i in range(70):
    url = A if i % 2 == 0 else B
    statuses.append(s.get(f"{url}/v1/proofs/px_0000000000000",
                          headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code)
first = statuses.index(429) if 429 in statuses else None
check(first is not None and first <= 62,
      f"shared per-address limit across A and B, spoofed X-Forwarded-For ignored (first 429 at request {first})")

errors = []
for name in ("a.log", "b.log"):
    for line in open(os.path.join(E["PIXSEAL_PROD_DIR"], name)):
        if '"level":"ERROR"' in line or "panicked" in line:
            errors.append(f"{name}: {line.strip()[:200]}")
check(not errors, f"no errors logged by either instance {errors[:3]}")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
