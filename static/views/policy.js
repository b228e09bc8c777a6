// The district policy in force, readable by anyone: time-bank limits, visit tiers and the rules
// per service. Values keep the server's units; minutes are also shown in hours where helpful.

import * as api from "../api.js";
import { definitionList, field, h, replace, select } from "../dom.js";
import { t } from "../i18n.js";

const yesNo = (value) => t(value ? "policy.yes" : "policy.no");

// Policy keys are stable identifiers; shown as words with the underscores removed. Units are
// read off the key's suffix so a new policy field still displays sensibly.
function value(key, raw) {
  if (raw === null || raw === undefined) return t("policy.none");
  if (typeof raw === "boolean") return yesNo(raw);
  if (typeof raw === "number" && key.endsWith("_minutes")) {
    return raw >= 60 && raw % 60 === 0 ? `${t("policy.minutes", { minutes: raw })} (${t("policy.hours", { hours: raw / 60 })})` : t("policy.minutes", { minutes: raw });
  }
  if (typeof raw === "number" && key.endsWith("_days")) return t("policy.days", { days: raw });
  if (Array.isArray(raw)) {
    if (raw.length === 0) return t("policy.none");
    if (raw.every((item) => typeof item !== "object")) return raw.map((item) => label(item)).join("、");
    return h("ul", {}, raw.map((item) => h("li", {}, typeof item === "object" ? nested(item) : label(item))));
  }
  if (typeof raw === "object") {
    if ("numerator" in raw && "denominator" in raw) return `${raw.numerator} / ${raw.denominator}`;
    return nested(raw);
  }
  return label(raw);
}

// Known codes (services, flags, levels) in the reader's language; anything else as written.
function label(code) {
  for (const prefix of ["service", "flag", "level", "role", "relation", "cert"]) {
    const text = t(`${prefix}.${code}`);
    if (text !== `${prefix}.${code}`) return text;
  }
  return String(code).replaceAll("_", " ");
}

function nested(obj) {
  return definitionList(Object.entries(obj).map(([key, raw]) => [key.replaceAll("_", " "), value(key, raw)]));
}

function servicesTable(services) {
  const columns = [...new Set(Object.values(services).flatMap((rules) => Object.keys(rules)))];
  return h(
    "div",
    { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("policy.services") },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, ""), columns.map((c) => h("th", { scope: "col" }, c.replaceAll("_", " "))))),
      h(
        "tbody",
        {},
        Object.entries(services).map(([code, rules]) =>
          h("tr", {}, h("th", { scope: "row" }, label(code)), columns.map((c) => h("td", {}, value(c, rules[c])))),
        ),
      ),
    ),
  );
}

function policySections(policy) {
  const sections = [];
  for (const [key, part] of Object.entries(policy)) {
    const heading = t(`policy.${key}`) !== `policy.${key}` ? t(`policy.${key}`) : key.replaceAll("_", " ");
    const body = key === "services" ? servicesTable(part) : value(key, part);
    sections.push(h("section", { class: "card" }, h("h2", {}, heading), body));
  }
  return sections;
}

export async function policyView(main, user) {
  const { districts } = await api.get("/api/v1/districts");
  const chooser = select(
    "district",
    districts.map((d) => [d.id, `${d.name} (${d.code})`]),
    user.district_id,
  );
  const slot = h("div");
  const show = async () => {
    const { version, policy } = await api.get(`/api/v1/districts/${chooser.value}/policy`);
    replace(slot, h("p", { class: "lead" }, t("policy.version", { version })), policySections(policy));
  };
  const form = h("form", { class: "card inline-form" }, field(t("policy.district"), chooser), h("button", { type: "submit", class: "primary" }, t("policy.show")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await show();
  });
  replace(main, h("h1", {}, t("policy.title")), form, slot);
  await show();
}
