// "How to pay?": the API's payment kinds, with the booker's time-bank balance beside "hours"
// so nobody picks hours they do not have.

import { choices, h } from "../dom.js";
import { t } from "../i18n.js";

const KINDS = [
  ["public", "pay.public"],
  ["hours", "pay.hours"],
  ["subsidy", "pay.subsidy"],
  ["self", "pay.self"],
  // Donated hours, for elders the district's pool serves first (the server checks who).
  ["pool", "pay.pool"],
];

// Integer minutes as words: "1 小时 30 分钟", "45 分钟", "2 小时". The ledger counts minutes,
// so no rounding ever hides a short service.
export function formatDuration(minutes) {
  const sign = minutes < 0 ? "-" : "";
  const abs = Math.abs(minutes);
  const hours = Math.floor(abs / 60);
  const rest = abs % 60;
  if (hours && rest) return sign + t("unit.duration_hm", { h: hours, m: rest });
  if (hours) return sign + t("unit.duration_h", { h: hours });
  return sign + t("unit.duration_m", { m: rest });
}

export function payChoice({ balanceMinutes = null } = {}) {
  const group = choices("radio", "payment", t("pay.choose"), KINDS.map(([value, key]) => [value, t(key)]), "public");
  group.classList.add("segmented");
  const balance = balanceMinutes === null ? null : h("p", { class: "hint", id: "pay-balance" }, t("pay.balance", { time: formatDuration(balanceMinutes) }));
  const element = h("div", { class: "pay-choice" }, group, balance);
  return { element, value: () => element.querySelector('input[name="payment"]:checked')?.value };
}
