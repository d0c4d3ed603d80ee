// Solves a proof-of-work challenge (ALTCHA v2, PBKDF2/SHA-256, deterministic mode) off the
// page's thread: tries counters from 0 up until PBKDF2(nonce ‖ counter as u32 big-endian,
// salt, cost) starts with the challenge's key prefix, then posts {counter, derivedKey}.

const bytes = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");

self.onmessage = async ({ data: challenge }) => {
  const p = challenge.parameters;
  if (p.algorithm !== "PBKDF2/SHA-256") {
    self.postMessage({ error: `unsupported algorithm ${p.algorithm}` });
    return;
  }
  const nonce = bytes(p.nonce);
  const salt = bytes(p.salt);
  const prefix = p.keyPrefix.toLowerCase();
  const password = new Uint8Array(nonce.length + 4);
  password.set(nonce);
  const view = new DataView(password.buffer);
  const started = performance.now();
  for (let counter = 0; counter <= 0xffffffff; counter++) {
    view.setUint32(nonce.length, counter);
    const key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations: p.cost },
      key,
      p.keyLength * 8,
    );
    const derived = hex(bits);
    if (derived.startsWith(prefix)) {
      self.postMessage({ solution: { counter, derivedKey: derived, time: performance.now() - started } });
      return;
    }
    if (counter % 50 === 0) self.postMessage({ tried: counter });
  }
  self.postMessage({ error: "no solution" });
};
