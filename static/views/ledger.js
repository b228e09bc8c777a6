// Ledger explorer for centre admins and auditors: every district chain with its latest signed
// checkpoint; its entries a page at a time (newest page first, then older and newer, or from
// any seq); the signed checkpoints a page at a time; a verify button that runs the real
// verification in this browser over what it loads (ledgercheck.js: hashes of the stored bytes,
// links and seqs, the checkpoint's Merkle root or inclusion proofs, signatures, consistency
// between successive checkpoints), marking each row and naming the first thing that failed;
// and an export of any seq range, fetched in pages, as the stored bytes one per line (from seq
// 0 with the checkpoint and keys: the files `eldercare ledger verify --file` reads).

import * as api from "../api.js";
import { definitionList, field, h, replace, select } from "../dom.js";
import { locale, t } from "../i18n.js";
import { showError } from "../notice.js";
import { reasonText, renderMark } from "../components/verifymark.js";
import { runButton } from "../components/runbutton.js";
import { chainPath, entryRange, verifyEntries, verifyHistory } from "./ledgercheck.js";

const PAGE = 50;
// The checkpoint history API answers at most 100 per request.
const HISTORY_FETCH = 100;

function checkpointFacts(cp) {
  if (!cp) return h("p", {}, t("ledger.no_checkpoint"));
  return definitionList([
    [t("ledger.size"), cp.size],
    [t("ledger.root"), h("code", {}, cp.root)],
    [t("ledger.signed_at"), new Date(cp.at_ms).toLocaleString(locale())],
    [t("ledger.key"), h("code", {}, cp.key_id)],
  ]);
}

function download(name, text, type) {
  return h("a", { class: "button secondary", download: name, href: URL.createObjectURL(new Blob([text], { type })) }, t("ledger.save_file", { name }));
}

function pager(label, { onOlder, onNewer }) {
  const older = h("button", { type: "button", class: "secondary", onclick: onOlder }, t("ledger.older"));
  const newer = h("button", { type: "button", class: "secondary", onclick: onNewer }, t("ledger.newer"));
  const status = h("p", { class: "hint", role: "status" });
  const element = h("div", { class: "pager", role: "group", "aria-label": label }, h("div", { class: "button-row" }, older, newer), status);
  return { element, older, newer, status };
}

// The last `count` checkpoints with a size below `below`, oldest first. The history API pages
// forward from a size, so look back over a span of sizes, widened until it holds enough.
export async function checkpointsBefore(chain, below, count) {
  let span = count;
  for (;;) {
    const after = Math.max(-1, below - 1 - span);
    const found = [];
    let cursor = after;
    for (;;) {
      const { checkpoints } = await api.get(`${chainPath(chain)}/checkpoints?after=${cursor}&limit=${HISTORY_FETCH}`);
      found.push(...checkpoints.filter((cp) => cp.size < below));
      const last = checkpoints.at(-1);
      if (checkpoints.length < HISTORY_FETCH || !last || last.size >= below - 1) break;
      cursor = last.size;
    }
    if (found.length >= count || after === -1) return found.slice(-count);
    span *= 4;
  }
}

// What failed first, or what was checked: in words, beside the verify button.
function showSummary(element, failed, verified) {
  const reason = failed ? reasonText(failed.reason) : "";
  const text = !failed ? verified : failed.seq !== undefined ? t("ledger.entry_failed", { seq: failed.seq, reason }) : t("ledger.checkpoint_failed", { size: failed.size, reason });
  element.className = `verify-summary ${failed ? "bad" : "ok"}`;
  replace(element, text);
}

function entriesVerified(result, start, end) {
  if (result.checkpoint === null) return t("ledger.verified_unsigned", { from: start, to: end - 1 });
  const facts = { from: start, to: end - 1, size: result.checkpoint.size };
  const parts = [t(result.whole ? "ledger.verified_root" : "ledger.verified_proofs", facts)];
  parts.push(t(result.signature.status === "verified" ? "ledger.verified_sig" : "ledger.verified_no_sig"));
  if (result.pending) parts.push(t("ledger.verified_pending", { n: result.pending }));
  return `✓ ${parts.join(" ")}`;
}

function entriesSection(chain, size, afterVerify) {
  const body = h("div");
  const summary = h("p", { class: "verify-summary", role: "status" });
  const pages = pager(t("ledger.entries_pages"), {
    onOlder: () => show(Math.max(0, start - PAGE)).catch(showError),
    onNewer: () => show(Math.min(start + PAGE, Math.max(0, size - PAGE))).catch(showError),
  });
  const jump = h("input", { name: "from_seq", type: "number", min: 0, max: Math.max(0, size - 1), step: 1, inputmode: "numeric" });
  const jumpForm = h("form", { class: "inline-form" }, field(t("ledger.from_seq"), jump), h("button", { type: "submit", class: "secondary" }, t("ledger.go")));
  jumpForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const seq = Math.min(Math.max(0, Math.floor(Number(jump.value) || 0)), Math.max(0, size - 1));
    show(seq).catch(showError);
  });
  let start = 0;
  async function show(from) {
    start = from;
    const end = Math.min(size, start + PAGE);
    const entries = end > start ? await entryRange(chain, start, end) : [];
    const rows = [...entries].reverse();
    const cells = new Map();
    const verifyAll = runButton(t("ledger.verify"), async () => {
      replace(summary, t("verify.checking"));
      try {
        const result = await verifyEntries(chain, entries);
        for (const [seq, r] of result.rows) replace(cells.get(seq), r.status === "pending" ? t("statement.pending") : renderMark(r));
        showSummary(summary, result.failed, entriesVerified(result, start, end));
      } catch (error) {
        replace(summary);
        throw error;
      }
      await afterVerify();
    });
    pages.older.disabled = start === 0;
    pages.newer.disabled = end >= size;
    pages.status.textContent = size ? t("ledger.showing", { from: start, to: end - 1, size }) : "";
    replace(
      body,
      rows.length ? h("div", { class: "button-row" }, verifyAll) : null,
      summary,
      rows.length
        ? h(
            "div",
            { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("ledger.entries") },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["ledger.seq", "ledger.kind", "ledger.debit", "ledger.credit", "statement.minutes", "statement.check"].map((k) => h("th", { scope: "col" }, t(k))))),
              h(
                "tbody",
                {},
                rows.map((e) => {
                  const cell = h("td", {}, "");
                  cells.set(e.seq, cell);
                  return h("tr", { dataset: { seq: String(e.seq) } }, h("td", {}, e.seq), h("td", {}, t(`entry.${e.kind}`)), h("td", {}, h("code", {}, e.debit)), h("td", {}, h("code", {}, e.credit)), h("td", {}, e.minutes), cell);
                }),
              ),
            ),
          )
        : h("p", {}, t("statement.empty")),
    );
  }
  // An empty chain has nothing to page through.
  pages.element.hidden = !size;
  const element = h("section", { class: "card", "aria-labelledby": "entries-heading" }, h("h2", { id: "entries-heading" }, t("ledger.entries")), pages.element, size ? jumpForm : null, body);
  return { element, show: () => show(Math.max(0, size - PAGE)) };
}

function historySection(chain, latest) {
  const body = h("div");
  const summary = h("p", { class: "verify-summary", role: "status" });
  const cells = new Map();
  // `shown` holds the page on screen, oldest first; paging moves by sizes, not positions.
  let shown = [];
  const pages = pager(t("ledger.history_pages"), {
    onOlder: () => older().catch(showError),
    onNewer: () => newer().catch(showError),
  });
  const draw = (list) => {
    shown = list;
    cells.clear();
    replace(summary);
    pages.older.disabled = !list.length || list[0].size <= 1;
    pages.newer.disabled = !list.length || !latest || list.at(-1).size >= latest.size;
    pages.status.textContent = list.length ? t("ledger.history_showing", { from: list[0].size, to: list.at(-1).size }) : "";
    replace(
      body,
      list.length
        ? h(
            "div",
            { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("ledger.history") },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["ledger.size", "ledger.signed_at", "ledger.key", "ledger.root", "statement.check"].map((k) => h("th", { scope: "col" }, t(k))))),
              h(
                "tbody",
                {},
                [...list].reverse().map((cp) => {
                  const cell = h("td", {}, "");
                  cells.set(cp.size, cell);
                  return h("tr", { dataset: { size: String(cp.size) } }, h("td", {}, cp.size), h("td", {}, new Date(cp.at_ms).toLocaleString(locale())), h("td", {}, h("code", {}, cp.key_id.slice(0, 12))), h("td", {}, h("code", {}, `${cp.root.slice(0, 16)}…`)), cell);
                }),
              ),
            ),
          )
        : h("p", {}, t("ledger.no_checkpoint")),
    );
  };
  async function older() {
    const list = await checkpointsBefore(chain, shown[0].size, PAGE);
    if (list.length) draw(list);
  }
  async function newer() {
    const { checkpoints } = await api.get(`${chainPath(chain)}/checkpoints?after=${shown.at(-1).size}&limit=${PAGE}`);
    if (checkpoints.length) draw(checkpoints);
  }
  // Each checkpoint's signature, and that each one extends the one before (and the latest).
  async function verify() {
    if (!shown.length) return;
    replace(summary, t("verify.checking"));
    const list = shown;
    let result;
    try {
      result = await verifyHistory(chain, list, latest);
    } catch (error) {
      replace(summary); // not left saying "checking" under the error
      throw error;
    }
    for (const [size, r] of result.rows) if (cells.has(size)) replace(cells.get(size), renderMark(r));
    showSummary(summary, result.failed, `✓ ${t("ledger.history_verified", { count: list.length, from: list[0].size, to: list.at(-1).size })}`);
  }
  const verifyButton = runButton(t("ledger.verify_history"), verify, { className: "secondary" });
  pages.element.hidden = !latest;
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "history-heading" },
    h("h2", { id: "history-heading" }, t("ledger.history")),
    pages.element,
    latest ? h("div", { class: "button-row" }, verifyButton) : null,
    summary,
    body,
  );
  return { element, verify, show: async () => draw(latest ? await checkpointsBefore(chain, latest.size + 1, PAGE) : []) };
}

function exportSection(chain, size) {
  const from = h("input", { name: "export_from", type: "number", min: 0, max: size, step: 1, value: 0, inputmode: "numeric" });
  const to = h("input", { name: "export_to", type: "number", min: 0, max: size, step: 1, value: size, inputmode: "numeric" });
  const status = h("p", { class: "hint", role: "status" });
  const files = h("div", { class: "button-row" });
  const submit = h("button", { type: "submit", class: "primary" }, t("ledger.export_range"));
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "export-heading" },
    h("h2", { id: "export-heading" }, t("ledger.export")),
    h("p", { class: "hint" }, t("ledger.export_hint")),
    h("div", { class: "inline-form" }, field(t("ledger.export_from"), from), field(t("ledger.export_to"), to)),
    submit,
    status,
    files,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const start = Math.floor(Number(from.value));
    const end = Math.floor(Number(to.value));
    if (!(start >= 0 && end > start && end <= size)) {
      status.textContent = t("ledger.export_bad", { size });
      return;
    }
    submit.disabled = true;
    files.replaceChildren();
    try {
      const entries = await entryRange(chain, start, end, (n) => {
        status.textContent = t("ledger.export_progress", { n, total: end - start });
      });
      // The stored canonical bytes, one entry per line: exactly what the ledger hashed.
      const lines = entries.map((e) => `${e.body}\n`).join("");
      const whole = start === 0;
      files.append(download(whole && end === size ? `${chain}.jsonl` : `${chain}-${start}-${end}.jsonl`, lines, "application/x-ndjson"));
      if (whole) {
        const [checkpoint, keys] = await Promise.all([api.get(`${chainPath(chain)}/checkpoint`), api.get(`${chainPath(chain)}/keys`)]);
        files.append(download(`${chain}.checkpoint.json`, JSON.stringify(checkpoint.checkpoint), "application/json"));
        files.append(download(`${chain}.keys.json`, JSON.stringify(keys.history), "application/json"));
      }
      status.textContent = t("ledger.export_done", { n: entries.length, from: start, to: end - 1 });
    } catch (error) {
      showError(error);
      status.textContent = "";
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function ledgerView(main) {
  const { districts } = await api.get("/api/v1/ledger/districts");
  const chooser = select("chain", districts.map((d) => [d.district, `${d.district} (${d.size})`]), districts[0]?.district);
  const slot = h("div");
  const show = async () => {
    const info = districts.find((d) => d.district === chooser.value);
    const history = historySection(info.district, info.checkpoint);
    // Verifying the entries verifies the checkpoints on screen too: one click, all of it.
    const entries = entriesSection(info.district, info.size, () => history.verify());
    replace(slot, h("section", { class: "card" }, h("h2", {}, t("ledger.checkpoint")), checkpointFacts(info.checkpoint)), entries.element, history.element, info.size ? exportSection(info.district, info.size) : null);
    await Promise.all([entries.show(), history.show()]);
  };
  const form = h("form", { class: "card inline-form" }, field(t("ledger.chain"), chooser), h("button", { type: "submit", class: "primary" }, t("policy.show")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await show();
  });
  replace(main, h("h1", {}, t("nav.ledger")), districts.length ? form : h("p", {}, t("ledger.none")), slot);
  if (districts.length) await show();
}
