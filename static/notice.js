// Turning failures into words, and the one place on the page where they appear.
// The notice region is a live region, so a screen reader announces a message when it appears,
// and an error never leaves the screen blank: the last good view stays under the message.

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

const SESSION_MESSAGES = {
  token_expired: "signin.expired",
  token_revoked: "signin.revoked",
  token_invalid: "signin.invalid",
  token_missing: "signin.invalid",
  account_suspended: "signin.suspended",
};

// The words for an ApiError (or anything thrown) in the current language.
export function describe(error) {
  if (!error || typeof error !== "object" || !("status" in error)) {
    return t("error.generic", { message: String(error?.message ?? error) });
  }
  if (error.network) return t("error.network");
  if (error.code === "invalid_credentials") return t("signin.wrong");
  if (error.code === "login_throttled") {
    return t("signin.throttled", { seconds: error.retryAfter ?? "?" });
  }
  if (error.code in SESSION_MESSAGES) return t(SESSION_MESSAGES[error.code]);
  if (error.status === 403 && !error.message) return t("error.forbidden");
  if (error.status >= 500) return t("error.server", { status: error.status });
  return t("error.generic", { message: error.message || error.code });
}

// Field-level problems from `details`, e.g. [{"field": "birth_year", "problem": "..."}].
export function detailLines(error) {
  const details = Array.isArray(error?.details) ? error.details : [];
  return details
    .filter((d) => d && typeof d === "object" && "problem" in d)
    .map((d) => t("error.field", { field: d.field ?? "", problem: d.problem }));
}

let region = null;

export function mountNotices(el) {
  region = el;
}

export function clearNotice() {
  if (region) region.replaceChildren();
}

export function showNotice(kind, text, lines = []) {
  if (!region) return;
  const box = h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("p", { class: "notice-text" }, text),
    lines.length ? h("ul", {}, lines.map((line) => h("li", {}, line))) : null,
    h("button", { type: "button", class: "secondary", onclick: clearNotice }, t("error.dismiss")),
  );
  replace(region, box);
}

export function showError(error) {
  showNotice("error", describe(error), detailLines(error));
}

export function showInfo(text) {
  showNotice("info", text);
}

// A message for the screen the app is about to navigate to: hash changes clear the region,
// so the router shows this one after the new screen has rendered.
let pending = null;

export function flashInfo(text) {
  pending = text;
}

export function showPending() {
  if (pending !== null) showInfo(pending);
  pending = null;
}
