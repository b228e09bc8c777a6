// A button that runs one async action at a time: disabled while it runs, an error shown as the
// API explained it. `enableAfter: false` leaves it disabled after success, for views that
// redraw themselves when the change arrives.

import { h } from "../dom.js";
import { showError } from "../notice.js";

export function runButton(label, run, { className = "primary", keep = null, enableAfter = true } = {}) {
  const button = h("button", { type: "button", class: className, dataset: keep ? { keep } : null }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await run();
      if (enableAfter) button.disabled = false;
    } catch (error) {
      showError(error);
      button.disabled = false;
    }
  });
  return button;
}
