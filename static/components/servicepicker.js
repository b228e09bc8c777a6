// One large button per service and a separate, red emergency button. The buttons act as a
// single-choice group (aria-pressed), so a screen reader says which service is chosen.

import { h } from "../dom.js";
import { t } from "../i18n.js";

export const SERVICES = ["meal", "bathing", "cleaning", "escort", "medical", "visit"];

export function servicePicker({ onChange, onEmergency, available = SERVICES }) {
  let chosen = null;
  const buttons = new Map();
  const pick = (code) => {
    chosen = code;
    for (const [c, button] of buttons) button.setAttribute("aria-pressed", String(c === code));
    onChange?.(code);
  };
  const grid = h(
    "ul",
    { class: "service-grid" },
    SERVICES.filter((code) => available.includes(code)).map((code) => {
      const button = h("button", { type: "button", class: "secondary", "aria-pressed": "false", dataset: { service: code }, onclick: () => pick(code) }, t(`service.${code}`));
      buttons.set(code, button);
      return h("li", {}, button);
    }),
  );
  const hintId = "emergency-hint";
  const element = h(
    "fieldset",
    { class: "service-picker" },
    h("legend", {}, t("service.choose")),
    grid,
    onEmergency
      ? [
          h("button", { type: "button", class: "emergency", "aria-describedby": hintId, onclick: onEmergency }, t("service.emergency")),
          h("p", { class: "emergency-hint", id: hintId }, t("service.emergency_hint")),
        ]
      : null,
  );
  return { element, value: () => chosen };
}
