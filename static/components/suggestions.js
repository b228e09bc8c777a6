// The matcher's best helpers for a booking the centre may dispatch, each a one-click dispatch.
// The list comes from GET /api/v1/bookings/{id}/suggestions, which applies the matching loop's
// refusals, so every button offers the booking to someone who may take it; the helper still
// accepts on their phone, and the elder's side sees it live.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { showError } from "../notice.js";

function suggestionItem(bookingId, helper, onDispatched) {
  const button = h("button", { type: "button", class: "primary", dataset: { helper: helper.helper_id } }, t("suggest.dispatch", { name: helper.name }));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api.post(`/api/v1/bookings/${bookingId}/dispatch`, {
        helper_id: helper.helper_id,
        reason: t("suggest.reason", { name: helper.name }),
      });
      await onDispatched(result.booking, helper);
    } catch (error) {
      showError(error);
      button.disabled = false;
    }
  });
  const facts = [
    t(`helpers.kind.${helper.kind}`),
    t("suggest.travel", { minutes: helper.travel_minutes }),
    helper.rating === null ? t("helpers.rating_none") : t("suggest.rating", { rating: helper.rating }),
  ];
  return h("li", { class: "suggestion" }, h("span", { class: "suggestion-name" }, helper.name), h("span", { class: "hint" }, facts.join(" · ")), button);
}

// An element that shows the suggestions once `load()` ran; `onDispatched(booking, helper)` runs
// after a successful dispatch.
export function suggestionList(bookingId, { onDispatched, limit = 3 }) {
  const headingId = `suggest-${bookingId}`;
  const body = h("div", {}, h("p", { class: "loading" }, t("app.loading")));
  const element = h("section", { class: "suggestions", "aria-labelledby": headingId }, h("h3", { id: headingId }, t("suggest.title")), body);
  async function load() {
    const found = await api.get(`/api/v1/bookings/${bookingId}/suggestions?limit=${limit}`);
    if (!found.window_open) {
      replace(body, h("p", {}, t("suggest.window_closed")));
    } else if (!found.suggestions.length) {
      replace(body, h("p", {}, t("suggest.none")));
    } else {
      replace(body, h("ul", { class: "plain suggestion-list" }, found.suggestions.map((helper) => suggestionItem(bookingId, helper, onDispatched))));
    }
    return found;
  }
  return { element, load };
}
