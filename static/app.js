// The shell: header (who am I, language, sign out), the notice region, and a hash router that
// only offers the screens the signed-in role may use. Each screen is a module exporting
// functions that render into <main>; a screen whose API does not exist is simply not listed.

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { applyDocumentLang, lang, onLangChange, setLang, t } from "./i18n.js";
import { clearNotice, describe, mountNotices, showError, showPending } from "./notice.js";
import { signInView } from "./views/signin.js";
import { elderListView, elderRecordView, registerElderView, assessmentView } from "./views/elders.js";
import { helperVettingView } from "./views/vetting.js";
import { policyView } from "./views/policy.js";
import { familyView } from "./views/family.js";
import { helperProfileView } from "./views/helper.js";
import { bookView } from "./views/book.js";
import { bookingListView, bookingView } from "./views/bookings.js";
import { offersView } from "./views/offers.js";
import { hoursView } from "./views/hours.js";
import { queueView } from "./views/queue.js";
import { ledgerView } from "./views/ledger.js";
import { dashboardView } from "./views/dashboard.js";
import { todayView } from "./views/today.js";
import { seriesView } from "./views/series.js";
import { leaveScreen, live } from "./live.js";

const UUID = "([0-9a-fA-F-]{36})";

// Menu entries per role; the first one is the role's home screen.
const MENUS = {
  centre_admin: [
    ["#/queue", "nav.queue"],
    ["#/bookings", "nav.bookings"],
    ["#/elders", "nav.elders"],
    ["#/helpers", "nav.helpers"],
    ["#/ledger", "nav.ledger"],
    ["#/dashboard", "nav.dashboard"],
    ["#/policy", "nav.policy"],
  ],
  elder: [
    ["#/book", "nav.book"],
    ["#/bookings", "nav.bookings"],
    ["#/series", "nav.series"],
    ["#/hours", "nav.hours"],
    ["#/me", "nav.me"],
    ["#/family", "nav.family"],
  ],
  family: [
    ["#/book", "nav.book"],
    ["#/bookings", "nav.bookings"],
    ["#/series", "nav.series"],
    ["#/hours", "nav.hours"],
    ["#/family", "nav.family"],
  ],
  volunteer: [
    ["#/offers", "nav.offers"],
    ["#/today", "nav.today"],
    ["#/bookings", "nav.jobs"],
    ["#/hours", "nav.hours"],
    ["#/helper", "nav.helper_profile"],
  ],
  provider_staff: [
    ["#/offers", "nav.offers"],
    ["#/today", "nav.today"],
    ["#/bookings", "nav.jobs"],
    ["#/helper", "nav.helper_profile"],
  ],
  auditor: [
    ["#/ledger", "nav.ledger"],
    ["#/policy", "nav.policy"],
  ],
};

const ROUTES = [
  { path: /^#\/elders$/, roles: ["centre_admin"], view: elderListView },
  { path: /^#\/elders\/new$/, roles: ["centre_admin"], view: registerElderView },
  { path: new RegExp(`^#/elders/${UUID}$`), roles: ["centre_admin", "family", "elder"], view: elderRecordView },
  { path: new RegExp(`^#/elders/${UUID}/assess$`), roles: ["centre_admin"], view: assessmentView },
  { path: /^#\/helpers(?:\/([0-9a-fA-F-]{36}))?$/, roles: ["centre_admin"], view: helperVettingView },
  { path: /^#\/policy$/, roles: null, view: policyView },
  { path: /^#\/me$/, roles: ["elder"], view: (main, user) => elderRecordView(main, user, user.id) },
  { path: /^#\/family$/, roles: ["elder", "family"], view: familyView },
  { path: /^#\/helper$/, roles: ["volunteer", "provider_staff"], view: helperProfileView },
  { path: /^#\/book$/, roles: ["elder", "family"], view: bookView },
  { path: new RegExp(`^#/elders/${UUID}/book$`), roles: ["centre_admin"], view: bookView },
  { path: /^#\/bookings$/, roles: ["elder", "family", "volunteer", "provider_staff", "centre_admin"], view: bookingListView },
  { path: new RegExp(`^#/bookings/${UUID}$`), roles: ["elder", "family", "volunteer", "provider_staff", "centre_admin"], view: bookingView },
  { path: /^#\/offers$/, roles: ["volunteer", "provider_staff"], view: offersView },
  { path: /^#\/today$/, roles: ["volunteer", "provider_staff"], view: todayView },
  { path: /^#\/series$/, roles: ["elder", "family"], view: seriesView },
  { path: new RegExp(`^#/elders/${UUID}/series$`), roles: ["centre_admin"], view: seriesView },
  { path: /^#\/hours$/, roles: ["elder", "family", "volunteer"], view: hoursView },
  { path: /^#\/queue$/, roles: ["centre_admin"], view: queueView },
  { path: /^#\/ledger$/, roles: ["centre_admin", "auditor"], view: ledgerView },
  { path: /^#\/dashboard$/, roles: ["centre_admin"], view: dashboardView },
];

const header = document.getElementById("header-session");
const nav = document.getElementById("nav");
const main = document.getElementById("main");
const langButton = document.getElementById("lang-switch");

function renderLangButton() {
  langButton.textContent = t("lang.switch");
  langButton.lang = lang() === "zh" ? "en" : "zh-CN";
  document.getElementById("app-title").textContent = t("app.title");
  document.getElementById("skip-link").textContent = t("app.skip");
  nav.setAttribute("aria-label", t("app.nav"));
}

// Says whether live updates are flowing; polite, so a reconnect is announced once, quietly.
const liveStatus = h("span", { class: "live-status", id: "live-status", role: "status" });
live.onStatus((status) => {
  liveStatus.textContent = status === "idle" ? "" : t(`live.${status}`);
  liveStatus.dataset.status = status;
});

function renderHeader(user) {
  // Elders and their families get the larger type on every screen.
  document.body.classList.toggle("large-text", Boolean(user && ["elder", "family"].includes(user.role)));
  if (!user) {
    header.replaceChildren();
    nav.replaceChildren();
    nav.hidden = true;
    return;
  }
  replace(
    header,
    h("span", { class: "who" }, t("header.signed_in_as", { name: user.name, role: t(`role.${user.role}`) })),
    liveStatus,
    h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, t("header.sign_out")),
  );
  const here = location.hash;
  nav.hidden = false;
  replace(
    nav,
    h(
      "ul",
      {},
      (MENUS[user.role] ?? []).map(([href, key]) =>
        h("li", {}, h("a", { href, "aria-current": here === href || here.startsWith(`${href}/`) ? "page" : null }, t(key))),
      ),
    ),
  );
}

async function signOut() {
  try {
    await api.signOut();
  } catch (error) {
    // Signed out locally anyway; say so only if the server could not be told.
    if (error.network) showError(error);
  }
  showSignIn(t("signin.signed_out"));
}

function showSignIn(message) {
  generation += 1;
  live.stop();
  leaveScreen();
  renderHeader(null);
  if (location.hash !== "#/signin") history.replaceState(null, "", "#/signin");
  signInView(main, { message, onSignedIn: onSignedIn });
}

function onSignedIn(user) {
  sessionChecked = true;
  clearNotice();
  // Leaving #/signin fires hashchange, which renders the home screen.
  location.hash = MENUS[user.role]?.[0]?.[0] ?? "#/policy";
}

// A stored session is checked once per page load, so an expired or revoked token sends the
// user to sign-in with the reason at once, and a changed name or role is picked up.
let sessionChecked = false;

async function checkSession() {
  if (sessionChecked) return true;
  try {
    const { user } = await api.get("/api/v1/auth/me");
    api.saveSession(api.token(), user);
    sessionChecked = true;
    return true;
  } catch (error) {
    // A session-ending 401 has already shown sign-in; anything else is worth saying.
    if (error.status !== 401) {
      renderHeader(api.currentUser());
      showError(error);
    }
    return false;
  }
}

// One render of the current hash. A view that throws leaves an error message, not a blank page.
let generation = 0;

async function route() {
  if (!api.currentUser() || !api.token()) {
    showSignIn();
    return;
  }
  if (!(await checkSession())) return;
  const user = api.currentUser();
  const home = MENUS[user.role]?.[0]?.[0] ?? "#/policy";
  if (!location.hash || location.hash === "#/" || location.hash === "#/signin") {
    history.replaceState(null, "", home);
  }
  renderHeader(user);
  const hash = location.hash;
  const match = ROUTES.map((r) => [r, hash.match(r.path)]).find(([r, m]) => m && (!r.roles || r.roles.includes(user.role)));
  if (!match) {
    generation += 1;
    replace(main, h("h1", { tabindex: "-1" }, t("error.not_found_page")), h("p", {}, h("a", { href: home }, t(MENUS[user.role]?.[0]?.[1] ?? "nav.policy"))));
    return;
  }
  const [routeEntry, params] = match;
  // The live feed starts with the first signed-in screen and lasts until sign-out.
  live.start();
  leaveScreen();
  // Each screen is built off-page and shown only if no newer navigation started meanwhile,
  // so a slow answer for a screen the user already left can never overwrite the current one.
  const mine = ++generation;
  const screen = h("div", { class: "screen" });
  replace(main, h("p", { class: "loading" }, t("app.loading")));
  try {
    await routeEntry.view(screen, user, ...params.slice(1));
    if (mine !== generation) return;
    replace(main, screen);
  } catch (error) {
    if (mine !== generation) return;
    // Whatever the screen managed to build stays; the message says what failed.
    replace(main, screen);
    showError(error);
  }
  // Move focus to the new screen's heading so keyboard and screen-reader users start there.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

api.onSessionEnded((error) => showSignIn(describe(error)));
// The socket closing with 4401 means the token ended; ask the API why, which signs out.
live.onAuthFailed(() => api.get("/api/v1/auth/me").catch(() => {}));

// The skip link would otherwise change the hash, which this router reads as a screen name.
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
langButton.addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
onLangChange(() => {
  renderLangButton();
  route();
});
window.addEventListener("hashchange", async () => {
  clearNotice();
  await route();
  showPending();
});
window.addEventListener("unhandledrejection", (event) => {
  // Last resort: a failure nobody caught still becomes a message on the screen.
  showError(event.reason);
});

mountNotices(document.getElementById("notices"));
// Tells boot.js the modules loaded; otherwise it replaces the blank page with a message.
document.documentElement.dataset.booted = "1";
applyDocumentLang();
renderLangButton();
route();
