// The "verified" mark next to a statement line: a badge with a plain-words reason beneath,
// so a volunteer knows both the verdict and why.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { verifyReceipt } from "../verify.js";

const REASONS = {
  ok: "verify.proof_ok",
  proof_bad: "verify.proof_bad",
  index_mismatch: "verify.proof_bad",
  district_mismatch: "verify.proof_bad",
  beyond_checkpoint: "verify.proof_bad",
  sig_bad: "verify.sig_bad",
  key_mismatch: "verify.key_mismatch",
  sig_unsupported: "verify.sig_unsupported",
  // A stretch of the chain checked in the explorer (chain.js, ledgercheck.js).
  not_json: "verify.not_canonical",
  not_canonical: "verify.not_canonical",
  bad_version: "verify.not_canonical",
  wrong_district: "verify.wrong_district",
  seq_gap: "verify.seq_gap",
  fields_differ: "verify.fields_differ",
  hash_mismatch: "verify.hash_mismatch",
  prev_mismatch: "verify.prev_mismatch",
  root_mismatch: "verify.root_mismatch",
  consistency_bad: "verify.consistency_bad",
};

export function reasonText(reason) {
  return t(REASONS[reason] ?? "verify.proof_bad");
}

export function renderMark(result) {
  const verified = result.status === "verified";
  const partly = result.status === "proof_only";
  const badge = verified ? "verify.verified" : partly ? "verify.proof_only" : "verify.not_verified";
  const reason = result.reason === "malformed" ? t("verify.malformed", { problem: result.problem ?? "" }) : reasonText(result.reason);
  // What was checked, when it verified: a statement line's proof, or what the explorer checked.
  const notes = verified ? (result.notes ?? ["verify.proof_ok", "verify.sig_ok"]).map((key) => t(key)) : [reason];
  return h(
    "span",
    { class: "verify", "data-status": result.status },
    h("span", { class: `badge ${verified ? "ok" : partly ? "" : "bad"}` }, verified ? "✓ " : partly ? "" : "✗ ", t(badge)),
    notes.map((note) => h("span", { class: "verify-note" }, note)),
  );
}

// A placeholder that replaces itself with the verdict once the checks finish.
export function verifyMark(receipt, options) {
  const slot = h("span", { class: "verify", "data-status": "checking", "aria-live": "polite" }, t("verify.checking"));
  verifyReceipt(receipt, options).then((result) => slot.replaceWith(renderMark(result)));
  return slot;
}
