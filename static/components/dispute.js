// The centre's decision on a disputed service, on its booking page and in the queue: what the
// elder's side complained of, a note (filled in so one click decides, editable), and two
// buttons: upheld (the complaint stands: cancelled, no hours move) or rejected (confirmed,
// then settled). The note carries `data-keep` so a live redraw of the queue keeps what was typed.

import { field, h } from "../dom.js";
import { t } from "../i18n.js";
import { runButton } from "./runbutton.js";

// `decide(decision, note)` sends the decision; it is "upheld" or "rejected".
export function disputeDecision(booking, decide, { className = "" } = {}) {
  const note = h("input", { name: "note", required: true, maxlength: 500, autocomplete: "off", value: t("queue.dispute_note"), dataset: { keep: `dispute-note-${booking.id}` } });
  const send = (decision) => {
    // Said here, in words, rather than as the API's field error.
    if (!note.value.trim()) {
      note.focus();
      throw new Error(t("queue.note_needed"));
    }
    return decide(decision, note.value.trim());
  };
  const button = (decision, label, kind) => runButton(t(label), async () => send(decision), { className: `${kind} ${className}`.trim() });
  return h(
    "div",
    { class: "dispute-decision" },
    booking.dispute_reason ? h("p", { class: "dispute-reason" }, t("queue.dispute_reason", { reason: booking.dispute_reason })) : null,
    field(t("queue.reason"), note),
    h("div", { class: "button-row" }, button("upheld", "queue.uphold", "primary"), button("rejected", "queue.reject_dispute", "secondary")),
  );
}
