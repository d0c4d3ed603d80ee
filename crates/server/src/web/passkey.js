// Passkeys in the pages: register one with an enrollment token (/enroll), sign in to the
// dashboard with one (/app), and create a code signed by one (/app/codes). The browser's
// WebAuthn API does the ceremony; the server checks every answer. Options arrive as WebAuthn's
// JSON forms and credentials go back as `PublicKeyCredential.toJSON()` gives them.

const b64url = {
  decode(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let bin = "";
    for (const b of new Uint8Array(buffer)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    user: { ...json.user, id: b64url.decode(json.user.id) },
    excludeCredentials: (json.excludeCredentials ?? []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    allowCredentials: (json.allowCredentials ?? []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

// `credential.toJSON()`, built by hand where the browser lacks it.
function credentialJSON(c) {
  if (typeof c.toJSON === "function") return c.toJSON();
  const r = c.response;
  const response = { clientDataJSON: b64url.encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64url.encode(r.attestationObject);
    // Older browsers lack some getters; the server reads what the attestation object holds.
    const data = r.getAuthenticatorData?.();
    if (data) response.authenticatorData = b64url.encode(data);
    response.transports = r.getTransports?.() ?? [];
    const key = r.getPublicKey?.();
    if (key) response.publicKey = b64url.encode(key);
    const alg = r.getPublicKeyAlgorithm?.();
    if (alg !== undefined) response.publicKeyAlgorithm = alg;
  } else {
    response.authenticatorData = b64url.encode(r.authenticatorData);
    response.signature = b64url.encode(r.signature);
    if (r.userHandle) response.userHandle = b64url.encode(r.userHandle);
  }
  return {
    id: c.id,
    rawId: b64url.encode(c.rawId),
    type: c.type,
    authenticatorAttachment: c.authenticatorAttachment ?? undefined,
    clientExtensionResults: c.getClientExtensionResults(),
    response,
  };
}

// POST `body` as JSON; the answer's JSON, or an Error carrying the service's words and code.
async function post(url, body, headers = {}) {
  const r = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body ?? {}),
  });
  let json = null;
  try {
    json = await r.json();
  } catch {
    // The words below stand in for a body that is not JSON.
  }
  if (!r.ok) {
    const e = new Error(json?.error?.message ?? `the service answered ${r.status}`);
    e.code = json?.error?.code ?? String(r.status);
    throw e;
  }
  return json;
}

// What a failed ceremony means, in words: the browser's own errors, or the service's.
function words(e) {
  if (e.name === "NotAllowedError") return "The passkey prompt was closed or timed out; nothing happened.";
  if (e.name === "InvalidStateError") return "This device already holds a passkey for you here.";
  if (e.name === "SecurityError") return "Passkeys work only on this site's own address (https, or localhost).";
  return typeof e.code === "string" ? `${e.message} (${e.code})` : e.message;
}

function say(status, text, bad = false) {
  status.textContent = text;
  status.classList.toggle("bad", bad);
}

const supported = typeof window.PublicKeyCredential === "function";

// The dashboard's sign-in.
const signInBox = document.getElementById("passkey-sign-in-box");
if (signInBox && supported) {
  signInBox.hidden = false;
  const button = document.getElementById("passkey-sign-in");
  const status = document.getElementById("passkey-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    say(status, "Waiting for your passkey…");
    try {
      const start = await post("/app/sign-in/passkey/options");
      const credential = await navigator.credentials.get({ publicKey: requestOptions(start.public_key) });
      const done = await post("/app/sign-in/passkey", {
        sign_in_id: start.sign_in_id,
        credential: credentialJSON(credential),
      });
      say(status, "Signed in.");
      location.assign(done.to);
    } catch (e) {
      say(status, `Not signed in: ${words(e)}`, true);
    } finally {
      button.disabled = false;
    }
  });
}

// Registration with an enrollment token.
const enrollForm = document.getElementById("enroll-form");
if (enrollForm) {
  const status = document.getElementById("enroll-status");
  if (!supported) say(status, "This browser cannot make passkeys.", true);
  enrollForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = enrollForm.querySelector("button");
    button.disabled = true;
    say(status, "Waiting for your device…");
    try {
      const token = document.getElementById("enrollment-token").value.trim();
      const start = await post("/v1/passkeys/registrations", { enrollment_token: token });
      const credential = await navigator.credentials.create({ publicKey: creationOptions(start.public_key) });
      const stored = await post("/v1/passkeys", credentialJSON(credential));
      enrollForm.reset();
      status.classList.remove("bad");
      status.replaceChildren(
        `Passkey registered for ${stored.member} (${stored.algorithm}). `,
        Object.assign(document.createElement("a"), { href: "/app", textContent: "Sign in with it" }),
        ".",
      );
    } catch (e) {
      say(status, `Not registered: ${words(e)}`, true);
    } finally {
      button.disabled = false;
    }
  });
}

// A new code, signed by the member's passkey over the code's data.
const codeForm = document.getElementById("code-form");
if (codeForm) {
  const csrf = document.getElementById("session").dataset.csrf;
  const status = document.getElementById("code-status");
  const result = document.getElementById("code-result");
  if (!supported) say(status, "This browser cannot use passkeys.", true);
  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = codeForm.querySelector("button");
    button.disabled = true;
    result.hidden = true;
    const target = {
      message: document.getElementById("code-message").value,
      recipient: document.getElementById("code-recipient").value.trim(),
    };
    const headers = { "X-CSRF-Token": csrf };
    try {
      say(status, "Preparing the code…");
      const start = await post(
        "/app/codes/presence",
        { ...target, ttl_days: Number(document.getElementById("code-ttl").value) },
        headers,
      );
      say(status, "Confirm with your passkey…");
      const credential = await navigator.credentials.get({ publicKey: requestOptions(start.public_key) });
      const issued = await post(
        "/app/codes",
        { ...target, presence: { id: start.presence_id, code: start.code, credential: credentialJSON(credential) } },
        headers,
      );
      document.getElementById("code-value").textContent = issued.code;
      const expires = document.getElementById("code-expires");
      expires.dateTime = issued.expires_at;
      expires.textContent = issued.expires_at;
      document.getElementById("code-signed").textContent = issued.device_signed
        ? "Signed with your passkey: the recipient's check says so."
        : "";
      result.hidden = false;
      say(status, "Code created.");
    } catch (e) {
      say(status, `No code: ${words(e)}`, true);
    } finally {
      button.disabled = false;
    }
  });
}
