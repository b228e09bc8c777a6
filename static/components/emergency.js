// The emergency call behind an emergency booking: whether someone has acknowledged it, and
// every step taken for it, in words. The elder's side reads who acted by role only (the API
// gives them no person's id); the centre reads every step and acknowledges with one click.
// The record is redrawn from GET /api/v1/bookings/{id}/emergency, so the first load, a
// reload after a dropped connection and a live `emergency.*` event all draw the same.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { locale, t } from "../i18n.js";
import { showError, showInfo } from "../notice.js";

// The SMS gateway's own bookkeeping: the centre follows it, the family needs only its outcome.
const CENTRE_ONLY = new Set(["webhook_started", "webhook_resumed", "webhook_attempt", "webhook_stopped", "webhook_skipped"]);

function acknowledgementText({ via, handling }) {
  if (via === "accept") return t("emergency.ack.accept");
  return t(handling ? "emergency.ack.centre_handling" : "emergency.ack.centre");
}

function stepText(step) {
  const detail = step.detail ?? {};
  switch (step.kind) {
    case "acknowledged":
      return acknowledgementText(detail);
    case "offered":
      return t("emergency.step.offered", { helpers: detail.helpers ?? "?" });
    case "webhook_attempt":
      return t("emergency.step.webhook_attempt", { attempt: detail.attempt ?? "?", outcome: detail.status ?? detail.error ?? "—" });
    default:
      return t(`emergency.step.${step.kind}`);
  }
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

// What the call's state means to the reader, in one line.
function stateText(call) {
  if (call.state === "open") return t("emergency.state.open");
  if (call.state === "closed") return t("emergency.state.closed");
  return acknowledgementText(call.acknowledgement ?? {});
}

// "I'm handling it": the centre acknowledges the call (handling: true), which stops the
// escalation. `onDone(record, acknowledgedNow)` runs after the answer; a call acknowledged by
// someone else meanwhile answers 200 with that acknowledgement, which is said so.
export function acknowledgeButton(callId, onDone) {
  const button = h("button", { type: "button", class: "danger", dataset: { acknowledge: callId } }, t("emergency.acknowledge"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api.post(`/api/v1/emergencies/${callId}/acknowledgement`, { handling: true });
      showInfo(t(result.acknowledged_now ? "emergency.acknowledged_now" : "emergency.acknowledged_before"));
      await onDone(result.emergency, result.acknowledged_now);
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// The record's card for a booking page; `load()` fetches and draws it.
export function emergencyRecord(bookingId, { centre = false } = {}) {
  const headingId = `emergency-${bookingId}`;
  const status = h("p", { class: "emergency-status" });
  const steps = h("ol", { class: "emergency-steps", "aria-live": "polite" });
  const actions = h("div", { class: "button-row" });
  const element = h(
    "section",
    { class: "card emergency-record", "aria-labelledby": headingId },
    h("h2", { id: headingId }, t("emergency.record")),
    status,
    steps,
    actions,
  );

  function update(call) {
    element.dataset.callState = call.state;
    replace(status, h("span", { class: `badge ${call.state === "open" ? "bad" : "ok"}`, dataset: { emergencyState: call.state } }, stateText(call)));
    const shown = centre ? call.steps : call.steps.filter((s) => !CENTRE_ONLY.has(s.kind));
    replace(
      steps,
      shown.map((step) =>
        h(
          "li",
          { dataset: { step: step.kind } },
          h("time", { datetime: step.at }, clock(step.at)),
          " ",
          h("span", { class: "step-text" }, stepText(step)),
        ),
      ),
    );
    replace(actions, centre && call.state === "open" ? acknowledgeButton(call.id, (record) => update(record)) : null);
  }

  async function load() {
    try {
      update((await api.get(`/api/v1/bookings/${bookingId}/emergency`)).emergency);
    } catch (error) {
      // The call is opened by the booking's fan-out; until then there is nothing to list.
      if (error.status !== 404) throw error;
      replace(status, t("emergency.none"));
      replace(steps);
      replace(actions);
    }
  }
  return { element, load, update };
}

// One open call in the centre's queue: when it came in, how far it has escalated, the
// booking and the elder's record one click away, and the acknowledge button.
export function emergencyQueueItem(call, onAcknowledged) {
  const escalation = call.escalation ?? {};
  const level = escalation.level === "webhook" && escalation.webhook === "failed" ? "webhook_failed" : escalation.level;
  return h(
    "li",
    { class: "card emergency-item", dataset: { emergency: call.id, booking: call.booking_id } },
    h("a", { href: `#/bookings/${call.booking_id}`, class: "booking-link" }, `⚠ ${t("service.emergency")}`),
    " ",
    h("span", { class: "badge bad" }, t(`emergency.level.${level}`)),
    h("p", { class: "hint" }, t("emergency.raised_at", { time: clock(call.created_at) }), " · ", h("a", { href: `#/elders/${call.elder_id}` }, t("emergency.elder_record"))),
    h("div", { class: "button-row" }, acknowledgeButton(call.id, onAcknowledged)),
  );
}
