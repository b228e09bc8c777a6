// The one live feed of the page, and the listeners of the screen on display. The router
// clears a screen's listeners when it leaves, so a hidden screen never reacts to events.

import { token } from "./api.js";
import { LiveFeed } from "./ws.js";

export const live = new LiveFeed({ token });

const screenListeners = [];

// Listen to events while the current screen is shown; `reload` also runs after every
// (re)subscription or reset, when events may have been missed.
export function onScreen({ event, reload, cleanup }) {
  if (event) screenListeners.push(live.onEvent(event));
  if (reload) screenListeners.push(live.onSync(reload));
  if (cleanup) screenListeners.push(cleanup);
}

export function leaveScreen() {
  while (screenListeners.length) screenListeners.pop()();
}

// A reload that many events in a row (a series ended, a batch matched) ask for runs once after
// they settle, not once per event; failures go to `onError`.
export function coalesce(run, onError, ms = 300) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      Promise.resolve()
        .then(run)
        .catch(onError);
    }, ms);
  };
}
