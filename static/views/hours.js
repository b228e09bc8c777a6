// My hours: the time-bank balance, the statement with a verified mark on every line, and
// gifting hours to a linked relative. New entries arrive over the live feed.

import * as api from "../api.js";
import { field, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { showError, showInfo } from "../notice.js";
import { onScreen } from "../live.js";
import { formatDuration } from "../components/paychoice.js";
import { statementTable } from "../components/statement.js";

const PENDING_RETRY_MS = 3000;

export async function hoursView(main, user) {
  const balance = h("p", { class: "balance" });
  const table = h("div");
  let retry = null;
  const reload = async () => {
    clearTimeout(retry);
    const statement = await api.get(`/api/v1/ledger/accounts/${user.id}/statement?limit=200`);
    const { history } = await api.get(`/api/v1/ledger/districts/${encodeURIComponent(statement.district)}/keys`);
    balance.textContent = t("hours.balance", { time: formatDuration(statement.balance_minutes) });
    replace(table, statementTable(statement, history));
    // A line newer than the latest checkpoint cannot be proven yet; checkpoints follow within
    // seconds, so look again shortly instead of leaving it unverified.
    if (statement.lines.some((line) => !line.proof)) retry = setTimeout(() => reload().catch(showError), PENDING_RETRY_MS);
  };
  onScreen({ cleanup: () => clearTimeout(retry) });
  onScreen({ event: (e) => e.kind.startsWith("ledger.") || e.kind === "booking.state" ? reload().catch(showError) : null, reload: () => reload().catch(showError) });

  const recipient = h("input", { name: "recipient_id", required: true, autocomplete: "off", spellcheck: false });
  const hours = h("input", { name: "hours", type: "number", min: 0.5, step: 0.5, required: true, inputmode: "decimal" });
  const gift = h(
    "form",
    { class: "card" },
    h("h2", {}, t("hours.gift")),
    field(t("hours.recipient"), recipient, t("hours.recipient_hint")),
    field(t("hours.amount"), hours),
    h("button", { type: "submit", class: "primary" }, t("hours.gift_submit")),
  );
  gift.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.post("/api/v1/ledger/gifts", {
        recipient_id: recipient.value.trim(),
        minutes: Math.round(Number(hours.value) * 60),
        request_id: crypto.randomUUID(),
      });
      showInfo(t("hours.gift_done"));
      await reload();
    } catch (error) {
      showError(error);
    }
  });
  replace(main, h("h1", {}, t("statement.title")), h("section", { class: "card" }, balance, table), gift);
  await reload();
}
