// A time-bank statement: one row per ledger entry with its verified mark. Each line is checked
// in the browser against the statement's signed checkpoint and the district's published keys
// (static/verify.js); the first key id seen for a district is pinned on this device, so a
// server that later swaps the key chain is caught.

import { h } from "../dom.js";
import { locale, t } from "../i18n.js";
import { verifyMark } from "./verifymark.js";
import { formatDuration } from "./paychoice.js";

const PIN_KEY = "eldercare.pinned_keys";

function pinnedKeyId(district, firstKeyId) {
  let pins = {};
  try {
    pins = JSON.parse(localStorage.getItem(PIN_KEY) ?? "{}");
  } catch {
    pins = {};
  }
  if (!pins[district] && firstKeyId) {
    pins[district] = firstKeyId;
    try {
      localStorage.setItem(PIN_KEY, JSON.stringify(pins));
    } catch {
      /* without storage the key is trusted on each visit instead */
    }
  }
  return pins[district] ?? null;
}

export function receiptOf(line, statement, history) {
  if (!line.proof || !statement.checkpoint) return null;
  return {
    entry: line.body,
    index: line.seq,
    proof: line.proof.hashes,
    checkpoint: statement.checkpoint.checkpoint,
    keys: history,
  };
}

export function statementTable(statement, history) {
  if (!statement.lines.length) return h("p", {}, t("statement.empty"));
  const trusted = pinnedKeyId(statement.district, history?.keys?.[0]?.key_id);
  let balance = statement.balance_minutes;
  // Lines come oldest first; the running balance is worked back from the current one.
  const balances = new Map();
  for (const line of [...statement.lines].reverse()) {
    balances.set(line.seq, balance);
    balance -= line.signed_minutes;
  }
  return h(
    "div",
    { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("statement.title") },
    h(
      "table",
      { class: "statement" },
      h("thead", {}, h("tr", {}, ["statement.date", "statement.what", "statement.minutes", "statement.balance", "statement.check"].map((k) => h("th", { scope: "col" }, t(k))))),
      h(
        "tbody",
        {},
        statement.lines.map((line) => {
          const receipt = receiptOf(line, statement, history);
          // data-label lets the phone layout show each cell with its column name.
          const cell = (key, attrs, ...content) => h("td", { ...attrs, "data-label": t(key) }, ...content);
          return h(
            "tr",
            { dataset: { seq: String(line.seq) } },
            cell("statement.date", {}, new Date(line.at_ms).toLocaleDateString(locale())),
            cell("statement.what", {}, `${t(`entry.${line.kind}`)}${line.category ? ` · ${t(`service.${line.category}`)}` : ""}`),
            cell("statement.minutes", { class: line.signed_minutes < 0 ? "minus" : "plus" }, `${line.signed_minutes > 0 ? "+" : ""}${formatDuration(line.signed_minutes)}`),
            cell("statement.balance", {}, formatDuration(balances.get(line.seq))),
            cell("statement.check", {}, receipt ? verifyMark(receipt, { trustedKeyId: trusted }) : t("statement.pending")),
          );
        }),
      ),
    ),
  );
}
