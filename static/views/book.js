// Booking help for an elder: pick the elder (family members), the service, the time and the
// payment, then follow the booking live. Kept to one screen so a daughter on a phone can book
// a bath in under a minute. The emergency button books at once, without the other questions.

import * as api from "../api.js";
import { choices, field, h, replace, select } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError } from "../notice.js";
import { servicePicker } from "../components/servicepicker.js";
import { isoLocal, timeChoice } from "../components/timechoice.js";
import { payChoice } from "../components/paychoice.js";

// The elders this account may book for: itself (elder), its approved links (family), or the
// one elder whose record a centre admin booked from (hotline).
export async function bookableElders(user, elderId = null) {
  if (elderId) return [(await api.get(`/api/v1/elders/${elderId.toLowerCase()}`)).elder];
  if (user.role === "elder") return [{ id: user.id, name: user.name, district_id: user.district_id }];
  const { links } = await api.get("/api/v1/family-links");
  const approved = links.filter((link) => link.status === "approved");
  const records = await Promise.all(approved.map((link) => api.get(`/api/v1/elders/${link.elder_id}`)));
  return records.map(({ elder }) => elder);
}

function newRequestKey() {
  // One key per press of "book": a retry after a dropped answer cannot book twice.
  return crypto.randomUUID();
}

async function submitRequest(body, key) {
  const { bookings } = await api.request("POST", "/api/v1/requests", body, { headers: { "Idempotency-Key": key } });
  return bookings[0];
}

// Weekly repetition: daily meals and weekly baths are the usual case. The API expands it into
// one booking per occurrence, each matched on its own.
function repeatChoice() {
  const days = choices("checkbox", "repeat_day", t("book.repeat_days"), [0, 1, 2, 3, 4, 5, 6].map((d) => [String(d), t(`weekday.${d}`)]));
  const until = h("input", { type: "date", name: "repeat_until" });
  const element = h("details", { class: "repeat" }, h("summary", {}, t("book.repeat")), days, field(t("book.repeat_until"), until));
  const value = () => {
    const weekdays = [...days.querySelectorAll("input:checked")].map((el) => Number(el.value));
    // No end date: the series runs until ended, booked some weeks ahead as time goes on.
    if (!weekdays.length) return null;
    return until.value ? { weekdays, until: until.value } : { weekdays };
  };
  return { element, value };
}

export async function bookView(main, user, elderId = null) {
  const elders = await bookableElders(user, elderId);
  if (!elders.length) {
    replace(main, h("h1", {}, t("book.title")), h("p", {}, t("book.no_elder")), h("p", {}, h("a", { class: "button primary", href: "#/family" }, t("nav.family"))));
    return;
  }
  const elderSelect = elders.length > 1 || (user.role === "family" && !elderId) ? select("elder", elders.map((e) => [e.id, e.name]), elders[0].id) : null;
  const chosenElder = () => (elderSelect ? elderSelect.value : elders[0].id);
  let balance = null;
  // A centre admin books for the elder, who pays: the admin's own balance means nothing here.
  if (user.role !== "centre_admin") {
    try {
      balance = (await api.get(`/api/v1/ledger/accounts/${user.id}/balance`)).balance_minutes;
    } catch (error) {
      // No time-bank account yet is normal for a new user; the booking still works.
      if (error.status !== 404) throw error;
    }
  }
  const message = h("div", { class: "form-message", role: "alert" });
  const emergency = async () => {
    if (!window.confirm(t("book.emergency_confirm"))) return;
    try {
      const body = { service: "emergency", window_start: isoLocal(new Date(Date.now() + 60_000)), payment: "public" };
      if (user.role !== "elder") body.elder_id = chosenElder();
      const booking = await submitRequest(body, newRequestKey());
      flashInfo(t("book.emergency_sent"));
      location.hash = `#/bookings/${booking.id}`;
    } catch (error) {
      showError(error);
    }
  };
  const services = servicePicker({ onEmergency: emergency, onChange: () => message.replaceChildren() });
  const when = timeChoice();
  const pay = payChoice({ balanceMinutes: balance });
  const repeat = repeatChoice();
  const notes = h("textarea", { name: "notes", rows: 2, maxlength: 2000 });
  const submit = h("button", { type: "submit", class: "primary big" }, t("book.submit"));
  let key = newRequestKey();
  const form = h(
    "form",
    { class: "card booking-form", novalidate: true },
    elderSelect ? field(t("book.elder"), elderSelect) : h("p", { class: "lead" }, t(user.role === "centre_admin" ? "book.for_admin" : "book.for", { name: elders[0].name })),
    services.element,
    when.element,
    repeat.element,
    pay.element,
    field(t("book.notes"), notes),
    message,
    submit,
  );
  form.addEventListener("input", () => {
    key = newRequestKey(); // a changed request is a new request
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const service = services.value();
    if (!service) {
      replace(message, h("p", {}, t("book.pick_service")));
      form.querySelector(".service-grid button")?.focus();
      return;
    }
    const { start, end } = when.value();
    const body = { service, window_start: isoLocal(start), payment: pay.value() };
    if (end) body.window_end = isoLocal(end);
    if (user.role !== "elder") body.elder_id = chosenElder();
    if (notes.value.trim()) body.notes = notes.value.trim();
    const recurrence = repeat.value();
    if (recurrence) body.recurrence = recurrence;
    submit.disabled = true;
    try {
      const booking = await submitRequest(body, key);
      flashInfo(t("book.sent"));
      location.hash = `#/bookings/${booking.id}`;
    } catch (error) {
      showError(error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h("h1", {}, t("book.title")), form);
}
