// Small DOM helpers shared by the pages.

export const $ = (root, selector) => root.querySelector(selector);
export const $$ = (root, selector) => [...root.querySelectorAll(selector)];

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

// Text safe to put inside HTML markup or a quoted attribute.
export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

// Shows or hides an element. Some of the site's boxes have a display of their own, which
// beats the hidden attribute, so the inline style goes with it.
export function setVisible(element, visible) {
  if (!element) return;
  element.hidden = !visible;
  element.style.display = visible ? "" : "none";
}

export function setText(root, selector, text) {
  root.querySelectorAll(selector).forEach((node) => (node.textContent = text));
}

// Adds one to a counter in a data attribute (pages expose how often they repainted).
export function countUp(element, name) {
  if (element) element.dataset[name] = String(Number(element.dataset[name] || 0) + 1);
}

// A list of messages as <li> items (error boxes and field errors).
export const listItems = (messages) => messages.map((m) => `<li>${escapeHtml(m)}</li>`).join("");

// A time cell's content: the formatted UTC time, with the API's timestamp on hover.
export function timeHtml(iso, text) {
  if (!iso || !text) return escapeHtml(text || "");
  return `<time datetime="${escapeHtml(iso)}" title="${escapeHtml(iso)}">${escapeHtml(text)}</time>`;
}

// The JSON a template put in a <script type="application/json" id=...> (Django's json_script).
export function readJson(id) {
  const node = document.getElementById(id);
  if (!node) return null;
  try {
    return JSON.parse(node.textContent);
  } catch {
    return null;
  }
}
