// The dashboard's gallery: decrypt one picture into memory (and out of it again on close),
// delete with a confirmation and show the receipt, upload with a progress bar, load older
// pages. Every request is same-origin; every state change carries the session's CSRF token.

const csrf = document.getElementById("session").dataset.csrf;
const gallery = document.getElementById("gallery");

async function failure(response) {
  try {
    const body = await response.json();
    return body.error?.message ?? `the service answered ${response.status}`;
  } catch {
    return `the service answered ${response.status}`;
  }
}

// Decrypt: the picture lives in this page's memory only, and only while the viewer is open.
// A video plays from the content route, which the browser reads in byte ranges as it plays
// and seeks (never cached: the answers say no-store); closing stops it and lets it go.
const viewer = document.getElementById("viewer");
const frame = document.getElementById("viewer-frame");
let shown = null;

function closeViewer() {
  for (const v of frame.querySelectorAll("video")) {
    v.pause();
    v.removeAttribute("src");
    v.load();
  }
  frame.replaceChildren();
  if (shown) URL.revokeObjectURL(shown);
  shown = null;
  if (viewer.open) viewer.close();
}

function play(button) {
  const li = button.closest("li");
  closeViewer();
  const video = document.createElement("video");
  video.controls = true;
  video.playsInline = true;
  video.preload = "metadata";
  video.id = "decrypted";
  video.setAttribute("aria-label", `Decrypted video ${li.dataset.proof}`);
  video.addEventListener("error", () => {
    alertIn(li, "Could not play this video in this browser: download it with the API instead.");
    closeViewer();
  });
  video.src = `/app/artifacts/${encodeURIComponent(button.dataset.id)}/content`;
  frame.append(video);
  document.getElementById("viewer-title").textContent = "Decrypted video";
  viewer.showModal();
}

async function decrypt(button) {
  const id = button.dataset.id;
  if (button.closest("li").dataset.type?.startsWith("video/")) {
    play(button);
    return;
  }
  button.disabled = true;
  button.textContent = "Decrypting…";
  try {
    const r = await fetch(`/app/artifacts/${encodeURIComponent(id)}/content`, {
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!r.ok) throw new Error(await failure(r));
    const blob = await r.blob();
    closeViewer();
    shown = URL.createObjectURL(blob);
    const img = document.createElement("img");
    img.src = shown;
    img.alt = `Decrypted photo ${button.closest("li").dataset.proof}`;
    img.id = "decrypted";
    frame.append(img);
    document.getElementById("viewer-title").textContent = "Decrypted photo";
    viewer.showModal();
  } catch (e) {
    alertIn(button.closest("li"), `Could not decrypt: ${e.message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Decrypt";
  }
}

viewer.addEventListener("close", closeViewer);
document.getElementById("viewer-close").addEventListener("click", closeViewer);

function alertIn(li, words) {
  let p = li.querySelector(".problem-line");
  if (!p) {
    p = document.createElement("p");
    p.className = "badge bad problem-line";
    p.setAttribute("role", "alert");
    li.append(p);
  }
  p.textContent = words;
}

// Delete: confirm, then show the receipt (public page, and the owner's view to download).
const confirmBox = document.getElementById("confirm");
const receiptBox = document.getElementById("receipt");
let pending = null;
let download = null;

function askDelete(button) {
  pending = button.closest("li");
  confirmBox.showModal();
}

document.getElementById("confirm-cancel").addEventListener("click", () => {
  pending = null;
  confirmBox.close();
});

document.getElementById("confirm-delete").addEventListener("click", async () => {
  const li = pending;
  pending = null;
  confirmBox.close();
  if (!li) return;
  try {
    const r = await fetch(`/app/artifacts/${encodeURIComponent(li.dataset.id)}/delete`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrf-token": csrf },
    });
    if (!r.ok) throw new Error(await failure(r));
    const signed = await r.json();
    const rid = signed.receipt.receipt_id;
    li.remove();
    document.getElementById("receipt-words").textContent =
      `Deleted at ${signed.receipt.deleted_at}. Receipt ${rid}, signed with key ${signed.key_id}.`;
    document.getElementById("receipt-link").href = `/r/${encodeURIComponent(rid)}`;
    if (download) URL.revokeObjectURL(download);
    download = URL.createObjectURL(new Blob([JSON.stringify(signed, null, 2)], { type: "application/json" }));
    const a = document.getElementById("receipt-download");
    a.href = download;
    a.download = `${rid}.json`;
    receiptBox.showModal();
  } catch (e) {
    alertIn(li, `Not deleted: ${e.message}`);
  }
});

document.getElementById("receipt-close").addEventListener("click", () => receiptBox.close());

gallery.addEventListener("click", (ev) => {
  const button = ev.target.closest("button");
  if (!button) return;
  if (button.classList.contains("decrypt")) decrypt(button);
  else if (button.classList.contains("delete")) askDelete(button);
});

// Older pages: the next page as the server renders it, its items appended here.
const more = document.getElementById("more");
if (more) {
  more.addEventListener("click", async (ev) => {
    ev.preventDefault();
    const r = await fetch(more.href, { credentials: "same-origin" });
    if (!r.ok) return;
    const next = new DOMParser().parseFromString(await r.text(), "text/html");
    for (const li of next.querySelectorAll("#gallery > li")) gallery.append(document.adoptNode(li));
    const following = next.getElementById("more");
    if (following) more.href = following.href;
    else more.closest("p").remove();
  });
}

// Upload: each file in turn, with progress; the gallery is reloaded when all are in.
const form = document.getElementById("upload-form");
const input = document.getElementById("upload-file");
const drop = document.getElementById("drop");
const progress = document.getElementById("upload-progress");
const status = document.getElementById("upload-status");

function send(file, query) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/app/artifacts?${query}`);
    xhr.setRequestHeader("x-csrf-token", csrf);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201) resolve(xhr.response);
      else reject(new Error(xhr.response?.error?.message ?? `the service answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new Error("the connection failed")));
    // The file itself as the body: a video is read by the service as it arrives, which a
    // form around it would prevent.
    xhr.send(file);
  });
}

async function upload(files) {
  const query = new URLSearchParams({ retention_days: document.getElementById("retention").value });
  const label = document.getElementById("label").value.trim();
  if (label) query.set("label", label);
  if (!document.getElementById("visible").checked) query.set("visible", "false");
  progress.hidden = false;
  const problems = [];
  for (const [i, file] of files.entries()) {
    status.textContent = `Uploading ${i + 1} of ${files.length}: ${file.name}`;
    progress.value = 0;
    try {
      await send(file, query.toString());
    } catch (e) {
      problems.push(`${file.name}: ${e.message}`);
    }
  }
  progress.hidden = true;
  if (problems.length) {
    status.textContent = `Not stored: ${problems.join("; ")}`;
    status.className = "badge bad";
  } else {
    location.assign("/app");
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (input.files.length) upload([...input.files]);
});
drop.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  if (ev.dataTransfer.files.length) upload([...ev.dataTransfer.files]);
});
