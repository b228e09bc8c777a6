// Family links: a family member asks to be linked to an elder (found by the elder's phone);
// the elder approves from here. Linked family can then open the elder's record.

import * as api from "../api.js";
import { field, h, replace, select } from "../dom.js";
import { t } from "../i18n.js";
import { flashInfo, showError, showPending } from "../notice.js";

// What the family member is to the elder: the API's relation kinds (market.policy.RelationKind).
const RELATIONS = ["child", "child_in_law", "spouse", "grandchild", "sibling", "parent", "grandparent", "parent_in_law"];

function linkItem(link, user, reload) {
  const other = user.role === "family" ? link.elder_id : link.family_id;
  return h(
    "li",
    { class: "card" },
    h("p", {}, `${t("family.relation")}：${t(`relation.${link.relation}`)} · `, h("span", { class: link.status === "approved" ? "badge ok" : "badge" }, t(`family.link_status.${link.status}`))),
    user.role === "family" && link.status === "approved"
      ? h("a", { class: "button primary", href: `#/elders/${other}` }, t("family.open"))
      : null,
    user.role === "elder" && link.status === "pending"
      ? h(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: async () => {
              try {
                await api.post(`/api/v1/family-links/${link.id}/approve`);
                flashInfo(t("family.approved"));
                await reload();
              } catch (error) {
                showError(error);
              }
            },
          },
          t("family.approve"),
        )
      : null,
  );
}

export async function familyView(main, user) {
  const list = h("div");
  const reload = async () => {
    const { links } = await api.get("/api/v1/family-links");
    replace(list, links.length ? h("ul", { class: "plain" }, links.map((link) => linkItem(link, user, reload))) : h("p", {}, t("family.links_none")));
    showPending();
  };
  let requestForm = null;
  if (user.role === "family") {
    const phone = h("input", { name: "elder_phone", type: "tel", required: true, autocomplete: "off" });
    const relation = select("relation", RELATIONS.map((r) => [r, t(`relation.${r}`)]), "child");
    requestForm = h(
      "form",
      { class: "card" },
      h("h2", {}, t("family.request")),
      field(t("family.elder_phone"), phone),
      field(t("family.relation"), relation),
      h("button", { type: "submit", class: "primary" }, t("family.request")),
    );
    requestForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api.post("/api/v1/family-links", { elder_phone: phone.value.trim(), relation: relation.value });
        phone.value = "";
        flashInfo(t("family.requested"));
        await reload();
      } catch (error) {
        showError(error);
      }
    });
  }
  replace(main, h("h1", {}, t("family.title")), h("section", { "aria-label": t("family.links") }, h("h2", {}, t("family.links")), list), requestForm);
  await reload();
}
