// Elder records for the centre admin (register, open, assess) and the read-only record view
// shared with the elder and linked family. The server decides which sensitive fields a reader
// sees; this view shows what it is given.

import * as api from "../api.js";
import { choices, definitionList, field, h, replace, select } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError } from "../notice.js";
import { DIMENSIONS, ITEMS } from "../assessment-items.js";

// The API's priority flags (market.policy.PriorityFlag), in the order the form lists them.
const FLAGS = [
  "economic_hardship",
  "disabled",
  "very_old",
  "living_alone",
  "left_behind",
  "lost_only_child",
  "severe_disability",
  "dispersed_destitute",
];
const RECENT_KEY = "eldercare.recent_elders";
const RECENT_MAX = 20;

// The API has no "list elders" endpoint yet, so the admin's list is the records opened in this
// tab. It lives in sessionStorage: names of elders must not outlive the session on a shared PC.
function recentElders() {
  try {
    return JSON.parse(sessionStorage.getItem(RECENT_KEY) ?? "[]");
  } catch {
    return [];
  }
}

function remember(elder) {
  const others = recentElders().filter((e) => e.id !== elder.id);
  const entry = { id: elder.id, name: elder.name, level: elder.capability_level ?? null };
  sessionStorage.setItem(RECENT_KEY, JSON.stringify([entry, ...others].slice(0, RECENT_MAX)));
}

export function levelText(level) {
  return level ? t(`level.${level}`) : t("elder.level_none");
}

export async function elderListView(main) {
  const idInput = h("input", { name: "elder_id", required: true, pattern: "[0-9a-fA-F-]{36}", autocomplete: "off", spellcheck: false });
  const open = h(
    "form",
    { class: "card inline-form" },
    h("h2", {}, t("elders.open_by_id")),
    field(t("elders.id"), idInput),
    h("button", { type: "submit", class: "primary" }, t("elders.open")),
  );
  open.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/elders/${idInput.value.trim().toLowerCase()}`;
  });
  const recent = recentElders();
  replace(
    main,
    h("h1", {}, t("elders.title")),
    h("p", {}, h("a", { class: "button primary", href: "#/elders/new" }, t("elders.register"))),
    h(
      "section",
      { class: "card", "aria-labelledby": "recent-heading" },
      h("h2", { id: "recent-heading" }, t("elders.recent")),
      recent.length
        ? h(
            "ul",
            { class: "record-list" },
            recent.map((e) =>
              h("li", {}, h("a", { href: `#/elders/${e.id}` }, e.name), " ", h("span", { class: "badge" }, levelText(e.level))),
            ),
          )
        : h("p", {}, t("elders.recent_none")),
      h("p", { class: "hint" }, t("elders.recent_note")),
    ),
    open,
  );
}

async function districtOptions(user) {
  // Admins may register elders anywhere below their own district.
  const { districts } = await api.get("/api/v1/districts");
  const below = new Set([user.district_id]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const d of districts) {
      if (d.parent_id && below.has(d.parent_id) && !below.has(d.id)) {
        below.add(d.id);
        grew = true;
      }
    }
  }
  return districts.filter((d) => below.has(d.id)).map((d) => [d.id, `${d.name} (${d.code})`]);
}

function numberOrNull(value) {
  return value.trim() === "" ? null : Number(value);
}

export async function registerElderView(main, user) {
  const options = await districtOptions(user);
  const input = (name, attrs = {}) => h("input", { name, ...attrs });
  const name = input("name", { required: true, maxlength: 100, autocomplete: "off" });
  const district = select("district_id", options, options.at(-1)?.[0]);
  const birthYear = input("birth_year", { type: "number", min: 1900, max: 2100, required: true, inputmode: "numeric" });
  const latitude = input("latitude", { type: "number", step: "any", min: -90, max: 90, required: true });
  const longitude = input("longitude", { type: "number", step: "any", min: -180, max: 180, required: true });
  const phone = input("phone", { type: "tel", autocomplete: "off" });
  const password = input("password", { type: "password", autocomplete: "new-password" });
  const idNumber = input("id_number", { autocomplete: "off" });
  const address = h("textarea", { name: "address", rows: 2 });
  const health = h("textarea", { name: "health_notes", rows: 3 });
  const guardian = input("guardian_name", { autocomplete: "off" });
  const consent = h("input", { type: "checkbox", name: "consent", id: "consent" });
  const submit = h("button", { type: "submit", class: "primary" }, t("register.submit"));

  const form = h(
    "form",
    { class: "card", novalidate: true },
    field(t("register.name"), name),
    field(t("register.district"), district),
    field(t("register.birth_year"), birthYear),
    choices("radio", "gender", t("register.gender"), ["female", "male", "other"].map((g) => [g, t(`gender.${g}`)]), "female"),
    h(
      "fieldset",
      { class: "pair" },
      h("legend", {}, t("elder.location")),
      h("p", { class: "hint" }, t("register.location_hint")),
      field(t("register.latitude"), latitude),
      field(t("register.longitude"), longitude),
    ),
    choices("checkbox", "flags", t("register.flags"), FLAGS.map((f) => [f, t(`flag.${f}`)])),
    choices("radio", "gender_pref", t("register.gender_pref"), ["any", "female", "male"].map((g) => [g, t(`gender.${g}`)]), "any"),
    field(t("register.phone"), phone),
    field(t("register.password"), password),
    field(t("register.id_number"), idNumber),
    field(t("register.address"), address),
    field(t("register.health_notes"), health),
    h("div", { class: "choice consent" }, consent, h("label", { for: "consent" }, t("register.consent"))),
    choices("radio", "consent_by", t("register.consent_by"), [["elder", t("consent.elder")], ["guardian", t("consent.guardian")]], "elder"),
    field(t("register.guardian_name"), guardian),
    submit,
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {
      name: name.value.trim(),
      district_id: district.value,
      birth_year: numberOrNull(birthYear.value),
      gender: data.get("gender"),
      latitude: numberOrNull(latitude.value),
      longitude: numberOrNull(longitude.value),
      flags: data.getAll("flags"),
      preferences: { helper_gender_for_intimate_care: data.get("gender_pref"), language: "zh" },
    };
    // Optional fields are left out rather than sent empty, so the server's checks stay exact.
    for (const [key, el] of [["phone", phone], ["password", password], ["id_number", idNumber], ["address", address], ["health_notes", health]]) {
      if (el.value.trim()) body[key] = key === "password" ? el.value : el.value.trim();
    }
    if (consent.checked) {
      const by = data.get("consent_by");
      const record = { purpose: "care_services", given_by: by };
      if (by === "guardian" && guardian.value.trim()) record.guardian_name = guardian.value.trim();
      body.consents = [record];
    }
    submit.disabled = true;
    try {
      const { elder } = await api.post("/api/v1/elders", body);
      remember(elder);
      flashInfo(t("register.done", { name: elder.name }));
      location.hash = `#/elders/${elder.id}`;
    } catch (error) {
      showError(error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h("h1", {}, t("register.title")), form);
}

function assessmentRow(a) {
  return h(
    "li",
    { class: "card" },
    definitionList([
      [t("elder.assessed_on"), a.assessed_on],
      [t("elder.total"), `${a.total} / 90`],
      [t("elder.preliminary"), levelText(a.preliminary_level)],
      [t("elder.final"), h("strong", {}, levelText(a.final_level))],
      [t("elder.reassess"), a.reassessment_due],
      [t("elder.assessors"), a.assessors.join("、")],
      [t("elder.informant"), a.informant],
      [t("elder.reasons"), h("ul", {}, a.reasons.map((r) => h("li", {}, r)))],
    ]),
  );
}

export async function elderRecordView(main, user, elderId) {
  const id = elderId.toLowerCase();
  const [{ elder }, { assessments }] = await Promise.all([
    api.get(`/api/v1/elders/${id}`),
    api.get(`/api/v1/elders/${id}/assessments`),
  ]);
  if (user.role === "centre_admin") remember(elder);
  const sensitive = Object.entries(elder.sensitive ?? {}).filter(([, value]) => value !== null);
  const flags = elder.flags.length ? h("ul", { class: "tags" }, elder.flags.map((f) => h("li", {}, t(`flag.${f}`)))) : t("elder.flags_none");
  replace(
    main,
    h("h1", {}, t("elder.title", { name: elder.name })),
    h(
      "section",
      { class: "card" },
      h("p", { class: "grade" }, h("span", {}, t("elder.level")), " ", h("strong", { class: `level level-${elder.capability_level ?? "none"}` }, levelText(elder.capability_level))),
      definitionList([
        [t("elder.id"), h("code", {}, elder.id)],
        [t("elder.birth_year"), elder.birth_year],
        [t("elder.gender"), t(`gender.${elder.gender}`)],
        [t("elder.flags"), flags],
        [t("register.gender_pref"), t(`gender.${elder.preferences?.helper_gender_for_intimate_care ?? "any"}`)],
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "sensitive-heading" },
      h("h2", { id: "sensitive-heading" }, t("elder.sensitive")),
      sensitive.length ? definitionList(sensitive.map(([key, value]) => [t(`elder.${key}`), value])) : h("p", {}, t("elder.sensitive_none")),
    ),
    h(
      "section",
      { "aria-labelledby": "assessments-heading" },
      h("h2", { id: "assessments-heading" }, t("elder.assessments")),
      user.role === "centre_admin"
        ? h("p", { class: "button-row" }, h("a", { class: "button primary", href: `#/elders/${id}/assess` }, t("elder.assess")), h("a", { class: "button secondary", href: `#/elders/${id}/book` }, t("elder.book")), h("a", { class: "button secondary", href: `#/elders/${id}/series` }, t("elder.series")))
        : null,
      assessments.length ? h("ol", { class: "plain" }, assessments.map(assessmentRow)) : h("p", {}, t("elder.assessments_none")),
    ),
  );
}

export async function assessmentView(main, user, elderId) {
  const id = elderId.toLowerCase();
  const { elder } = await api.get(`/api/v1/elders/${id}`);
  const scores = new Map();
  const total = h("p", { class: "total", "aria-live": "polite" });
  const updateTotal = () => {
    let sum = 0;
    for (const el of scores.values()) sum += Number(el.value) || 0;
    total.textContent = t("assess.total", { total: sum });
  };
  const sections = DIMENSIONS.map((dimension) =>
    h(
      "fieldset",
      { class: "dimension" },
      h("legend", {}, t(`assess.dimension.${dimension}`)),
      ITEMS.filter(([, d]) => d === dimension).map(([code, , max]) => {
        // A select keeps the score inside 0..max without typing; large and easy to tap.
        const el = select(`item_${code}`, Array.from({ length: max + 1 }, (_, n) => [String(n), String(n)]), String(max));
        el.addEventListener("change", updateTotal);
        scores.set(code, el);
        return field(`${t(`item.${code}`)}${t("assess.max", { max })}`, el);
      }),
    ),
  );
  updateTotal();
  const text = (name) => h("input", { name, required: true, maxlength: 100, autocomplete: "off" });
  const assessor1 = text("assessor_1");
  const assessor2 = text("assessor_2");
  const informant = text("informant");
  const today = new Date();
  const assessedOn = h("input", { name: "assessed_on", type: "date", required: true, value: localDate(today) });
  const coma = h("input", { type: "checkbox", name: "coma", id: "coma" });
  const dementia = h("input", { type: "checkbox", name: "dementia", id: "dementia" });
  const riskEvents = h("input", { name: "risk_events_30d", type: "number", min: 0, max: 100, value: "0", inputmode: "numeric" });
  const submit = h("button", { type: "submit", class: "primary" }, t("assess.submit"));
  const form = h(
    "form",
    { class: "card", novalidate: true },
    h("p", {}, t("assess.intro")),
    sections,
    total,
    h("div", { class: "choice" }, coma, h("label", { for: "coma" }, t("assess.coma"))),
    h("div", { class: "choice" }, dementia, h("label", { for: "dementia" }, t("assess.dementia"))),
    field(t("assess.risk_events"), riskEvents),
    field(t("assess.assessor_1"), assessor1),
    field(t("assess.assessor_2"), assessor2),
    field(t("assess.informant"), informant),
    field(t("assess.assessed_on"), assessedOn),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      item_scores: Object.fromEntries([...scores].map(([code, el]) => [code, Number(el.value)])),
      assessor_1: assessor1.value.trim(),
      assessor_2: assessor2.value.trim(),
      informant: informant.value.trim(),
      assessed_on: assessedOn.value,
      coma: coma.checked,
      dementia_or_mental_disorder: dementia.checked,
      risk_events_30d: Number.parseInt(riskEvents.value || "0", 10),
    };
    submit.disabled = true;
    try {
      const { assessment } = await api.post(`/api/v1/elders/${id}/assessments`, body);
      flashInfo(t("assess.done", { level: levelText(assessment.final_level), total: assessment.total }));
      location.hash = `#/elders/${id}`;
    } catch (error) {
      showError(error);
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, h("h1", {}, t("assess.title")), h("p", { class: "lead" }, elder.name), form);
}

function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
