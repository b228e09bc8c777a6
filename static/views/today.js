// A helper's jobs for today, in order, each with directions from where the helper stands
// (straight-line distance, compass direction, walking minutes) and the step to take next
// (set off, check in, check out). The elder's address is not shown: the API gives helpers the
// booking's position only, which is where check-in is compared; the phone's map app can open it.

import * as api from "../api.js";
import { definitionList, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError, showPending } from "../notice.js";
import { onScreen } from "../live.js";
import { helperActions, stateBadge, when } from "./bookings.js";

const STATES = ["accepted", "en_route", "in_service"];
const EARTH_KM = 6371.0088;
// An unhurried walk in a neighbourhood, and a detour factor for streets that are not straight.
const WALK_KM_PER_HOUR = 4.5;
const DETOUR = 1.3;
const COMPASS = ["n", "ne", "e", "se", "s", "sw", "w", "nw"];

const rad = (deg) => (deg * Math.PI) / 180;

export function distanceKm(from, to) {
  const dLat = rad(to.latitude - from.latitude);
  const dLon = rad(to.longitude - from.longitude);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(rad(from.latitude)) * Math.cos(rad(to.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(a)));
}

// The initial bearing from `from` to `to`, as one of eight compass points.
export function compassPoint(from, to) {
  const y = Math.sin(rad(to.longitude - from.longitude)) * Math.cos(rad(to.latitude));
  const x = Math.cos(rad(from.latitude)) * Math.sin(rad(to.latitude)) - Math.sin(rad(from.latitude)) * Math.cos(rad(to.latitude)) * Math.cos(rad(to.longitude - from.longitude));
  const bearing = ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
  return COMPASS[Math.round(bearing / 45) % 8];
}

export function walkingMinutes(km) {
  return Math.max(1, Math.round(((km * DETOUR) / WALK_KM_PER_HOUR) * 60));
}

// The directions sentence for one job, e.g. "东北方向 1.2 公里，步行约 21 分钟".
export function directions(from, to) {
  const km = distanceKm(from, to);
  if (km < 0.05) return t("today.here");
  const distance = km < 1 ? t("today.metres", { m: Math.round(km * 1000 / 10) * 10 }) : t("today.km", { km: km.toFixed(1) });
  return t("today.directions", { dir: t(`compass.${compassPoint(from, to)}`), distance, minutes: walkingMinutes(km) });
}

function here() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) {
      resolve(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: 8000, maximumAge: 60_000 },
    );
  });
}

function isToday(booking) {
  const start = new Date(booking.window_start);
  const now = new Date();
  return start.getFullYear() === now.getFullYear() && start.getMonth() === now.getMonth() && start.getDate() === now.getDate();
}

// `position`: undefined while the phone is still asked, null when it cannot say.
function jobCard(booking, position, act) {
  const place = booking.location;
  const route = position ? directions(position, place) : t(position === undefined ? "today.locating" : "today.no_position");
  return h(
    "li",
    { class: "card job-card", dataset: { booking: booking.id } },
    h("h2", {}, h("a", { href: `#/bookings/${booking.id}` }, `${booking.emergency ? "⚠ " : ""}${t(`service.${booking.service}`)}`), " ", stateBadge(booking.state)),
    definitionList([
      [t("booking.when"), when(booking)],
      [t("today.route"), h("strong", { class: "directions" }, route)],
      [t("today.place"), h("span", {}, t("today.coordinates", { lat: place.latitude.toFixed(5), lon: place.longitude.toFixed(5) }), " ", h("a", { href: `geo:${place.latitude},${place.longitude}` }, t("today.open_map")))],
      [t("today.address"), t("today.address_private")],
      booking.notes ? [t("book.notes"), booking.notes] : null,
    ]),
    h("div", { class: "actions" }, helperActions(booking, (path, body, doneKey) => act(booking.id, path, body, doneKey))),
  );
}

export async function todayView(main) {
  const list = h("div");
  const where = h("p", { class: "hint", role: "status" });
  let position;
  const reload = async () => {
    const pages = await Promise.all(STATES.map((state) => api.get(`/api/v1/bookings?state=${state}&limit=500`)));
    // Today's by window; one already in service stays on the list until it is checked out.
    const jobs = pages
      .flatMap((page) => page.bookings)
      .filter((b) => isToday(b) || b.state === "in_service")
      .sort((a, b) => a.window_start.localeCompare(b.window_start));
    const act = async (id, path, body, doneKey) => {
      await api.post(`/api/v1/bookings/${id}/${path}`, body);
      flashInfo(t(doneKey));
      await reload();
      showPending();
    };
    replace(list, jobs.length ? h("ul", { class: "plain" }, jobs.map((b) => jobCard(b, position, act))) : h("p", {}, t("today.none")));
  };
  onScreen({ event: (e) => e.kind === "booking.state" && reload().catch(showError), reload: () => reload().catch(showError) });
  replace(main, h("h1", {}, t("nav.today")), where, list);
  where.textContent = t("today.locating");
  await reload();
  // Directions follow once the phone says where the helper is; the jobs show before that.
  here()
    .then(async (found) => {
      position = found;
      where.textContent = position ? t("today.from_here") : t("today.no_position");
      await reload();
    })
    .catch(showError);
}
