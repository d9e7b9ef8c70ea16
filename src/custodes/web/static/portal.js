// The portal page's verification: fetch proof bundles for the rows on the page, check them with
// verify.js, and re-render every row from the entry bytes that were checked, so that what the
// subject reads is what was verified. Entry text is only ever set as text, never as HTML.

import { b64decode, fingerprint, verifyBundle } from "./verify.js";

const BATCH = 200; // at most custodes.web._proofs.MAX_SEQS per request
// Twin of custodes.web._portal_view.ACTION_LABELS.
const ACTION_LABELS = {
  get: "read",
  find: "search",
  put: "write",
  export: "export",
  shred: "erase",
  case_open: "case opened",
  case_approve: "case approved",
  case_close: "case closed",
};
const MARKS = {
  verified: "✓ verified",
  unwitnessed: "✓ signed by the log only",
  pending: "… pending",
  failed: "✗ NOT verified",
};

function when(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fill(cell, ...children) {
  cell.replaceChildren(...children.flatMap((c, i) => (i ? [" ", c] : [c])));
}

function renderRow(row, event, seq) {
  const cell = (name) => row.querySelector(`[data-col="${name}"]`);
  const link = el("a", "", when(event.ts));
  link.href = `/portal/entry/${seq}`;
  fill(cell("when"), link);
  fill(cell("org"), el("span", "", String(event.org ?? "")));
  fill(
    cell("official"),
    el("span", "accessor", String(event.accessor ?? "")),
    el("span", "role", String(event.role ?? "")),
  );
  const fields = Array.isArray(event.fields) ? event.fields.join(", ") : "";
  fill(
    cell("what"),
    el("span", "action", ACTION_LABELS[event.action] ?? String(event.action ?? "")),
    el("span", "collection", String(event.collection ?? "")),
    el("span", "fields", fields),
  );
  fill(cell("purpose"), el("span", "", event.purpose ? String(event.purpose) : "—"));
  fill(cell("case"), el("span", "", event.case ? String(event.case) : "—"));
  const decision = event.decision === "allow" ? "allowed" : "denied";
  const badge = el("span", `decision ${decision}`, decision + (event.break_glass ? " (emergency)" : ""));
  badge.title = String(event.reason ?? "");
  fill(cell("decision"), badge);
  row.dataset.rendered = "entry";
}

function markRow(row, result, checkpoint) {
  const mark = row.querySelector(".mark");
  mark.dataset.state = result.state;
  mark.textContent = MARKS[result.state] + (result.state === "failed" ? `: ${result.why}` : "");
  if (result.state === "verified" || result.state === "unwitnessed") {
    const by = checkpoint.witnesses.length ? `, cosigned by ${checkpoint.witnesses.join(", ")}` : "";
    mark.title = `Entry ${result.index} is in the checkpoint of ${checkpoint.size} entries signed by ${checkpoint.origin}${by}.`;
  } else {
    mark.title = result.why;
  }
  row.classList.toggle("unverified", result.state === "failed");
}

async function fetchBundle(seqs) {
  const response = await fetch(`/portal/proofs?seqs=${seqs.join(",")}`, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return response.json();
}

function showDetail(result, bundle, item, checkpoint) {
  const json = document.getElementById("entry-json");
  if (json && result.event) json.textContent = JSON.stringify(result.event, null, 2);
  const proof = document.getElementById("proof");
  if (proof && item && Array.isArray(item.proof)) {
    proof.replaceChildren(...item.proof.map((p) => el("li", "", [...b64decode(p, "hash")].map((b) => b.toString(16).padStart(2, "0")).join(""))));
  }
  const note = document.getElementById("checkpoint-note");
  if (note) note.textContent = checkpoint.note || (bundle.checkpoint ? bundle.checkpoint.note : "none yet");
}

async function checkBatch(seqs, rows, tally) {
  let bundle;
  let outcome;
  try {
    bundle = await fetchBundle(seqs);
    outcome = await verifyBundle(bundle);
  } catch (err) {
    for (const seq of seqs) {
      markRow(rows.get(seq), { index: seq, state: "failed", why: `no proof: ${err.message}` }, {});
      tally.failed++;
    }
    return null;
  }
  for (const result of outcome.entries) {
    const row = rows.get(result.index);
    if (!row) continue;
    if (result.event) renderRow(row, result.event, result.index);
    markRow(row, result, outcome.checkpoint);
    tally[result.state]++;
    const item = bundle.entries.find((e) => e.index === result.index);
    showDetail(result, bundle, item, outcome.checkpoint);
  }
  return { bundle, checkpoint: outcome.checkpoint };
}

function summarize(tally, last) {
  const status = document.getElementById("verify-status");
  const parts = [];
  if (tally.verified) parts.push(`${tally.verified} verified`);
  if (tally.unwitnessed) parts.push(`${tally.unwitnessed} signed by the log only (no witness)`);
  if (tally.pending) parts.push(`${tally.pending} pending (newer than the last signed checkpoint)`);
  if (tally.failed) parts.push(`${tally.failed} NOT verified`);
  status.textContent = parts.length
    ? `Checked in your browser: ${parts.join(", ")}.`
    : "There are no entries to check.";
  status.dataset.state = tally.failed ? "failed" : "ok";
  if (last && last.checkpoint && !last.checkpoint.error && last.checkpoint.size) {
    document.getElementById("checkpoint-info").textContent =
      `${last.checkpoint.size} entries, signed by ${last.checkpoint.origin}`;
    document.getElementById("witness-info").textContent = last.checkpoint.witnesses.length
      ? `cosigned by ${last.checkpoint.witnesses.join(", ")}`
      : "none cosigned this checkpoint";
  } else if (last && last.checkpoint && last.checkpoint.error) {
    document.getElementById("checkpoint-info").textContent = last.checkpoint.error;
  }
  status.dataset.done = "true";
}

async function main() {
  const status = document.getElementById("verify-status");
  if (!status) return;
  const rows = new Map(
    [...document.querySelectorAll("tr[data-seq]")].map((row) => [Number(row.dataset.seq), row]),
  );
  const tally = { verified: 0, unwitnessed: 0, pending: 0, failed: 0 };
  const seqs = [...rows.keys()];
  let last = null;
  for (let i = 0; i < seqs.length; i += BATCH) {
    last = (await checkBatch(seqs.slice(i, i + BATCH), rows, tally)) || last;
  }
  if (last) {
    const code = document.getElementById("log-fingerprint");
    code.textContent = await fingerprint(last.bundle.log.vkey);
    code.title = last.bundle.log.vkey;
  }
  summarize(tally, last);
}

main().catch((err) => {
  const status = document.getElementById("verify-status");
  status.textContent = `Checking failed: ${err.message}`;
  status.dataset.state = "failed";
  status.dataset.done = "true";
});
