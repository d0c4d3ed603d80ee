// The stamp page: the chosen or dropped photos go to POST /v1/stamp in one request (past the
// installation's challenge_over, or when the service asks for one, after solving a
// proof-of-work challenge in a Web Worker); one
// photo comes back as the stamped file, several as a ZIP read here (entries are stored
// uncompressed) into one download link per photo, with its proof.

const form = document.getElementById("stamp-form");
const input = document.getElementById("file");
const drop = document.getElementById("drop");
const progress = document.getElementById("stamp-progress");
const status = document.getElementById("stamp-status");
const list = document.getElementById("stamped");
const challengeOver = Number(form.dataset.challengeOver);
const maxFiles = Number(form.dataset.maxFiles);
const made = [];

function say(text, tone) {
  status.textContent = text;
  status.className = tone ? `badge ${tone}` : "";
}

// Solve GET /v1/challenge?route=stamp in a worker; the Pixseal-Challenge header value.
async function solveChallenge() {
  const r = await fetch("/v1/challenge?route=stamp", { credentials: "omit" });
  if (!r.ok) throw new Error(`no challenge (${r.status})`);
  const challenge = await r.json();
  const worker = new Worker("/assets/pow-worker.js");
  try {
    const solution = await new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => {
        if (data.solution) resolve(data.solution);
        else if (data.error) reject(new Error(data.error));
        else say(`Working on the challenge (${data.tried} tries)…`);
      };
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage(challenge);
    });
    form.dataset.solvedMs = String(Math.round(solution.time));
    return btoa(JSON.stringify({ challenge, solution }));
  } finally {
    worker.terminate();
  }
}

function send(files, query, challenge) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/stamp?${query}`);
    if (challenge) xhr.setRequestHeader("pixseal-challenge", challenge);
    xhr.responseType = "arraybuffer";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 200) {
        resolve({ type: xhr.getResponseHeader("content-type"), body: xhr.response, headers: xhr });
      } else {
        let message = `the service answered ${xhr.status}`;
        let code = "";
        try {
          ({ message, code } = JSON.parse(new TextDecoder().decode(xhr.response)).error);
        } catch {}
        reject(Object.assign(new Error(message), { code }));
      }
    });
    xhr.addEventListener("error", () => reject(new Error("the connection failed")));
    const body = new FormData();
    for (const f of files) body.append("file", f, f.name);
    xhr.send(body);
  });
}

// The entries of a ZIP whose entries are stored (no compression), from its central directory.
function unzipStored(buffer) {
  const v = new DataView(buffer);
  let end = buffer.byteLength - 22;
  while (end >= 0 && v.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error("not a ZIP");
  const count = v.getUint16(end + 10, true);
  let at = v.getUint32(end + 16, true);
  const entries = new Map();
  for (let i = 0; i < count; i++) {
    if (v.getUint32(at, true) !== 0x02014b50 || v.getUint16(at + 10, true) !== 0) {
      throw new Error("unexpected ZIP entry");
    }
    const size = v.getUint32(at + 20, true);
    const nameLen = v.getUint16(at + 28, true);
    const extraLen = v.getUint16(at + 30, true);
    const commentLen = v.getUint16(at + 32, true);
    const local = v.getUint32(at + 42, true);
    const name = new TextDecoder().decode(new Uint8Array(buffer, at + 46, nameLen));
    const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    entries.set(name, new Uint8Array(buffer, start, size));
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

function show(name, blob, file, proof) {
  const url = URL.createObjectURL(blob);
  made.push(url);
  const li = document.createElement("li");
  li.setAttribute("aria-label", name);
  const img = document.createElement("img");
  img.src = url;
  img.alt = `Stamped ${name}`;
  img.className = "thumb";
  const title = document.createElement("p");
  title.className = "eyebrow";
  title.textContent = name;
  const link = document.createElement("a");
  link.href = url;
  link.download = file;
  link.dataset.bytes = String(blob.size);
  link.textContent = `Download ${file}`;
  const check = document.createElement("a");
  check.href = `/v/${proof}`;
  check.textContent = `Proof ${proof}`;
  const actions = document.createElement("p");
  actions.className = "actions";
  actions.append(link, check);
  li.append(img, title, actions);
  list.append(li);
}

function refused(name, message) {
  const li = document.createElement("li");
  li.setAttribute("aria-label", name);
  const title = document.createElement("p");
  title.className = "eyebrow";
  title.textContent = name;
  const badge = document.createElement("p");
  badge.className = "badge bad";
  badge.textContent = `Not stamped: ${message}`;
  li.append(title, badge);
  list.append(li);
}

async function stamp(files) {
  if (files.length > maxFiles) {
    say(`At most ${maxFiles} photos at once.`, "bad");
    return;
  }
  for (const url of made.splice(0)) URL.revokeObjectURL(url);
  list.replaceChildren();
  const query = new URLSearchParams();
  const format = document.getElementById("format").value;
  if (format) query.set("format", format);
  if (!document.getElementById("visible").checked) query.set("visible", "false");
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const challenge = files.length > challengeOver ? await solveChallenge() : null;
    say(`Stamping ${files.length} photo${files.length > 1 ? "s" : ""}…`);
    progress.value = 0;
    progress.hidden = false;
    let answer;
    try {
      answer = await send(files, query.toString(), challenge);
    } catch (e) {
      // Anonymous callers past their free requests need a challenge whatever the count.
      if (e.code !== "challenge_required" || challenge) throw e;
      answer = await send(files, query.toString(), await solveChallenge());
    }
    if (answer.type === "application/zip") {
      const entries = unzipStored(answer.body);
      const manifest = JSON.parse(new TextDecoder().decode(entries.get("manifest.json")));
      for (const f of manifest.files) {
        const name = f.name ?? "photo";
        if (f.error) refused(name, f.error.message);
        else show(name, new Blob([entries.get(f.file)], { type: f.content_type }), f.file, f.proof_id);
      }
      say(`${manifest.stamped} of ${manifest.files.length} stamped. Nothing but their proofs was kept.`, "good");
    } else {
      const proof = answer.headers.getResponseHeader("pixseal-proof-id");
      const ext = answer.type.split("/")[1] === "jpeg" ? "jpg" : answer.type.split("/")[1];
      show(files[0].name, new Blob([answer.body], { type: answer.type }), `${proof}.${ext}`, proof);
      say("Stamped. Nothing but its proof was kept.", "good");
    }
  } catch (e) {
    say(`Not stamped: ${e.message}`, "bad");
  } finally {
    progress.hidden = true;
    button.disabled = false;
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (input.files.length) stamp([...input.files]);
});
drop.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  if (ev.dataTransfer.files.length) stamp([...ev.dataTransfer.files]);
});
