// Sign in with phone and password. Wrong password, throttling (429 with Retry-After) and a
// suspended account each get their own sentence, shown next to the form and announced.

import * as api from "../api.js";
import { field, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { describe, detailLines } from "../notice.js";

export function signInView(main, { message = "", onSignedIn }) {
  const phone = h("input", { name: "phone", type: "tel", autocomplete: "username", required: true, inputmode: "tel" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, t("signin.submit"));
  const status = h("div", { class: "form-message", id: "signin-message", role: "alert" });
  if (message) status.append(h("p", {}, message));

  const form = h(
    "form",
    { class: "card signin", novalidate: true },
    field(t("signin.phone"), phone),
    field(t("signin.password"), password),
    status,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = t("signin.busy");
    status.replaceChildren();
    try {
      const user = await api.signIn(phone.value.trim(), password.value);
      onSignedIn(user);
    } catch (error) {
      replace(status, h("p", {}, describe(error)), detailLines(error).map((line) => h("p", {}, line)));
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = t("signin.submit");
    }
  });
  replace(main, h("h1", {}, t("signin.title")), form);
  phone.focus();
}
