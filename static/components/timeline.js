// The booking's progress for the elder side: offered, accepted (with the helper's name and a
// photo placeholder), on the way, arrived, finished. It is redrawn from the booking's state,
// so the same code serves the first load, an HTTP reload and a live event.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";

const STEPS = ["offered", "accepted", "en_route", "in_service", "completed"];
// Later states still show the whole path as done.
const RANK = { requested: -1, offered: 0, accepted: 1, en_route: 2, in_service: 3, completed: 4, confirmed: 5, settled: 5, rated: 5 };

export function statusTimeline() {
  const list = h("ol", { class: "timeline", "aria-live": "polite" });
  const element = h("section", { class: "card", "aria-labelledby": "timeline-heading" }, h("h2", { id: "timeline-heading" }, t("status.timeline")), list);

  function update(booking, helperName = null) {
    const rank = RANK[booking.state] ?? -1;
    replace(
      list,
      STEPS.map((step, i) => {
        const state = i < rank || (rank >= 4 && i === 4) ? "done" : i === rank ? "current" : "pending";
        // The API names the helper to the elder's side and the centre; "your helper" stands
        // in for anyone else, and for a helper whose account has no name.
        const name = helperName ?? t("status.helper_unnamed_short");
        const helper = step === "accepted" && i <= rank && booking.helper_id
          ? h(
              "div",
              { class: "helper-card" },
              // No photos are stored yet: the initial stands in, labelled for screen readers.
              h("span", { class: "photo", role: "img", "aria-label": t("status.helper_photo", { name }) }, name.slice(0, 1)),
              h("span", { class: "helper-name" }, helperName ? t("status.helper", { name }) : t("status.helper_unnamed")),
            )
          : null;
        return h(
          "li",
          { class: state, dataset: { step }, "aria-current": state === "current" ? "step" : null },
          h("span", { class: "step-name" }, t(`status.${step}`)),
          h("span", { class: "step-state" }, t(`status.${state === "done" ? "done" : state === "current" ? "current" : "pending"}`)),
          helper,
        );
      }),
    );
    element.dataset.state = booking.state;
  }
  return { element, update };
}
