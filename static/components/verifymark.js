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
};

export function renderMark(result) {
  const verified = result.status === "verified";
  const partly = result.status === "proof_only";
  const badge = verified ? "verify.verified" : partly ? "verify.proof_only" : "verify.not_verified";
  const reason = result.reason === "malformed" ? t("verify.malformed", { problem: result.problem ?? "" }) : t(REASONS[result.reason] ?? "verify.proof_bad");
  const notes = verified ? [t("verify.proof_ok"), t("verify.sig_ok")] : [reason];
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
