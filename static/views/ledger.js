// Ledger explorer for centre admins and auditors: every district chain with its latest signed
// checkpoint, the newest entries, and a verify button that checks each shown entry in this
// browser (hash of the stored bytes, inclusion proof, checkpoint signature) with verify.js.

import * as api from "../api.js";
import { definitionList, field, h, replace, select } from "../dom.js";
import { locale, t } from "../i18n.js";
import { renderMark } from "../components/verifymark.js";
import { verifyReceipt } from "../verify.js";

const PAGE = 50;

function checkpointFacts(cp) {
  if (!cp) return h("p", {}, t("ledger.no_checkpoint"));
  return definitionList([
    [t("ledger.size"), cp.size],
    [t("ledger.root"), h("code", {}, cp.root)],
    [t("ledger.signed_at"), new Date(cp.at_ms).toLocaleString(locale())],
    [t("ledger.key"), h("code", {}, cp.key_id)],
  ]);
}

export async function ledgerView(main) {
  const { districts } = await api.get("/api/v1/ledger/districts");
  const chooser = select("chain", districts.map((d) => [d.district, `${d.district} (${d.size})`]), districts[0]?.district);
  const slot = h("div");
  const show = async () => {
    const chain = chooser.value;
    const info = districts.find((d) => d.district === chain);
    const end = info.size;
    const start = Math.max(0, end - PAGE);
    const page = end > 0 ? await api.get(`/api/v1/ledger/districts/${encodeURIComponent(chain)}/entries?start=${start}&end=${end}`) : { entries: [] };
    const rows = [...page.entries].reverse();
    const verifyAll = h("button", { type: "button", class: "primary" }, t("ledger.verify"));
    const cells = new Map();
    verifyAll.addEventListener("click", async () => {
      verifyAll.disabled = true;
      const { history } = await api.get(`/api/v1/ledger/districts/${encodeURIComponent(chain)}/keys`);
      for (const entry of rows) {
        const cell = cells.get(entry.seq);
        try {
          const proof = await api.get(`/api/v1/ledger/districts/${encodeURIComponent(chain)}/proof?seq=${entry.seq}`);
          const receipt = { entry: entry.body, index: entry.seq, proof: proof.proof, checkpoint: proof.checkpoint.checkpoint, keys: history };
          replace(cell, renderMark(await verifyReceipt(receipt)));
        } catch (error) {
          // Entries newer than the latest checkpoint cannot be proven yet; say so per row.
          replace(cell, error.code === "ledger.not_checkpointed" ? t("statement.pending") : error.message);
        }
      }
      verifyAll.disabled = false;
    });
    const { checkpoints } = await api.get(`/api/v1/ledger/districts/${encodeURIComponent(chain)}/checkpoints?limit=50`);
    // The stored canonical bytes, one entry per line: what `ledger verify` reads from a file.
    const exportLink = h("a", { class: "button secondary", download: `${chain}-${start}-${end}.jsonl`, href: URL.createObjectURL(new Blob(page.entries.map((e) => `${e.body}\n`), { type: "application/x-ndjson" })) }, t("ledger.export"));
    replace(
      slot,
      h("section", { class: "card" }, h("h2", {}, t("ledger.checkpoint")), checkpointFacts(info.checkpoint)),
      h(
        "section",
        { class: "card" },
        h("h2", {}, t("ledger.entries")),
        rows.length ? h("div", { class: "button-row" }, verifyAll, exportLink) : null,
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
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, t("ledger.history")),
        checkpoints.length
          ? h(
              "div",
              { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("ledger.history") },
              h(
                "table",
                {},
                h("thead", {}, h("tr", {}, ["ledger.size", "ledger.signed_at", "ledger.key", "ledger.root"].map((k) => h("th", { scope: "col" }, t(k))))),
                h("tbody", {}, [...checkpoints].reverse().map((cp) => h("tr", {}, h("td", {}, cp.size), h("td", {}, new Date(cp.at_ms).toLocaleString(locale())), h("td", {}, h("code", {}, cp.key_id.slice(0, 12))), h("td", {}, h("code", {}, `${cp.root.slice(0, 16)}…`))))),
              ),
            )
          : h("p", {}, t("ledger.no_checkpoint")),
      ),
    );
  };
  const form = h("form", { class: "card inline-form" }, field(t("ledger.chain"), chooser), h("button", { type: "submit", class: "primary" }, t("policy.show")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await show();
  });
  replace(main, h("h1", {}, t("nav.ledger")), districts.length ? form : h("p", {}, t("ledger.none")), slot);
  if (districts.length) await show();
}
