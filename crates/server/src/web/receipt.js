// Checks a pixseal deletion receipt in the browser, as `pixseal receipt verify` does offline:
// the exact fields of its version and nothing else, the signed bytes rebuilt from them, the key
// id, the Ed25519 signature (WebCrypto) against the key this service publishes, and, when the
// owner's opening is shown, that it opens the signed subject. Nothing is sent anywhere.

const FIELDS = {
  2: ["version", "receipt_id", "proof_id", "sha256", "region", "created_at", "deleted_at", "reason", "subject"],
  1: ["receipt_id", "artifact_id", "proof_id", "sha256", "original_sha256", "region", "created_at", "deleted_at", "reason"],
};
const OUTER = ["receipt", "alg", "key_id", "signature"];
const OPENING = ["salt", "artifact_id", "original_sha256"];
const SUBJECT_DOMAIN = "pixseal receipt subject v2\n";
const text = new TextEncoder();

class Refused extends Error {}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256 = async (bytes) => hex(await crypto.subtle.digest("SHA-256", bytes));
const isHex64 = (s) => typeof s === "string" && /^[0-9a-f]{64}$/.test(s);

function exactly(obj, keys, what) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Refused(`${what} is not an object`);
  const have = Object.keys(obj);
  const extra = have.filter((k) => !keys.includes(k));
  const missing = keys.filter((k) => !have.includes(k));
  if (extra.length) throw new Refused(`${what} has fields a receipt does not have: ${extra.join(", ")}`);
  if (missing.length) throw new Refused(`${what} lacks ${missing.join(", ")}`);
}

function base64(s) {
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    throw new Refused("the signature is not base64");
  }
}

// The bytes the service signed: a line naming the version, then the fields' JSON in their order.
function signedBytes(r) {
  const version = r !== null && typeof r === "object" && "version" in r ? r.version : 1;
  const fields = FIELDS[version];
  if (!fields || (version === 2 && r.version !== 2)) throw new Refused(`unknown receipt version ${version}`);
  exactly(r, fields, "the receipt");
  const ordered = {};
  for (const f of fields) {
    const ok = f === "version" ? Number.isInteger(r[f]) : typeof r[f] === "string";
    if (!ok) throw new Refused(`the receipt's ${f} has the wrong type`);
    ordered[f] = r[f];
  }
  return text.encode(`pixseal deletion receipt v${version}\n${JSON.stringify(ordered)}`);
}

function pemToDer(pem) {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

async function publishedKey() {
  const r = await fetch("/v1/keys/receipts", { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`the service's key could not be fetched (${r.status})`);
  const k = await r.json();
  const der = pemToDer(k.public_key_pem);
  const keyId = (await sha256(der)).slice(0, 16);
  const key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
  return { key, keyId };
}

/// Resolves to what was checked, or throws `Refused` with the reason in words.
export async function checkReceipt(signed, published) {
  const keys = Object.keys(signed ?? {}).includes("opening") ? [...OUTER, "opening"] : OUTER;
  exactly(signed, keys, "the signed receipt");
  if (signed.alg !== "Ed25519") throw new Refused(`unknown signature algorithm ${signed.alg}`);
  const bytes = signedBytes(signed.receipt);
  if (signed.key_id !== published.keyId) {
    throw new Refused(`signed by key ${signed.key_id}, not by this service's key ${published.keyId}`);
  }
  const sig = base64(signed.signature);
  if (sig.length !== 64) throw new Refused("the signature has the wrong length");
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, published.key, sig, bytes))) {
    throw new Refused("the signature does not verify: the receipt was changed after it was signed");
  }
  if (signed.opening !== undefined) {
    const o = signed.opening;
    if (signed.receipt.version !== 2) throw new Refused("a version 1 receipt has no subject to open");
    exactly(o, OPENING, "the opening");
    if (!isHex64(o.salt) || !isHex64(o.original_sha256) || typeof o.artifact_id !== "string" || o.artifact_id.includes("\n")) {
      throw new Refused("the opening is malformed");
    }
    const subject = await sha256(text.encode(`${SUBJECT_DOMAIN}${o.salt}\n${o.artifact_id}\n${o.original_sha256}`));
    if (subject !== signed.receipt.subject) throw new Refused("the opening shown does not open the receipt's subject");
  }
  return { keyId: published.keyId, opened: signed.opening !== undefined };
}

function show(el, tone, words) {
  el.className = `badge ${tone}`;
  el.textContent = words;
}

async function check(el, json, published) {
  try {
    const done = await checkReceipt(JSON.parse(json), published);
    const opened = done.opened ? " Its opening matches the signed subject." : "";
    show(el, "good", `Signature valid: signed by this service's key ${done.keyId}, checked in your browser.${opened}`);
  } catch (e) {
    if (e instanceof Refused) show(el, "bad", `Not valid: ${e.message}.`);
    else if (e instanceof SyntaxError) show(el, "bad", "Not valid: this is not JSON.");
    else show(el, "warn", `Not checked: ${e.message}.`);
  }
}

async function main() {
  const status = document.getElementById("signature-check");
  if (!window.isSecureContext || !crypto.subtle) {
    show(status, "warn", "Not checked: your browser checks signatures only over HTTPS. Use the command below.");
    return;
  }
  let published;
  try {
    published = await publishedKey();
  } catch (e) {
    show(status, "warn", `Not checked: ${e.message}. Use the command below.`);
    return;
  }
  await check(status, document.getElementById("receipt-json").textContent, published);
  const paste = document.getElementById("paste");
  paste.hidden = false;
  document.getElementById("paste-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    check(document.getElementById("paste-result"), document.getElementById("paste-text").value, published);
  });
}

main();
