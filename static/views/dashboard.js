// The centre's dashboard: bookings per day, the share matched, and hours served per day,
// worked out from the district's bookings (the API's list, newest 500). Drawn with charts.js.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { barChart, lineChart } from "../charts.js";

const DAYS = 14;
const MATCHED = new Set(["accepted", "en_route", "in_service", "completed", "confirmed", "settled", "rated"]);

function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getMonth() + 1}/${d.getDate()}`;
}

function lastDays(count) {
  const days = [];
  const today = new Date();
  for (let i = count - 1; i >= 0; i -= 1) {
    const d = new Date(today);
    d.setDate(today.getDate() - i);
    days.push(`${d.getMonth() + 1}/${d.getDate()}`);
  }
  return days;
}

export function dailySeries(bookings, days = lastDays(DAYS)) {
  const counts = new Map(days.map((d) => [d, { total: 0, matched: 0, minutes: 0 }]));
  for (const b of bookings) {
    const bucket = counts.get(dayKey(b.window_start));
    if (!bucket) continue;
    bucket.total += 1;
    if (MATCHED.has(b.state)) bucket.matched += 1;
    bucket.minutes += b.served_minutes ?? 0;
  }
  return days.map((label) => ({ label, ...counts.get(label) }));
}

export async function dashboardView(main) {
  const [{ bookings }, settlement] = await Promise.all([api.get("/api/v1/bookings"), api.get("/api/v1/ledger/settlement")]);
  const series = dailySeries(bookings);
  const total = bookings.length;
  const matched = bookings.filter((b) => MATCHED.has(b.state)).length;
  replace(
    main,
    h("h1", {}, t("nav.dashboard")),
    h("p", { class: "lead" }, t("dashboard.summary", { total, matched, rate: total ? Math.round((matched / total) * 100) : 0 })),
    h(
      "div",
      { class: "chart-grid" },
      barChart(series.map((s) => ({ label: s.label, value: s.total })), { title: t("dashboard.bookings_per_day") }),
      lineChart(series.map((s) => ({ label: s.label, value: s.total ? Math.round((s.matched / s.total) * 100) : 0 })), { title: t("dashboard.match_rate"), unit: "%", max: 100 }),
      barChart(series.map((s) => ({ label: s.label, value: Math.round((s.minutes / 60) * 10) / 10 })), { title: t("dashboard.hours_per_day"), unit: t("unit.hours") }),
      // Cross-district redemption: net hours each district owes another after settlement.
      barChart(
        settlement.positions.map((p) => ({ label: `${p.debtor}→${p.creditor}`, value: Math.round((p.minutes / 60) * 10) / 10 })),
        { title: t("dashboard.settlement"), unit: t("unit.hours") },
      ),
    ),
  );
}
