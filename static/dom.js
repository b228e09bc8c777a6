// A tiny element builder. Every piece of data goes in as text, never as HTML, so a name typed
// into a form can never inject markup into another person's screen.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Like replace, for content redrawn by live updates while someone works in it: disclosure
// widgets, typed values and the focus of elements marked `data-keep="<stable key>"` survive.
export function replaceKeeping(el, ...children) {
  const open = new Set([...el.querySelectorAll("details[data-keep][open]")].map((d) => d.dataset.keep));
  const values = new Map([...el.querySelectorAll("input[data-keep]")].map((i) => [i.dataset.keep, i.value]));
  const active = document.activeElement;
  const focused = active && el.contains(active) && active.dataset?.keep ? active.dataset.keep : null;
  replace(el, ...children);
  for (const d of el.querySelectorAll("details[data-keep]")) if (open.has(d.dataset.keep)) d.open = true;
  for (const i of el.querySelectorAll("input[data-keep]")) if (values.has(i.dataset.keep)) i.value = values.get(i.dataset.keep);
  if (focused) [...el.querySelectorAll("[data-keep]")].find((n) => n.dataset.keep === focused)?.focus();
  return el;
}

let uid = 0;
// Ids tie labels and hints to their inputs for screen readers.
export function newId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled form field; `hint` becomes aria-describedby so it is read with the input.
export function field(label, input, hint) {
  const id = input.id || newId();
  input.id = id;
  const parts = [h("label", { for: id }, label), input];
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: optionValue === value }, text),
    ),
  );
}

// A group of radio buttons or check boxes inside a fieldset with a legend.
export function choices(type, name, legend, options, checked = []) {
  const picked = new Set(Array.isArray(checked) ? checked : [checked]);
  return h(
    "fieldset",
    { class: "choices" },
    h("legend", {}, legend),
    // The options sit in their own box: a flex fieldset would break the legend's border gap.
    h(
      "div",
      { class: "choice-row" },
      options.map(([value, text]) => {
        const id = newId(name);
        return h(
          "div",
          { class: "choice" },
          h("input", { type, name, value, id, checked: picked.has(value) }),
          h("label", { for: id }, text),
        );
      }),
    ),
  );
}

export function definitionList(rows) {
  return h(
    "dl",
    { class: "facts" },
    rows.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}
