// Small SVG charts drawn from plain arrays, for the admin dashboard. Each chart is a <figure>
// whose caption names it and whose SVG carries a text summary, and the numbers are also in a
// table for screen readers (charts alone are not accessible). No library: a few rectangles
// and a polyline are all these need.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
// A small canvas, so the 14-unit labels stay readable when a phone scales the chart down.
const WIDTH = 400;
const HEIGHT = 220;
const PAD = { top: 16, right: 12, bottom: 36, left: 40 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children.flat()) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

// A "nice" axis top: 1, 2 or 5 times a power of ten, at or above the largest value.
export function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function frame(points, title, max) {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const grid = [0, 0.5, 1].map((f) =>
    svg("g", {}, svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(max * f), y2: y(max * f), stroke: "#595959", "stroke-width": f === 0 ? 2 : 1 }), svg("text", { x: PAD.left - 6, y: y(max * f) + 5, "text-anchor": "end", "font-size": 14, fill: "#111" }, String(max * f))),
  );
  const summary = points.map((p) => `${p.label}: ${p.value}`).join(", ");
  return { plotW, plotH, y, grid, summary };
}

function labels(points, x) {
  // At most about six labels fit under a 400-unit axis; thin them out evenly beyond that.
  const every = Math.max(1, Math.ceil(points.length / 6));
  return points.map((p, i) => (i % every === 0 ? svg("text", { x: x(i), y: HEIGHT - PAD.bottom + 22, "text-anchor": "middle", "font-size": 14, fill: "#111" }, p.label) : null)).filter(Boolean);
}

function figure(title, chart, points, unit) {
  return h(
    "figure",
    { class: "chart card" },
    h("figcaption", {}, title),
    chart,
    h(
      "table",
      { class: "visually-hidden" },
      h("caption", {}, title),
      h("tbody", {}, points.map((p) => h("tr", {}, h("th", { scope: "row" }, p.label), h("td", {}, `${p.value}${unit ? ` ${unit}` : ""}`)))),
    ),
  );
}

// A dashed line across the plot at `value` (e.g. a coverage target), labelled at its end.
function targetLine(value, label, y) {
  const at = y(value);
  return svg(
    "g",
    {},
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: at, y2: at, stroke: "#9b1111", "stroke-width": 3, "stroke-dasharray": "8 5" }),
    svg("text", { x: WIDTH - PAD.right, y: at - 6, "text-anchor": "end", "font-size": 14, fill: "#9b1111" }, `${label} ${value}`),
  );
}

// points: [{label, value}] with value >= 0. `max` fixes the axis top (e.g. 100 for percent);
// `target` draws a dashed line there, named by `targetLabel` (also in the text summary).
export function barChart(points, { title, unit = "", max = null, target = null, targetLabel = "" }) {
  if (!points.length) return h("figure", { class: "chart card" }, h("figcaption", {}, title), h("p", {}, t("chart.empty")));
  const top = max ?? niceMax(Math.max(...points.map((p) => p.value), target ?? 0));
  const { plotW, y, grid, summary } = frame(points, title, top);
  const step = plotW / points.length;
  const x = (i) => PAD.left + step * (i + 0.5);
  const bars = points.map((p, i) => svg("rect", { x: x(i) - step * 0.35, width: step * 0.7, y: y(p.value), height: Math.max(0, y(0) - y(p.value)), fill: "#0b4f8a" }, svg("title", {}, `${p.label}: ${p.value}`)));
  const line = target === null ? [] : [targetLine(target, targetLabel, y)];
  const said = target === null ? summary : `${summary}; ${targetLabel} ${target}`;
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": `${title}: ${said}` }, grid, bars, line, labels(points, x));
  return figure(title, chart, points, unit);
}

export function lineChart(points, { title, unit = "", max = null }) {
  if (!points.length) return h("figure", { class: "chart card" }, h("figcaption", {}, title), h("p", {}, t("chart.empty")));
  const top = max ?? niceMax(Math.max(...points.map((p) => p.value)));
  const { plotW, y, grid, summary } = frame(points, title, top);
  const step = points.length > 1 ? plotW / (points.length - 1) : 0;
  const x = (i) => PAD.left + (points.length > 1 ? step * i : plotW / 2);
  const line = svg("polyline", { points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(" "), fill: "none", stroke: "#0b4f8a", "stroke-width": 3 });
  const dots = points.map((p, i) => svg("circle", { cx: x(i), cy: y(p.value), r: 5, fill: "#0b4f8a" }, svg("title", {}, `${p.label}: ${p.value}`)));
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": `${title}: ${summary}` }, grid, line, dots, labels(points, x));
  return figure(title, chart, points, unit);
}
