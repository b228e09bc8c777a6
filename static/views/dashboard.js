// The centre's dashboard, drawn with charts.js from figures the server works out:
// - bookings, hours served, match rate and time to match per day over the last fortnight
//   (GET /api/v1/districts/{id}/stats, from the bookings and their transition log, so a busy
//   district's older bookings never crowd out recent days);
// - visit coverage per tier this month against the monthly target (visit-coverage);
// - cross-district settlement: net hours each district owes another (ledger settlement).

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { barChart, lineChart } from "../charts.js";

const DAYS = 14;

// "11/3" for a YYYY-MM-DD date: short enough for six labels under a 400-unit axis.
function dayLabel(iso) {
  const [, month, day] = iso.split("-").map(Number);
  return `${month}/${day}`;
}

const percent = (bp) => (bp === null ? 0 : Math.round(bp / 100));
const hours = (minutes) => Math.round((minutes / 60) * 10) / 10;

function thisMonth() {
  const now = new Date();
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
}

function summary(totals) {
  const rate = totals.match_rate_bp === null ? t("dashboard.no_rate") : `${percent(totals.match_rate_bp)}%`;
  const wait = totals.time_to_match.median_minutes === null ? t("dashboard.no_rate") : t("policy.minutes", { minutes: totals.time_to_match.median_minutes });
  return t("dashboard.summary_days", {
    days: DAYS,
    total: totals.bookings,
    matched: totals.matched,
    withdrawn: totals.withdrawn,
    rate,
    wait,
    hours: hours(totals.served_minutes),
  });
}

// Tiers without elders are left out: "100 % of nobody" would read as good coverage.
function coverageChart(coverage) {
  const rows = coverage.tiers.filter((row) => row.elders > 0);
  const points = rows.map((row) => ({ label: `${t(`tier_short.${row.tier}`)} ${row.visited}/${row.elders}`, value: Math.round(row.visited_rate_bp / 100) }));
  const title = t("dashboard.coverage", { month: coverage.month, target: percent(coverage.target_bp) });
  const chart = barChart(points, { title, unit: "%", max: 100, target: percent(coverage.target_bp), targetLabel: t("dashboard.target") });
  const met = coverage.target_met ? "dashboard.coverage_met" : "dashboard.coverage_short";
  chart.append(h("p", { class: `coverage-note ${coverage.target_met ? "ok" : "bad"}` }, t(met, { rate: percent(coverage.monthly_rate_bp), visited: coverage.monthly_visited, elders: coverage.monthly_elders })));
  return chart;
}

export async function dashboardView(main, user) {
  const district = user.district_id;
  const [stats, coverage, settlement] = await Promise.all([
    api.get(`/api/v1/districts/${district}/stats?days=${DAYS}`),
    api.get(`/api/v1/districts/${district}/visit-coverage?month=${thisMonth()}`),
    api.get("/api/v1/ledger/settlement"),
  ]);
  const days = stats.days;
  replace(
    main,
    h("h1", {}, t("nav.dashboard")),
    h("p", { class: "lead" }, summary(stats.totals)),
    h("p", { class: "hint" }, t("dashboard.explain")),
    h(
      "div",
      { class: "chart-grid" },
      barChart(days.map((d) => ({ label: dayLabel(d.date), value: d.bookings })), { title: t("dashboard.bookings_per_day") }),
      barChart(days.map((d) => ({ label: dayLabel(d.date), value: hours(d.served_minutes) })), { title: t("dashboard.hours_per_day"), unit: t("unit.hours") }),
      // Days without a booking still wanted have no rate: they are left out, not drawn as 0 %.
      lineChart(days.filter((d) => d.match_rate_bp !== null).map((d) => ({ label: dayLabel(d.date), value: percent(d.match_rate_bp) })), { title: t("dashboard.match_rate"), unit: "%", max: 100 }),
      lineChart(days.filter((d) => d.time_to_match.median_minutes !== null).map((d) => ({ label: dayLabel(d.date), value: d.time_to_match.median_minutes })), { title: t("dashboard.time_to_match"), unit: t("unit.minutes") }),
      coverageChart(coverage.coverage),
      // Cross-district redemption: net hours each district owes another after settlement.
      barChart(
        settlement.positions.map((p) => ({ label: `${p.debtor}→${p.creditor}`, value: hours(p.minutes) })),
        { title: t("dashboard.settlement"), unit: t("unit.hours") },
      ),
    ),
  );
}
