// "When?": today / tomorrow / a date, then morning / afternoon / an exact time. Morning and
// afternoon become a window the helper may start in; an exact time is a start with the
// service's own duration. Times are the device's local time, sent with its offset.

import { choices, field, h } from "../dom.js";
import { t } from "../i18n.js";

const PARTS = { morning: [9, 12], afternoon: [14, 17] };

function dayOffset(days) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() + days);
  return d;
}

export function isoDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// ISO 8601 with the local offset, e.g. 2026-11-23T09:00:00+08:00: the API wants a time zone.
export function isoLocal(d) {
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return `${isoDate(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}:00${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

export function timeChoice() {
  const dayGroup = choices("radio", "day", t("time.choose"), [["today", t("time.today")], ["tomorrow", t("time.tomorrow")], ["date", t("time.date")]], "tomorrow");
  const dateInput = h("input", { type: "date", name: "date", min: isoDate(dayOffset(0)), value: isoDate(dayOffset(2)) });
  const dateField = field(t("time.date_label"), dateInput);
  const partGroup = choices("radio", "part", t("time.part"), [["morning", t("time.morning")], ["afternoon", t("time.afternoon")], ["exact", t("time.exact")]], "morning");
  const exactInput = h("input", { type: "time", name: "exact", value: "10:00", step: 300 });
  const exactField = field(t("time.exact_label"), exactInput);
  for (const group of [dayGroup, partGroup]) group.classList.add("segmented");
  const element = h("div", { class: "time-choice" }, dayGroup, dateField, partGroup, exactField);
  const picked = (name) => element.querySelector(`input[name="${name}"]:checked`)?.value;
  // Only show the date and time inputs when they matter, so the common path stays short.
  const refresh = () => {
    dateField.hidden = picked("day") !== "date";
    exactField.hidden = picked("part") !== "exact";
  };
  element.addEventListener("change", refresh);
  refresh();

  // {start, end}: end is null for an exact time (the server applies the service duration).
  function value() {
    const day = picked("day");
    const base = day === "today" ? dayOffset(0) : day === "tomorrow" ? dayOffset(1) : new Date(`${dateInput.value}T00:00`);
    const part = picked("part");
    if (part === "exact") {
      const [hh, mm] = exactInput.value.split(":").map(Number);
      const start = new Date(base);
      start.setHours(hh, mm, 0, 0);
      return { start, end: null };
    }
    const [from, to] = PARTS[part];
    const start = new Date(base);
    start.setHours(from, 0, 0, 0);
    const end = new Date(base);
    end.setHours(to, 0, 0, 0);
    // This morning's window may have begun already: start from the next five minutes.
    const soon = new Date(Date.now() + 5 * 60_000);
    return { start: start < soon ? soon : start, end };
  }
  return { element, value };
}
