// Bookings: the list a person may see, and one booking with its live timeline and the next
// step each party can take (helper: set off, check in, check out; elder side: confirm, rate,
// cancel; centre: dispatch a suggested helper, refuse an escalated request, decide a dispute).
// Any event about the booking reloads it over HTTP, so the screen always shows the server's
// state, not a guess.
// An emergency booking also shows its emergency call to the elder's side and the centre: its
// steps as they happen (helpers alerted, centre alerted, SMS sent, acknowledged...).

import * as api from "../api.js";
import { definitionList, field, h, replace } from "../dom.js";
import { locale, t } from "../i18n.js";
import { flashInfo, showError, showPending } from "../notice.js";
import { coalesce, onScreen } from "../live.js";
import { statusTimeline } from "../components/timeline.js";
import { suggestionList } from "../components/suggestions.js";
import { emergencyRecord } from "../components/emergency.js";
import { runButton } from "../components/runbutton.js";
import { disputeDecision } from "../components/dispute.js";

const HELPERS = ["volunteer", "provider_staff"];
const ELDER_SIDE = ["elder", "family"];
const CANCELLABLE = ["requested", "offered", "accepted", "escalated"];

export function when(booking) {
  const start = new Date(booking.window_start);
  const end = new Date(booking.window_end);
  const day = start.toLocaleDateString(locale(), { month: "long", day: "numeric", weekday: "short" });
  const time = (d) => d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  return `${day} ${time(start)}–${time(end)}`;
}

export function stateBadge(state) {
  const good = ["accepted", "en_route", "in_service", "completed", "confirmed", "settled", "rated"].includes(state);
  const bad = ["cancelled", "expired", "escalated", "declined", "no_show", "disputed"].includes(state);
  return h("span", { class: `badge ${good ? "ok" : bad ? "bad" : ""}`, dataset: { state } }, t(`state.${state}`));
}

export function bookingSummary(booking) {
  return h(
    "li",
    { class: "card booking-item", dataset: { booking: booking.id } },
    h("a", { href: `#/bookings/${booking.id}`, class: "booking-link" }, `${booking.emergency ? "⚠ " : ""}${t(`service.${booking.service}`)}`),
    " ",
    stateBadge(booking.state),
    h("p", { class: "hint" }, when(booking)),
    waitingReason(booking) ? h("p", { class: "hint match-note" }, waitingReason(booking)) : null,
  );
}

const PAGE = 50;

// The newest windows first, a page at a time; a live event reloads as many as are shown, so a
// booking that changed state never jumps out of the list while the user reads it.
export async function bookingListView(main, user) {
  const list = h("div");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("bookings.older"));
  let shown = [];
  const draw = (next) => {
    replace(list, shown.length ? h("ul", { class: "plain" }, shown.map(bookingSummary)) : h("p", {}, t("bookings.none")));
    more.hidden = next === null;
  };
  const reload = async () => {
    const limit = Math.min(500, Math.max(PAGE, shown.length));
    const page = await api.get(`/api/v1/bookings?limit=${limit}`);
    shown = page.bookings;
    draw(page.next_offset);
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await api.get(`/api/v1/bookings?limit=${PAGE}&offset=${shown.length}`);
      const seen = new Set(shown.map((b) => b.id));
      shown = [...shown, ...page.bookings.filter((b) => !seen.has(b.id))];
      draw(page.next_offset);
    } catch (error) {
      showError(error);
    } finally {
      more.disabled = false;
    }
  });
  const soon = coalesce(reload, showError);
  onScreen({ event: (e) => e.kind === "booking.state" && soon(), reload: soon });
  replace(
    main,
    h("h1", {}, t(HELPERS.includes(user.role) ? "nav.jobs" : "nav.bookings")),
    ELDER_SIDE.includes(user.role) ? h("p", {}, h("a", { class: "button primary", href: "#/book" }, t("nav.book"))) : null,
    list,
    h("p", {}, more),
  );
  await reload();
}

// Where the helper is, for check-in and check-out. The server compares it with the elder's
// place; without a position the helper is asked to allow location access.
function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error(t("job.no_location")));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude }),
      () => reject(new Error(t("job.no_location"))),
      { enableHighAccuracy: true, timeout: 8000, maximumAge: 60_000 },
    );
  });
}

export function actionButton(label, run, { kind = "primary" } = {}) {
  return runButton(label, run, { className: `${kind} big` });
}

export function helperActions(booking, act) {
  const reason = h("input", { name: "reason", maxlength: 500, autocomplete: "off" });
  const reasonField = field(t("job.reason"), reason, t("job.reason_hint"));
  const withReason = (body) => (reason.value.trim() ? { ...body, reason: reason.value.trim() } : body);
  if (booking.state === "accepted") return [actionButton(t("job.start"), () => act("start", {}, "job.started"))];
  if (booking.state === "en_route") {
    return [actionButton(t("job.check_in"), async () => act("check-in", withReason(await position()), "job.checked_in")), reasonField];
  }
  if (booking.state === "in_service") {
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 12 });
    return [
      field(t("job.code"), code, t("job.code_hint")),
      reasonField,
      actionButton(t("job.check_out"), async () => {
        const body = withReason(await position());
        if (code.value.trim()) body.code = code.value.trim();
        await act("check-out", body, "job.checked_out");
      }),
    ];
  }
  return [];
}

function elderSideActions(booking, act) {
  const actions = [];
  if (booking.confirm_code && ["en_route", "in_service", "completed"].includes(booking.state)) {
    actions.push(h("p", { class: "confirm-code" }, t("booking.code", { code: booking.confirm_code })));
  }
  if (booking.state === "completed") {
    actions.push(actionButton(t("booking.confirm"), () => act("confirm", {}, "booking.confirmed")));
    // Something went wrong: the hours wait until the centre has looked at it.
    const why = h("input", { name: "dispute_reason", maxlength: 500, autocomplete: "off" });
    actions.push(
      h(
        "details",
        { class: "dispute" },
        h("summary", {}, t("booking.dispute")),
        field(t("booking.dispute_reason"), why),
        actionButton(t("booking.dispute_submit"), () => act("dispute", { reason: why.value.trim() }, "booking.disputed"), { kind: "danger" }),
      ),
    );
  }
  // The API takes stars only once the hours are settled (confirmed -> settled -> rated):
  // offered earlier, a press would only meet a refusal.
  if (booking.state === "settled" && booking.rating === null) actions.push(...ratingForm(act));
  if (CANCELLABLE.includes(booking.state)) {
    actions.push(actionButton(t("booking.cancel"), () => act("cancel", { reason: t("booking.cancel_reason") }, "booking.cancelled"), { kind: "danger" }));
  }
  return actions;
}

// Stars with an optional comment; ticking "complaint" (or few stars) puts it before the centre,
// and a complaint without words would tell the centre nothing, so it asks for them first.
function ratingForm(act) {
  const comment = h("textarea", { name: "comment", maxlength: 1000, rows: 3 });
  const complaint = h("input", { type: "checkbox", name: "complaint", id: "rating-complaint" });
  const stars = h("div", { class: "button-row stars", role: "group", "aria-label": t("booking.rate") });
  for (let n = 1; n <= 5; n += 1) {
    stars.append(
      actionButton(t("booking.stars", { n }), async () => {
        const body = { stars: n, comment: comment.value.trim(), complaint: complaint.checked };
        if (body.complaint && !body.comment) throw new Error(t("booking.complaint_needs_words"));
        await act("rate", body, body.complaint ? "booking.complained" : "booking.rated");
      }, { kind: "secondary" }),
    );
  }
  return [
    h("h3", {}, t("booking.rate")),
    field(t("booking.rating_comment"), comment, t("booking.rating_comment_hint")),
    h("div", { class: "choice" }, complaint, h("label", { for: "rating-complaint" }, t("booking.complaint"))),
    stars,
  ];
}

// For an elder without a phone the centre prints the one-time code on a card; the code is
// fetched only on request, because every read of it is logged. `shown` keeps the card fetched
// once, so a redraw (the booking offered meanwhile) does not lose it or read it again.
function confirmationCard(booking, shown) {
  const slot = h("div", { class: "confirm-card-slot" });
  const render = (card) => {
    replace(
      slot,
      h(
        "section",
        { class: "card confirm-card", "aria-label": t("card.title") },
        h("h2", {}, t("card.title")),
        definitionList([
          [t("card.elder"), card.elder_name],
          [t("card.service"), t(`service.${card.service}`)],
          [t("booking.when"), when(card)],
          [t("card.code"), h("strong", { class: "code" }, card.code)],
        ]),
        h("p", {}, t("card.instructions")),
        h("div", { class: "button-row no-print" }, runButton(t("card.print"), () => window.print(), { className: "secondary big" })),
      ),
    );
  };
  const show = async () => {
    shown.card ??= (await api.get(`/api/v1/bookings/${booking.id}/confirm-code`)).card;
    render(shown.card);
  };
  if (shown.card) render(shown.card);
  return [h("div", { class: "button-row" }, actionButton(t("card.show"), show, { kind: "secondary" })), slot];
}

const CODE_USABLE = ["requested", "offered", "accepted", "en_route", "escalated", "in_service", "completed"];

// The centre staffs an escalated or still unmatched request: the matcher's suggestions are one
// click each; another helper can still be named by account number; an escalated request the
// centre cannot staff is declined with a reason. A dispute is upheld or rejected.
function centreActions(booking, act, render) {
  if (booking.state === "disputed") {
    return [disputeDecision(booking, (decision, note) => act("dispute/decision", { decision, note }, "queue.decided"), { className: "big" })];
  }
  if (!["escalated", "requested"].includes(booking.state)) return [];
  const suggestions = suggestionList(booking.id, {
    onDispatched: async (dispatched, helper) => {
      flashInfo(t("suggest.dispatched", { name: helper.name }));
      render(dispatched);
      showPending();
    },
  });
  suggestions.load().catch(showError);
  const helper = h("input", { name: "helper_id", autocomplete: "off", spellcheck: false });
  const reason = h("input", { name: "reason", maxlength: 500, autocomplete: "off" });
  return [
    suggestions.element,
    field(t("queue.reason"), reason),
    h(
      "details",
      { class: "manual-dispatch" },
      h("summary", {}, t("queue.other_helper")),
      field(t("queue.helper_id"), helper, t("queue.helper_hint")),
      actionButton(t("queue.dispatch"), () => act("dispatch", { helper_id: helper.value.trim(), reason: reason.value.trim() }, "queue.dispatched")),
    ),
    booking.state === "escalated" ? h("div", { class: "button-row" }, actionButton(t("queue.refuse"), () => act("refuse", { reason: reason.value.trim() }, "queue.refused"), { kind: "danger" })) : null,
  ];
}

// Why nobody has been offered it yet, from the last matching round (its reason code).
export function waitingReason(booking) {
  if (!booking.match_note || !["requested", "escalated"].includes(booking.state)) return null;
  return t(`match.${booking.match_note.code}`);
}

export async function bookingView(main, user, bookingId) {
  const id = bookingId.toLowerCase();
  const timeline = statusTimeline();
  const facts = h("div");
  const actions = h("div", { class: "actions" });
  const heading = h("h1", {});
  const emergencySlot = h("div");
  // The call's record, made once the booking is known to be an emergency.
  let record = null;
  let current = null;
  let actionsVersion = null;
  const cardShown = { card: null };
  const act = async (path, body, doneKey) => {
    const result = await api.post(`/api/v1/bookings/${id}/${path}`, body);
    flashInfo(t(doneKey));
    render(result.booking);
    showPending();
  };
  const render = (booking) => {
    current = booking;
    heading.textContent = `${booking.emergency ? "⚠ " : ""}${t(`service.${booking.service}`)}`;
    timeline.update(booking, booking.helper_name ?? null);
    replace(
      facts,
      definitionList([
        [t("booking.state"), stateBadge(booking.state)],
        [t("booking.when"), when(booking)],
        [t("booking.payment"), t(`pay.${booking.payment}`)],
        booking.helper_name ? [t("booking.helper"), booking.helper_name] : null,
        waitingReason(booking) ? [t("booking.why_waiting"), waitingReason(booking)] : null,
        booking.notes ? [t("book.notes"), booking.notes] : null,
        booking.served_minutes ? [t("booking.served"), t("policy.minutes", { minutes: booking.served_minutes })] : null,
        // The stars given stay on the page once the buttons to give them are gone.
        booking.rating ? [t("booking.rating"), t("booking.stars", { n: booking.rating })] : null,
      ]),
    );
    // The same version again (an older event replayed on reconnect) keeps the actions as they
    // are, so a half-typed comment or reason is not wiped.
    if (booking.version !== actionsVersion) {
      actionsVersion = booking.version;
      const mine = HELPERS.includes(user.role) ? helperActions(booking, act) : ELDER_SIDE.includes(user.role) ? elderSideActions(booking, act) : centreActions(booking, act, render);
      if (user.role === "centre_admin" && CODE_USABLE.includes(booking.state)) mine.push(...confirmationCard(booking, cardShown));
      replace(actions, mine);
    }
    if (booking.emergency && !record && !HELPERS.includes(user.role)) {
      record = emergencyRecord(id, { centre: user.role === "centre_admin" });
      replace(emergencySlot, record.element);
    }
  };
  const reload = async () => {
    render((await api.get(`/api/v1/bookings/${id}`)).booking);
    if (record) await record.load();
  };
  const reloadRecord = coalesce(() => record?.load(), showError, 100);
  onScreen({
    event: (e) => {
      if (e.payload?.booking_id !== id) return;
      // The call's steps (centre alerted, SMS sent, acknowledged...) change the call, not the booking.
      if (e.kind.startsWith("emergency.")) reloadRecord();
      else if (current === null || e.payload.version !== current.version) reload().catch(showError);
    },
    reload: () => reload().catch(showError),
  });
  replace(main, heading, h("section", { class: "card" }, facts), emergencySlot, timeline.element, actions);
  await reload();
}
