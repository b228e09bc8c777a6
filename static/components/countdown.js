// Time left to accept an offer. role="timer" keeps screen readers from announcing every
// second; the text turns red in the last minute and says so when the offer has lapsed.

import { h } from "../dom.js";
import { t } from "../i18n.js";

function mmss(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const minutes = Math.floor(total / 60);
  return `${minutes}:${String(total % 60).padStart(2, "0")}`;
}

export function countdown(deadline, { onExpire, now = () => Date.now() } = {}) {
  const end = new Date(deadline).getTime();
  const element = h("span", { class: "countdown", role: "timer" });
  let timer = null;
  let shown = false;
  const tick = () => {
    const left = end - now();
    shown ||= element.isConnected;
    if (shown && !element.isConnected) {
      clearInterval(timer); // the view was replaced: stop quietly
      return;
    }
    if (left <= 0) {
      element.textContent = t("offer.expired");
      element.classList.add("urgent");
      clearInterval(timer);
      onExpire?.();
      return;
    }
    element.textContent = t("offer.expires_in", { time: mmss(left) });
    element.classList.toggle("urgent", left < 60_000);
  };
  tick();
  timer = setInterval(tick, 1000);
  return element;
}
