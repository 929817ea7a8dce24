// Tiny DOM helpers: build elements without innerHTML so user data is never parsed as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Create an HTML element: h("a", {href: "#/"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Create an SVG element with presentation attributes (kept inline so exported SVG looks the same). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

/** Re-render `container` with `render()` while keeping keyboard focus on the "same" element. */
export function keepFocus(container, render) {
  const active = document.activeElement;
  let key = null;
  if (active && container.contains(active)) {
    key = active.getAttribute("href") || active.id || active.dataset.jobId || null;
  }
  render();
  if (!key) return;
  const esc = CSS.escape(key);
  const again = container.querySelector(`[href="${esc}"], [id="${esc}"], [data-job-id="${esc}"]`);
  if (again) again.focus({ preventScroll: true });
}

/**
 * A check that the view now rendering into `root` is still the page shown: main.js stamps
 * `root.dataset.route` afresh on each navigation, so a view whose fetch resolves after the user left
 * sees `stillShown()` turn false and draws nothing (its cleanup may not have been handed over yet).
 */
export function routeGuard(root) {
  const mark = root?.dataset?.route;
  return () => root?.dataset?.route === mark;
}
