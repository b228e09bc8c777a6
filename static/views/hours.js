// My hours: the time-bank balance, the statement with a verified mark on every line, and
// gifting hours to a relative picked from the approved family links. New entries arrive over
// the live feed.

import * as api from "../api.js";
import { choices, field, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { showError, showInfo } from "../notice.js";
import { onScreen } from "../live.js";
import { formatDuration } from "../components/paychoice.js";
import { statementTable } from "../components/statement.js";

const PENDING_RETRY_MS = 3000;
const LINES = 200;

// The account's latest LINES lines. The statement API pages forward from a seq; most accounts
// fit one page. A longer one is read from a point near the chain's end, moved back until the
// tail holds LINES lines (or the chain's start is reached), then paged forward to the end, so
// the running balance (worked back from the current one) stays right.
export async function latestStatement(userId) {
  const url = (after) => `/api/v1/ledger/accounts/${userId}/statement?limit=${LINES}&after=${after}`;
  const first = await api.get(url(-1));
  if (first.next_after === null) return first;
  const { districts } = await api.get("/api/v1/ledger/districts");
  const size = districts.find((d) => d.district === first.district)?.size ?? 0;
  let span = LINES * 4;
  for (;;) {
    const start = Math.max(-1, size - span);
    let page = await api.get(url(start));
    const lines = [...page.lines];
    while (page.next_after !== null) {
      page = await api.get(url(page.next_after));
      lines.push(...page.lines);
    }
    if (lines.length >= LINES || start === -1) {
      const tail = lines.slice(-LINES);
      // A checkpoint signed between two pages proves the earlier lines against an older tree;
      // those lines wait for the next reload instead of failing against the newer one.
      const size = page.checkpoint?.checkpoint?.size;
      return { ...page, lines: tail.map((line) => (line.proof && line.proof.tree_size !== size ? { ...line, proof: null } : line)) };
    }
    span *= 4;
  }
}

export async function hoursView(main, user) {
  const balance = h("p", { class: "balance" });
  const table = h("div");
  let retry = null;
  const reload = async () => {
    clearTimeout(retry);
    const statement = await latestStatement(user.id);
    const { history } = await api.get(`/api/v1/ledger/districts/${encodeURIComponent(statement.district)}/keys`);
    balance.textContent = t("hours.balance", { time: formatDuration(statement.balance_minutes) });
    replace(table, statementTable(statement, history));
    // A line newer than the latest checkpoint cannot be proven yet; checkpoints follow within
    // seconds, so look again shortly instead of leaving it unverified.
    if (statement.lines.some((line) => !line.proof)) retry = setTimeout(() => reload().catch(showError), PENDING_RETRY_MS);
  };
  onScreen({ cleanup: () => clearTimeout(retry) });
  onScreen({ event: (e) => e.kind.startsWith("ledger.") || e.kind === "booking.state" ? reload().catch(showError) : null, reload: () => reload().catch(showError) });

  replace(main, h("h1", {}, t("statement.title")), h("section", { class: "card" }, balance, table), await giftForm(user, reload));
  await reload();
}

// Gifts go to a relative picked from the approved family links, never to a typed account id;
// relatives the policy does not let hours go to are named with the reason, not offered.
async function giftForm(user, reload) {
  const { relatives } = await api.get("/api/v1/ledger/gift-recipients");
  const allowed = relatives.filter((r) => r.gift_allowed);
  const barred = relatives.filter((r) => !r.gift_allowed);
  const heading = h("h2", {}, t("hours.gift"));
  const barredNote = barred.length
    ? h("p", { class: "hint" }, t("hours.gift_barred", { names: barred.map((r) => `${r.name}（${r.relation ? t(`relation.${r.relation}`) : t("relation.other")}）`).join("、") }))
    : null;
  if (!allowed.length) {
    const linkPage = ["elder", "family"].includes(user.role) ? h("p", {}, h("a", { href: "#/family" }, t("nav.family"))) : null;
    return h("section", { class: "card" }, heading, h("p", {}, t("hours.no_relatives")), barredNote, linkPage);
  }
  const recipient = choices(
    "radio",
    "recipient_id",
    t("hours.recipient"),
    allowed.map((r) => [r.user_id, `${r.name}（${t(`relation.${r.relation}`)}）`]),
    allowed.length === 1 ? allowed[0].user_id : [],
  );
  const hours = h("input", { name: "hours", type: "number", min: 0.5, step: 0.5, required: true, inputmode: "decimal" });
  const gift = h("form", { class: "card" }, heading, recipient, barredNote, field(t("hours.amount"), hours), h("button", { type: "submit", class: "primary" }, t("hours.gift_submit")));
  gift.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = gift.querySelector('input[name="recipient_id"]:checked');
    if (!picked) {
      showError(new Error(t("hours.pick_recipient")));
      return;
    }
    try {
      await api.post("/api/v1/ledger/gifts", {
        recipient_id: picked.value,
        minutes: Math.round(Number(hours.value) * 60),
        request_id: crypto.randomUUID(),
      });
      showInfo(t("hours.gift_done"));
      await reload();
    } catch (error) {
      showError(error);
    }
  });
  return gift;
}
