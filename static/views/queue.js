// The centre's queue of what needs a human: escalated requests nobody took, disputes, and
// requests still waiting for a match. It reloads on every booking event of the district, so
// two admins see each other's decisions at once.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { showError } from "../notice.js";
import { onScreen } from "../live.js";
import { bookingSummary } from "./bookings.js";

const SECTIONS = [
  ["escalated", "queue.escalated"],
  ["disputed", "queue.disputed"],
  ["requested", "queue.waiting"],
];

export async function queueView(main) {
  const body = h("div");
  const reload = async () => {
    const lists = await Promise.all(SECTIONS.map(([state]) => api.get(`/api/v1/bookings?state=${state}`)));
    replace(
      body,
      SECTIONS.map(([state, key], i) => {
        const { bookings } = lists[i];
        return h(
          "section",
          { class: "queue-section", dataset: { queue: state }, "aria-labelledby": `queue-${state}` },
          h("h2", { id: `queue-${state}` }, `${t(key)} (${bookings.length})`),
          bookings.length ? h("ul", { class: "plain" }, bookings.map(bookingSummary)) : h("p", {}, t("queue.empty")),
        );
      }),
    );
  };
  onScreen({ event: (e) => e.kind.startsWith("booking.") && reload().catch(showError), reload: () => reload().catch(showError) });
  replace(main, h("h1", {}, t("nav.queue")), body);
  await reload();
}
