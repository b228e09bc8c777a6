// A helper's open offers: what, when, how far, and how long is left to accept. Accept takes
// one tap; the first helper to accept wins, so a lost race is explained, not shown as a fault.

import * as api from "../api.js";
import { definitionList, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError, showInfo } from "../notice.js";
import { onScreen } from "../live.js";
import { countdown } from "../components/countdown.js";
import { when } from "./bookings.js";

function offerCard(offer, reload) {
  const accept = h("button", { type: "button", class: "primary big" }, t("offer.accept"));
  const decline = h("button", { type: "button", class: "secondary big" }, t("offer.decline"));
  accept.addEventListener("click", async () => {
    accept.disabled = true;
    try {
      const { booking } = await api.post(`/api/v1/offers/${offer.id}/accept`);
      flashInfo(t("offer.accepted"));
      location.hash = `#/bookings/${booking.id}`;
    } catch (error) {
      if (error.code === "offer.taken") showInfo(t("offer.taken"));
      else showError(error);
      await reload();
    }
  });
  decline.addEventListener("click", async () => {
    decline.disabled = true;
    try {
      await api.post(`/api/v1/offers/${offer.id}/decline`, { reason: "" });
      showInfo(t("offer.declined"));
      await reload();
    } catch (error) {
      showError(error);
      decline.disabled = false;
    }
  });
  const booking = offer.booking ?? {};
  return h(
    "li",
    { class: "card offer-card", dataset: { offer: offer.id, booking: offer.booking_id } },
    h("h2", {}, `${booking.emergency ? "⚠ " : ""}${t(`service.${booking.service}`)}`),
    definitionList([
      [t("booking.when"), booking.window_start ? when(booking) : ""],
      [t("offer.travel"), t("policy.minutes", { minutes: offer.travel_minutes })],
      booking.notes ? [t("book.notes"), booking.notes] : null,
    ]),
    countdown(offer.deadline, { onExpire: () => (accept.disabled = true) }),
    h("div", { class: "button-row" }, accept, decline),
  );
}

export async function offersView(main) {
  const list = h("div");
  const reload = async () => {
    const { offers } = await api.get("/api/v1/offers");
    replace(list, offers.length ? h("ul", { class: "plain" }, offers.map((offer) => offerCard(offer, reload))) : h("p", {}, t("offer.none")));
  };
  onScreen({ event: (e) => e.kind.startsWith("offer.") && reload().catch(showError), reload: () => reload().catch(showError) });
  replace(main, h("h1", {}, t("nav.offers")), list);
  await reload();
}
