// Vetting a volunteer and checking certificates: the district's helpers awaiting vetting are
// listed (GET /api/v1/helpers), one click opens a helper's card; an account number from a
// registration slip or the hotline still opens any helper of the district.

import * as api from "../api.js";
import { definitionList, field, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError, showPending } from "../notice.js";

function helperCard(helper, reload) {
  const reason = h("input", { name: "reason", required: true, maxlength: 200, autocomplete: "off" });
  const decide = async (decision) => {
    try {
      const result = await api.post(`/api/v1/helpers/${helper.id}/vetting`, { decision, reason: reason.value.trim() });
      flashInfo(t("helpers.decided", { status: t(`helpers.vetting.${result.helper.vetting_status}`) }));
      await reload();
    } catch (error) {
      showError(error);
    }
  };
  const certificates = helper.certificates ?? [];
  return h(
    "section",
    { class: "card", "aria-labelledby": "helper-heading" },
    h("h2", { id: "helper-heading" }, t(`helpers.kind.${helper.kind}`)),
    definitionList([
      [t("helpers.id"), h("code", {}, helper.id)],
      [t("helpers.vetting"), h("strong", {}, t(`helpers.vetting.${helper.vetting_status}`))],
      [t("helpers.skills"), helper.skills.length ? helper.skills.map((s) => t(`service.${s}`)).join("、") : t("policy.none")],
      [t("helpers.rating"), helper.rating ?? t("helpers.rating_none")],
    ]),
    h("h3", {}, t("helpers.certificates")),
    certificates.length
      ? h(
          "ul",
          { class: "record-list" },
          certificates.map((c) =>
            h(
              "li",
              {},
              `${t(`cert.${c.kind}`)} · ${t("helpers.cert_expires", { date: c.expires_on })} · `,
              h("span", { class: c.verified ? "badge ok" : "badge" }, t(c.verified ? "helpers.cert_verified" : "helpers.cert_unverified")),
              c.verified
                ? null
                : h(
                    "button",
                    {
                      type: "button",
                      class: "secondary",
                      onclick: async () => {
                        try {
                          await api.post(`/api/v1/certificates/${c.id}/verify`);
                          flashInfo(t("helpers.cert_done"));
                          await reload();
                        } catch (error) {
                          showError(error);
                        }
                      },
                    },
                    t("helpers.cert_verify"),
                  ),
            ),
          ),
        )
      : h("p", {}, t("helpers.certificates_none")),
    h(
      "div",
      { class: "decision" },
      field(t("helpers.reason"), reason),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "primary", onclick: () => decide("approved") }, t("helpers.approve")),
        h("button", { type: "button", class: "danger", onclick: () => decide("rejected") }, t("helpers.reject")),
      ),
    ),
  );
}

const PENDING_LIMIT = 50;

function pendingList(helpers, openId) {
  if (!helpers.length) return h("p", {}, t("helpers.pending_none"));
  return h(
    "ul",
    { class: "plain pending-helpers" },
    helpers.map((helper) =>
      h(
        "li",
        { class: "card", dataset: { helper: helper.id } },
        h("a", { href: `#/helpers/${helper.id}`, class: "booking-link", "aria-current": helper.id === openId ? "true" : null }, helper.name),
        h("p", { class: "hint" }, `${t(`helpers.kind.${helper.kind}`)} · ${helper.skills.length ? helper.skills.map((s) => t(`service.${s}`)).join("、") : t("policy.none")}`),
      ),
    ),
  );
}

export async function helperVettingView(main, user, helperId) {
  const openId = helperId?.toLowerCase() ?? null;
  const idInput = h("input", { name: "helper_id", required: true, autocomplete: "off", spellcheck: false, value: helperId ?? "" });
  const form = h(
    "form",
    { class: "card inline-form" },
    field(t("helpers.id"), idInput),
    h("button", { type: "submit", class: "primary" }, t("helpers.open")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/helpers/${idInput.value.trim().toLowerCase()}`;
  });
  const pending = h("section", { "aria-labelledby": "pending-heading" }, h("h2", { id: "pending-heading" }, t("helpers.pending")));
  const slot = h("div");
  replace(main, h("h1", {}, t("helpers.title")), slot, pending, h("h2", {}, t("helpers.by_id")), form);
  const reloadPending = async () => {
    const { helpers } = await api.get(`/api/v1/helpers?vetting_status=pending&limit=${PENDING_LIMIT}`);
    replace(pending, h("h2", { id: "pending-heading" }, t("helpers.pending")), pendingList(helpers, openId));
  };
  const reload = async () => {
    if (openId) {
      const { helper } = await api.get(`/api/v1/helpers/${openId}`);
      replace(slot, helperCard(helper, reload));
    }
    await reloadPending();
    // The message queued by an action appears once the card shows the new state.
    showPending();
  };
  await reload();
}
