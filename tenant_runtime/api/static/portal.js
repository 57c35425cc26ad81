// The portal's only script: keeps the bearer token in sessionStorage, loads the
// server-rendered page with it, and posts decisions to the JSON API.
"use strict";

const TOKEN = "storeops.runtime.token";

function token() { return sessionStorage.getItem(TOKEN); }

function flash(message) {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.hidden = false;
  setTimeout(() => { el.hidden = true; }, 4000);
}

async function problem(res) {
  try {
    const body = await res.json();
    return body.detail || body.title || `error ${res.status}`;
  } catch (_) {
    return `error ${res.status}`;
  }
}

async function load() {
  const t = token();
  const main = document.getElementById("content");
  if (!t) { bindLogin(); return; }
  const loading = document.getElementById("login-loading");
  if (loading) loading.hidden = false;
  const res = await fetch(location.pathname + location.search, {
    headers: { Authorization: `Bearer ${t}`, Accept: "text/html" },
  });
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN);
    if (loading) loading.hidden = true;
    flash(`Please sign in again: ${await problem(res)}`);
    bindLogin();
    return;
  }
  if (!res.ok) {
    main.innerHTML = "";
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = await problem(res);
    main.appendChild(p);
    return;
  }
  const page = new DOMParser().parseFromString(await res.text(), "text/html");
  main.replaceWith(page.getElementById("content"));
  document.getElementById("who").replaceWith(page.getElementById("who"));
  document.title = page.title;
  bindPage();
}

function bindLogin() {
  const byToken = document.getElementById("login-token");
  if (byToken) {
    byToken.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN, byToken.elements.token.value.trim());
      load();
    });
  }
  const byPassword = document.getElementById("login-password");
  if (byPassword) {
    byPassword.addEventListener("submit", async (event) => {
      event.preventDefault();
      const res = await fetch("/portal/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          email: byPassword.elements.email.value,
          password: byPassword.elements.password.value,
        }),
      });
      if (!res.ok) { flash(await problem(res)); return; }
      sessionStorage.setItem(TOKEN, (await res.json()).access_token);
      load();
    });
  }
}

function value(input) {
  if (input.dataset.type === "boolean") return input.checked;
  if (input.value === "") return null;
  if (input.type === "number") return Number(input.value);
  return input.value;
}

function answersOf(form) {
  const answers = {};
  // An approval's fields and a review's label are both named by data-field.
  if (form.dataset.kind === "approval" || form.dataset.kind === "review") {
    for (const input of form.querySelectorAll("[data-field]")) {
      const v = value(input);
      if (v !== null) answers[input.dataset.field] = v;
    }
  } else {
    for (const row of form.querySelectorAll("tr[data-item]")) {
      const evidence = row.querySelector("[data-evidence-input]");
      answers[row.dataset.item] = {
        ok: row.querySelector("[data-ok]").checked,
        evidence: evidence ? value(evidence) : null,
      };
    }
  }
  return answers;
}

function bindPage() {
  for (const button of document.querySelectorAll("[data-action=sign-out]")) {
    button.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN);
      location.reload();
    });
  }
  for (const form of document.querySelectorAll("form.decision")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.querySelector(".form-status");
      const submitter = event.submitter;
      const comment = form.elements.comment.value.trim();
      const body = {
        decision: submitter ? submitter.value : "submitted",
        comment: comment || null,
        answers: answersOf(form),
      };
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      const res = await fetch(`/api/v1/tasks/${form.dataset.task}/decision`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      for (const b of form.querySelectorAll("button")) b.disabled = false;
      if (res.ok) {
        flash("Recorded.");
        load();
      } else {
        status.className = "form-status error";
        status.textContent = await problem(res);
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.getElementById("content").dataset.signedIn === "yes") bindPage();
  else load();
});
