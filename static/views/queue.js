// The centre's queue of what needs a human, each item with its one-click action:
// - emergency calls nobody has acknowledged yet: "I'm handling it" stops their escalation
//   (the duty feed, then the SMS to the duty officer);
// - escalated requests nobody took, and requests still waiting for a match: the matcher's
//   suggested helpers, each dispatched with one click;
// - disputes: what the elder's side complained of, then upheld or rejected with one click (the
//   note is filled in, editable);
// - elders whose check-in visit is overdue: book today's visit service;
// - volunteers awaiting vetting: approve or reject (the reason is filled in, editable);
// - certificates expiring within a month: verify the unchecked ones, open the helper.
// Booking sections reload on every booking event of the district, the emergency section on
// every `emergency.*` event and the visit section on visit events, so two admins see each
// other's decisions at once.

import * as api from "../api.js";
import { field, h, replace, replaceKeeping } from "../dom.js";
import { locale, t } from "../i18n.js";
import { showError, showInfo, showPending } from "../notice.js";
import { coalesce, onScreen } from "../live.js";
import { bookingSummary } from "./bookings.js";
import { suggestionList } from "../components/suggestions.js";
import { isoLocal } from "../components/timechoice.js";
import { emergencyQueueItem } from "../components/emergency.js";
import { runButton } from "../components/runbutton.js";
import { disputeDecision } from "../components/dispute.js";

const LIMIT = 20;
// Suggestions are fetched at once for the first few escalated requests; the rest on a click.
const AUTO_SUGGEST = 5;
const EXPIRY_DAYS = 30;
// The district's newest visit bookings looked through for one still to happen.
const VISIT_LOOKUP = 200;
const LIVE = ["requested", "offered", "accepted", "en_route", "in_service", "escalated"];

function section(key, name, count, more, ...content) {
  const id = `queue-${key}`;
  return h(
    "section",
    { class: "queue-section", dataset: { queue: key }, "aria-labelledby": id },
    h("h2", { id }, `${t(name)} (${count}${more ? "+" : ""})`),
    ...content,
  );
}

function oneClick(label, run, { kind = "primary" } = {}) {
  return runButton(label, run, { className: kind });
}

// A booking in the queue with its suggestions: loaded now, or behind a "show" button. Opened
// ones stay open when live updates redraw the queue (`expanded`).
function staffingItem(booking, { auto, reload, expanded }) {
  const item = bookingSummary(booking);
  const suggestions = suggestionList(booking.id, {
    onDispatched: async (_, helper) => {
      showInfo(t("suggest.dispatched", { name: helper.name }));
      await reload();
    },
  });
  if (auto || expanded.has(booking.id)) {
    item.append(suggestions.element);
    suggestions.load().catch(showError);
  } else {
    const show = oneClick(t("suggest.show"), async () => {
      expanded.add(booking.id);
      show.replaceWith(suggestions.element);
      await suggestions.load();
    }, { kind: "secondary" });
    item.append(show);
  }
  return item;
}

function disputedItem(booking, reload) {
  const item = bookingSummary(booking);
  item.append(
    disputeDecision(booking, async (decision, note) => {
      await api.post(`/api/v1/bookings/${booking.id}/dispute/decision`, { decision, note });
      showInfo(t("queue.decided"));
      await reload();
    }),
  );
  return item;
}

// What a flag says: a complaint in the elder side's words, or a check-in/out outside the
// district's tolerance (distance, time) with the helper's reason.
function flagText(flag) {
  if (flag.step === "rating") return t("queue.flag_complaint", { stars: flag.stars, reason: flag.reason });
  const outside = (flag.outside ?? []).map((o) => t(`queue.flag_outside.${o}`)).join(t("queue.flag_and"));
  return t("queue.flag_deviation", { step: t(`queue.flag_step.${flag.step}`), outside, reason: flag.reason ?? "" });
}

// A flagged booking: what was flagged, and one click to say the centre has looked at it.
function flaggedItem(booking, reload) {
  const item = bookingSummary(booking);
  // data-keep: a live redraw of the queue keeps what the admin typed.
  const note = h("input", { name: "review_note", maxlength: 500, autocomplete: "off", value: t("queue.review_default"), dataset: { keep: `review-note-${booking.id}` } });
  item.append(
    h("ul", { class: "flags" }, booking.flags.map((f) => h("li", {}, flagText(f)))),
    field(t("queue.review_note"), note),
    h(
      "div",
      { class: "button-row" },
      oneClick(t("queue.reviewed"), async () => {
        const text = note.value.trim();
        if (!text) throw new Error(t("queue.review_needs_note"));
        await api.post(`/api/v1/bookings/${booking.id}/flags/review`, { note: text });
        showInfo(t("queue.review_done"));
        await reload();
      }),
    ),
  );
  return item;
}

// A section of one page of bookings, each drawn by `item`.
function bookingList(key, name, page, item) {
  const rows = page.bookings;
  return section(key, name, rows.length, page.next_offset !== null, rows.length ? h("ul", { class: "plain" }, rows.map(item)) : h("p", {}, t("queue.empty")));
}

function bookingSections(lists, reload, expanded) {
  const [escalated, disputed, waiting, flagged] = lists;
  // Emergencies first: they are the reason the queue exists.
  const urgent = [...escalated.bookings].sort((a, b) => Number(b.emergency) - Number(a.emergency));
  return [
    bookingList("escalated", "queue.escalated", { ...escalated, bookings: urgent }, (b, i) => staffingItem(b, { auto: i < AUTO_SUGGEST, reload, expanded })),
    bookingList("disputed", "queue.disputed", disputed, (b) => disputedItem(b, reload)),
    bookingList("requested", "queue.waiting", waiting, (b) => staffingItem(b, { auto: false, reload, expanded })),
    bookingList("flagged", "queue.flagged", flagged, (b) => flaggedItem(b, reload)),
  ];
}

function days(minutes) {
  return Math.max(1, Math.round(minutes / 1440));
}

// Books the visit service for today: a volunteer goes round, and the visit is recorded there.
async function bookVisit(elder) {
  const start = new Date(Date.now() + 30 * 60_000);
  const end = new Date(start.getTime() + 4 * 3_600_000);
  const body = {
    service: "visit",
    elder_id: elder.elder_id,
    window_start: isoLocal(start),
    window_end: isoLocal(end),
    payment: "public",
    notes: t("queue.visit_note", { tier: t(`tier_short.${elder.tier}`) }),
  };
  const { bookings } = await api.request("POST", "/api/v1/requests", body, { headers: { "Idempotency-Key": crypto.randomUUID() } });
  return bookings[0];
}

// `booked` maps elders to a visit booked and not yet done; booking one from here adds to it.
function visitSection(page, booked) {
  const items = page.elders.map((elder) => {
    const slot = h("div", { class: "button-row" });
    const showBooked = (bookingId) => replace(slot, h("a", { class: "button secondary", href: `#/bookings/${bookingId}` }, t("queue.visit_booked")));
    if (booked.has(elder.elder_id)) {
      showBooked(booked.get(elder.elder_id));
    } else {
      slot.append(
        oneClick(t("queue.book_visit"), async () => {
          const booking = await bookVisit(elder);
          booked.set(elder.elder_id, booking.id);
          showInfo(t("queue.visit_sent", { name: elder.name }));
          showBooked(booking.id);
        }),
      );
    }
    return h(
      "li",
      { class: "card", dataset: { elder: elder.elder_id } },
      h("a", { href: `#/elders/${elder.elder_id}`, class: "booking-link" }, elder.name),
      " ",
      h("span", { class: "badge bad" }, t("queue.overdue_days", { days: days(elder.overdue_minutes) })),
      h(
        "p",
        { class: "hint" },
        `${t(`tier.${elder.tier}`)} · ${elder.last_visit_at ? t("queue.last_visit", { date: new Date(elder.last_visit_at).toLocaleDateString(locale()) }) : t("queue.never_visited")}`,
      ),
      slot,
    );
  });
  return section("visits", "queue.visits", page.total, false, items.length ? h("ul", { class: "plain" }, items) : h("p", {}, t("queue.empty")));
}

function vettingItem(helper, reload) {
  const reason = h("input", { name: "reason", required: true, maxlength: 200, autocomplete: "off", value: t("queue.vetting_reason"), dataset: { keep: `reason-${helper.id}` } });
  const decide = (decision) =>
    oneClick(t(decision === "approved" ? "helpers.approve" : "helpers.reject"), async () => {
      await api.post(`/api/v1/helpers/${helper.id}/vetting`, { decision, reason: reason.value.trim() });
      showInfo(t("queue.vetted", { name: helper.name, status: t(`helpers.vetting.${decision}`) }));
      await reload();
    }, { kind: decision === "approved" ? "primary" : "danger" });
  const skills = helper.skills.length ? helper.skills.map((s) => t(`service.${s}`)).join("、") : t("policy.none");
  return h(
    "li",
    { class: "card", dataset: { helper: helper.id } },
    h("a", { href: `#/helpers/${helper.id}`, class: "booking-link" }, helper.name),
    h("p", { class: "hint" }, `${t(`helpers.kind.${helper.kind}`)} · ${t("helpers.skills")}：${skills}`),
    field(t("helpers.reason"), reason),
    h("div", { class: "button-row" }, decide("approved"), decide("rejected")),
  );
}

function certificateItem(helper, before, reload) {
  const today = new Date().toISOString().slice(0, 10);
  const expiring = (helper.certificates ?? []).filter((c) => c.expires_on < before);
  return h(
    "li",
    { class: "card", dataset: { helper: helper.id } },
    h("a", { href: `#/helpers/${helper.id}`, class: "booking-link" }, helper.name),
    h(
      "ul",
      { class: "record-list" },
      expiring.map((c) =>
        h(
          "li",
          {},
          `${t(`cert.${c.kind}`)} · ${t("helpers.cert_expires", { date: c.expires_on })} `,
          h("span", { class: c.expires_on < today ? "badge bad" : "badge" }, t(c.expires_on < today ? "queue.cert_expired" : "queue.cert_expiring")),
          c.verified
            ? null
            : oneClick(t("helpers.cert_verify"), async () => {
                await api.post(`/api/v1/certificates/${c.id}/verify`);
                showInfo(t("helpers.cert_done"));
                await reload();
              }, { kind: "secondary" }),
        ),
      ),
    ),
  );
}

// Open emergency calls, oldest first: the longest unanswered is the most urgent.
function emergencySection(page, reload) {
  const calls = [...page.emergencies].reverse();
  return section(
    "emergencies",
    "queue.emergencies",
    calls.length,
    page.total > calls.length,
    calls.length ? h("ul", { class: "plain" }, calls.map((call) => emergencyQueueItem(call, reload))) : h("p", {}, t("queue.empty")),
  );
}

export async function queueView(main, user) {
  const emergenciesSlot = h("div");
  const bookingsSlot = h("div");
  const visitsSlot = h("div");
  const helpersSlot = h("div");
  const expanded = new Set();
  const reloadEmergencies = async () => {
    const page = await api.get(`/api/v1/districts/${user.district_id}/emergencies?state=open&limit=${LIMIT}`);
    replace(emergenciesSlot, emergencySection(page, reloadEmergencies));
  };
  const reloadBookings = async () => {
    const lists = await Promise.all([
      ...["escalated", "disputed", "requested"].map((state) => api.get(`/api/v1/bookings?state=${state}&order=soonest&limit=${LIMIT}`)),
      api.get(`/api/v1/bookings?flagged=true&order=soonest&limit=${LIMIT}`),
    ]);
    replaceKeeping(bookingsSlot, ...bookingSections(lists, reloadBookings, expanded));
  };
  const reloadVisits = async () => {
    const [page, visits] = await Promise.all([
      api.get(`/api/v1/districts/${user.district_id}/visit-queue?overdue_only=true&limit=${LIMIT}`),
      // Visits already booked and not yet done: the button then opens that booking, so two
      // admins (or two clicks) never send two visitors.
      api.get(`/api/v1/bookings?service=visit&limit=${VISIT_LOOKUP}`),
    ]);
    const booked = new Map();
    for (const b of [...visits.bookings].reverse()) if (LIVE.includes(b.state)) booked.set(b.elder_id, b.id);
    replace(visitsSlot, visitSection(page, booked));
  };
  const reloadHelpers = async () => {
    const before = new Date(Date.now() + EXPIRY_DAYS * 86_400_000).toISOString().slice(0, 10);
    const [pending, expiring] = await Promise.all([
      api.get(`/api/v1/helpers?vetting_status=pending&limit=${LIMIT}`),
      api.get(`/api/v1/helpers?vetting_status=approved&certificates_expiring_before=${before}&limit=${LIMIT}`),
    ]);
    replaceKeeping(
      helpersSlot,
      section("vetting", "queue.vetting", pending.helpers.length, pending.helpers.length === LIMIT, pending.helpers.length ? h("ul", { class: "plain" }, pending.helpers.map((helper) => vettingItem(helper, afterVetting))) : h("p", {}, t("queue.empty"))),
      section("certificates", "queue.certificates", expiring.helpers.length, expiring.helpers.length === LIMIT, expiring.helpers.length ? h("ul", { class: "plain" }, expiring.helpers.map((helper) => certificateItem(helper, before, reloadHelpers))) : h("p", {}, t("queue.empty"))),
    );
  };
  // A newly approved helper may be just who an open request needs: suggest again.
  const afterVetting = () => Promise.all([reloadHelpers(), reloadBookings()]);
  const reloadAll = () => Promise.all([reloadEmergencies(), reloadBookings(), reloadVisits(), reloadHelpers()]);
  const emergenciesSoon = coalesce(reloadEmergencies, showError);
  const bookingsSoon = coalesce(reloadBookings, showError);
  const visitsSoon = coalesce(reloadVisits, showError);
  onScreen({
    event: (e) => {
      if (e.kind.startsWith("emergency.")) emergenciesSoon();
      if (e.kind.startsWith("booking.")) bookingsSoon();
      if (e.kind.startsWith("visit.") || (e.kind === "booking.state" && e.payload?.service === "visit")) visitsSoon();
    },
    reload: () => reloadAll().catch(showError),
  });
  replace(main, h("h1", {}, t("nav.queue")), emergenciesSlot, bookingsSlot, visitsSlot, helpersSlot);
  await reloadAll();
  showPending();
}
