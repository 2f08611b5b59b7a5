// The review page's only script (served from /static/, as the Content-Security-Policy requires).
// Text from the server is only ever set with textContent; nothing is parsed as HTML. The console key is
// never here: a signed-in browser sends its HttpOnly session cookie, which this script cannot read.
"use strict";

function show(card, text, ok) {
  const msg = card.querySelector(".msg");
  msg.textContent = text;
  msg.classList.toggle("err", !ok);
}

async function send(card, label) {
  const reviewer = document.getElementById("reviewer").value.trim();
  if (!reviewer) { show(card, "enter your name first", false); return; }
  let r;
  try {
    r = await fetch("/api/labels", {
      method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({creative_id: card.dataset.id, label: label, reviewer: reviewer}),
    });
  } catch (e) { show(card, "network error: " + e, false); return; }
  let detail = "";
  try { const j = await r.json(); detail = typeof j.detail === "string" ? j.detail : ""; } catch (e) { /* not JSON */ }
  if (r.ok) { card.classList.add("done"); show(card, "saved: " + label, true); }
  else if (r.status === 401) { show(card, "signed out: reload the page and sign in", false); }
  else { show(card, detail || ("error " + r.status), false); }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const card of document.querySelectorAll(".card")) {
    for (const b of card.querySelectorAll("button[data-label]")) {
      b.addEventListener("click", () => send(card, b.dataset.label));
    }
  }
  // Says the buttons are wired: a click on a card drawn before this ran did nothing (tests wait for it).
  document.documentElement.dataset.ready = "1";
});
