// Several files at once on the verify page: each file is posted on its own to the same /verify
// form handler a browser without JavaScript uses, and the verdict card of each answer is shown
// under the file's name, so every file gets exactly the words the one-file page gives.

const form = document.getElementById("verify-form");
const input = document.getElementById("file");
const results = document.getElementById("results");

function card(title, tone, words) {
  const section = document.createElement("section");
  section.className = "card";
  const badge = document.createElement("p");
  badge.className = `badge ${tone}`;
  badge.textContent = words;
  const h = document.createElement("h2");
  h.textContent = title;
  section.append(h, badge);
  return section;
}

async function checkOne(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  const action = form.getAttribute("action");
  const answer = await fetch(action, { method: "POST", body, credentials: "omit" });
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  const verdict = page.querySelector("main section.card");
  const out = document.createElement("article");
  out.className = "result";
  out.setAttribute("aria-label", file.name);
  const name = document.createElement("p");
  name.className = "eyebrow";
  name.textContent = file.name;
  out.append(name);
  if (verdict) {
    // The page's own card; the "check another file" form is left out.
    out.append(document.adoptNode(verdict));
  } else {
    out.append(card(file.name, "bad", `No answer (${answer.status}).`));
  }
  return out;
}

input.multiple = true;
document.getElementById("several").hidden = false;
form.addEventListener("submit", async (ev) => {
  if (input.files.length < 2) return; // one file: the plain form, a page of its own.
  ev.preventDefault();
  results.replaceChildren();
  results.setAttribute("aria-busy", "true");
  const files = [...input.files];
  const status = document.createElement("p");
  status.setAttribute("role", "status");
  results.append(status);
  for (const [i, file] of files.entries()) {
    status.textContent = `Checking ${i + 1} of ${files.length}: ${file.name}`;
    try {
      results.append(await checkOne(file));
    } catch (e) {
      results.append(card(file.name, "warn", `Not checked: ${e.message}`));
    }
  }
  status.textContent = `${files.length} files checked. None of them was stored.`;
  results.removeAttribute("aria-busy");
});
