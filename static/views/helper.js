// A volunteer's or provider staff member's own profile: skills, travel radius, daily capacity,
// weekly availability and certificates. Matching reads exactly these fields.

import * as api from "../api.js";
import { choices, definitionList, field, h, replace, select } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError, showPending } from "../notice.js";

const SERVICES = ["meal", "bathing", "cleaning", "escort", "medical", "visit", "emergency"];
// The API's certificate kinds (market.policy.CertificateKind).
const CERTIFICATES = ["caregiver", "nurse", "bathing", "first_aid", "food_health"];
const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];

function slotRow(slot, remove) {
  const weekday = select("weekday", WEEKDAYS.map((d) => [String(d), t(`weekday.${d}`)]), String(slot.weekday));
  const start = h("input", { type: "time", name: "start", value: slot.start, required: true });
  const end = h("input", { type: "time", name: "end", value: slot.end, required: true });
  const row = h(
    "li",
    { class: "slot" },
    field(t("helper.weekday"), weekday),
    field(t("helper.start"), start),
    field(t("helper.end"), end),
    h("button", { type: "button", class: "secondary", onclick: () => remove(row) }, t("helper.remove_slot")),
  );
  row.read = () => ({ weekday: Number(weekday.value), start: start.value, end: end.value });
  return row;
}

export async function helperProfileView(main, user) {
  const { helper } = await api.get(`/api/v1/helpers/${user.id}`);
  const radius = h("input", { type: "number", name: "radius_minutes", min: 5, max: 60, value: helper.radius_minutes, inputmode: "numeric" });
  const capacity = h("input", { type: "number", name: "capacity_per_day", min: 1, max: 12, value: helper.capacity_per_day, inputmode: "numeric" });
  const slots = h("ul", { class: "plain slots" });
  const removeRow = (row) => row.remove();
  for (const slot of helper.availability ?? []) slots.append(slotRow(slot, removeRow));
  const addSlot = h("button", { type: "button", class: "secondary", onclick: () => slots.append(slotRow({ weekday: 0, start: "09:00", end: "12:00" }, removeRow)) }, t("helper.add_slot"));
  const skills = choices("checkbox", "skills", t("helper.skills"), SERVICES.map((s) => [s, t(`service.${s}`)]), helper.skills);

  const profile = h(
    "form",
    { class: "card" },
    definitionList([
      [t("helpers.vetting"), h("strong", {}, t(`helpers.vetting.${helper.vetting_status}`))],
      [t("helpers.rating"), helper.rating ?? t("helpers.rating_none")],
    ]),
    skills,
    field(t("helper.radius"), radius),
    field(t("helper.capacity"), capacity),
    h("fieldset", {}, h("legend", {}, t("helper.availability")), slots, addSlot),
    h("button", { type: "submit", class: "primary" }, t("helper.save")),
  );
  profile.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      skills: new FormData(profile).getAll("skills"),
      radius_minutes: Number(radius.value),
      capacity_per_day: Number(capacity.value),
      availability: [...slots.children].map((row) => row.read()),
    };
    try {
      await api.post("/api/v1/helpers/me", body);
      flashInfo(t("helper.saved"));
      await helperProfileView(main, user);
      showPending();
    } catch (error) {
      showError(error);
    }
  });

  const kind = select("kind", CERTIFICATES.map((c) => [c, t(`cert.${c}`)]), "first_aid");
  const number = h("input", { name: "number", required: true, minlength: 3, maxlength: 64, autocomplete: "off" });
  const expires = h("input", { type: "date", name: "expires_on", required: true });
  const certificateForm = h(
    "form",
    { class: "card" },
    h("h2", {}, t("helpers.certificates")),
    (helper.certificates ?? []).length
      ? h(
          "ul",
          { class: "record-list" },
          helper.certificates.map((c) =>
            h("li", {}, `${t(`cert.${c.kind}`)} · ${t("helpers.cert_expires", { date: c.expires_on })} · `, h("span", { class: c.verified ? "badge ok" : "badge" }, t(c.verified ? "helpers.cert_verified" : "helpers.cert_unverified"))),
          ),
        )
      : h("p", {}, t("helpers.certificates_none")),
    h("h3", {}, t("helper.add_cert")),
    field(t("helper.cert_kind"), kind),
    field(t("helper.cert_number"), number),
    field(t("helper.cert_expires"), expires),
    h("button", { type: "submit", class: "primary" }, t("helper.add_cert")),
  );
  certificateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.post("/api/v1/certificates", { kind: kind.value, number: number.value.trim(), expires_on: expires.value });
      flashInfo(t("helper.cert_added"));
      await helperProfileView(main, user);
      showPending();
    } catch (error) {
      showError(error);
    }
  });

  replace(main, h("h1", {}, t("helper.title")), profile, certificateForm);
}
