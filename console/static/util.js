// Small DOM and formatting helpers shared by the page's scripts.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// An element with attributes (`class`, `data-*`, `onclick`...) and children (nodes or text).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// An SVG element with attributes.
function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

// Event time (epoch ms) as HH:MM:SS UTC.
function clock(tsMs) {
  if (tsMs === null || tsMs === undefined || tsMs <= 0) return "—";
  return new Date(tsMs).toISOString().slice(11, 19);
}

// A number with `digits` decimals, or "n/a".
function num(value, digits = 1) {
  return value === null || value === undefined ? "n/a" : Number(value).toFixed(digits);
}

// A share as a percentage, or "n/a".
function pct(value) {
  return value === null || value === undefined ? "n/a" : `${(100 * value).toFixed(1)} %`;
}

// Replace the children of the element with id `id`.
function fill(id, ...children) {
  document.getElementById(id).replaceChildren(...children.flat());
}
