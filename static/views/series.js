// Recurring bookings: each series of an elder with its occurrences, and what the elder's side
// or the centre may do with them (GET /api/v1/series): skip one occurrence (an ordinary
// cancellation), move one nobody has taken yet to another time within a week, or end the
// series (every occurrence still ahead is cancelled; what was served stays).

import * as api from "../api.js";
import { definitionList, field, h, replace, replaceKeeping, select } from "../dom.js";
import { locale, t } from "../i18n.js";
import { showError, showInfo } from "../notice.js";
import { coalesce, onScreen } from "../live.js";
import { bookableElders } from "./book.js";
import { stateBadge, when } from "./bookings.js";
import { isoLocal } from "../components/timechoice.js";
import { runButton } from "../components/runbutton.js";

const SKIPPABLE = ["requested", "offered", "accepted", "en_route", "escalated"];
const MOVABLE = ["requested", "offered", "escalated"];

function pressOnce(label, run, kind = "secondary", keep = null) {
  return runButton(label, run, { className: kind, keep, enableAfter: false });
}

// "2026-03-02T09:30" in local time for a datetime-local input.
function localInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function occurrenceRow(series, occ, reload) {
  const post = async (path, body, doneKey) => {
    await api.post(`/api/v1/series/${series.id}/${path}`, body);
    showInfo(t(doneKey, { date: occ.occurrence }));
    await reload();
  };
  const actions = [];
  const future = new Date(occ.window_end) > new Date();
  if (future && SKIPPABLE.includes(occ.state)) {
    actions.push(pressOnce(t("series.skip"), () => post("skip", { occurrence: occ.occurrence, reason: t("series.skip_reason") }, "series.skipped"), "secondary", `skip-${occ.booking_id}`));
  }
  if (future && MOVABLE.includes(occ.state)) {
    const to = h("input", { type: "datetime-local", name: "move_to", value: localInput(occ.window_start), dataset: { keep: `to-${occ.booking_id}` } });
    const move = pressOnce(t("series.move"), () => post("move", { occurrence: occ.occurrence, to: isoLocal(new Date(to.value)), reason: t("series.move_reason") }, "series.moved"), "secondary", `move-${occ.booking_id}`);
    actions.push(h("details", { class: "move", dataset: { keep: `moving-${occ.booking_id}` } }, h("summary", { dataset: { keep: `move-open-${occ.booking_id}` } }, t("series.move_open")), field(t("series.move_to"), to), move));
  }
  return h(
    "li",
    { class: "occurrence", dataset: { occurrence: occ.occurrence ?? "", booking: occ.booking_id } },
    h("a", { href: `#/bookings/${occ.booking_id}` }, when(occ)),
    " ",
    stateBadge(occ.state),
    actions.length ? h("div", { class: "button-row" }, actions) : null,
  );
}

function seriesCard(series, reload) {
  const today = new Date().toISOString().slice(0, 10);
  const ahead = series.occurrences.filter((o) => SKIPPABLE.includes(o.state) && new Date(o.window_end) > new Date());
  // An open-ended series (no `until`) runs until ended; the service books it weeks ahead.
  const ended = series.until !== null && (series.until < today || !ahead.length);
  const days = series.weekdays.length === 7 ? t("series.every_day") : series.weekdays.map((d) => t(`weekday.${d}`)).join("、");
  // The time of day as the reader's clock shows it (the series keeps it as it was sent).
  const first = series.occurrences[0];
  const at = first ? new Date(first.window_start).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" }) : series.start_time;
  const headingId = `series-${series.id}`;
  const endReason = h("input", { name: "end_reason", maxlength: 500, autocomplete: "off", value: t("series.end_reason"), dataset: { keep: `end-reason-${series.id}` } });
  return h(
    "section",
    { class: "card series-card", dataset: { series: series.id }, "aria-labelledby": headingId },
    h("h2", { id: headingId }, `${t(`service.${series.service}`)} · ${days} ${at}`, " ", h("span", { class: ended ? "badge" : "badge ok" }, t(ended ? "series.ended" : "series.running"))),
    definitionList([
      [t("series.until"), series.until ? new Date(`${series.until}T00:00:00`).toLocaleDateString(locale()) : t("series.no_end")],
      [t("series.skipped_list"), (series.exceptions?.skip ?? []).join("、") || t("policy.none")],
    ]),
    h("h3", {}, t("series.occurrences")),
    series.occurrences.length ? h("ul", { class: "plain occurrences" }, series.occurrences.map((o) => occurrenceRow(series, o, reload))) : h("p", {}, t("series.no_occurrences")),
    ended
      ? null
      : h(
          "details",
          { class: "end-series", dataset: { keep: `ending-${series.id}` } },
          h("summary", { dataset: { keep: `end-open-${series.id}` } }, t("series.end_open")),
          field(t("series.end_reason_label"), endReason),
          pressOnce(t("series.end"), async () => {
            // Every occurrence ahead is cancelled one by one: say so while it runs.
            showInfo(t("series.ending"));
            await api.post(`/api/v1/series/${series.id}/end`, { reason: endReason.value.trim() });
            showInfo(t("series.ended_done"));
            await reload();
          }, "danger", `end-${series.id}`),
        ),
  );
}

export async function seriesView(main, user, elderId = null) {
  const elders = await bookableElders(user, elderId);
  const heading = h("h1", {}, t("series.title"));
  if (!elders.length) {
    replace(main, heading, h("p", {}, t("book.no_elder")), h("p", {}, h("a", { class: "button primary", href: "#/family" }, t("nav.family"))));
    return;
  }
  const chooser = elders.length > 1 ? select("elder", elders.map((e) => [e.id, e.name]), elders[0].id) : null;
  const list = h("div");
  const reload = async () => {
    const elder = chooser ? chooser.value : elders[0].id;
    const { series } = await api.get(`/api/v1/series?elder_id=${elder}`);
    // The newest series first: the one just booked is on top.
    const sorted = [...series].reverse();
    replaceKeeping(list, sorted.length ? sorted.map((s) => seriesCard(s, reload)) : h("p", {}, t("series.none")));
  };
  chooser?.addEventListener("change", () => reload().catch(showError));
  const soon = coalesce(reload, showError);
  onScreen({ event: (e) => e.kind === "booking.state" && soon(), reload: soon });
  const bookHref = user.role === "centre_admin" ? `#/elders/${elders[0].id}/book` : "#/book";
  replace(
    main,
    heading,
    chooser ? field(t("book.elder"), chooser) : h("p", { class: "lead" }, t("series.for", { name: elders[0].name })),
    h("p", {}, h("a", { class: "button primary", href: bookHref }, t("series.new"))),
    list,
  );
  await reload();
}
