// Price alerts in the browser: how an alert reads, the request that creates one, and its
// refusals shown next to their fields (the alerts page and the market page's bell).
import { api } from "./api.js";
import { $$, listItems, setVisible } from "./dom.js";
import { formatDateTime, formatNumber } from "./format.js";

export const CONDITION_LABELS = {
  price_above: "Price at or above",
  price_below: "Price at or below",
  change_pct: "Moves by %",
};

export const FREQUENCY_LABELS = {
  once: "Once",
  every_time: "Every time",
  once_per_minute: "At most once a minute",
};

const WINDOW_LABELS = { "5m": "5 minutes", "1h": "1 hour", "24h": "24 hours" };

const isIndex = (symbol) => String(symbol).startsWith("index:");

// "index:BTC" reads as "BTC index"; a pair stays as it is.
export const symbolLabel = (symbol) => (isIndex(symbol) ? `${symbol.slice(6)} index` : symbol);

// What the alert waits for: "BTC-USDT at or above 70,000.00", "BTC index falls 5% in 1 hour".
export function describeAlert(alert) {
  const what = symbolLabel(alert.symbol);
  if (alert.condition === "price_above") return `${what} at or above ${formatNumber(alert.value, { minPlaces: 2 })}`;
  if (alert.condition === "price_below") return `${what} at or below ${formatNumber(alert.value, { minPlaces: 2 })}`;
  const falling = String(alert.value).trim().startsWith("-");
  const size = formatNumber(falling ? String(alert.value).trim().slice(1) : alert.value);
  const window = WINDOW_LABELS[alert.window] || alert.window;
  return `${what} ${falling ? "falls" : "rises"} ${size}% in ${window}`;
}

// "Fired 2 times, last 05 Jun 2026 14:03:05 at 70,010.00" or "Not fired yet".
export function firedText(alert) {
  if (!alert.fire_count) return "Not fired yet";
  const times = alert.fire_count === 1 ? "once" : `${alert.fire_count} times`;
  const when = alert.last_fired_at ? `, last ${formatDateTime(alert.last_fired_at)}` : "";
  const price = alert.last_fired_price ? ` at ${formatNumber(alert.last_fired_price, { minPlaces: 2 })}` : "";
  return `Fired ${times}${when}${price}`;
}

// The body of POST /api/v1/alerts from a form's values: the window only for a move.
export function alertPayload({ symbol, condition, value, window, frequency }) {
  const body = { symbol, condition, value: String(value ?? "").trim(), frequency };
  if (condition === "change_pct") body.window = window;
  return body;
}

export const createAlert = (body) => api("/api/v1/alerts", { method: "POST", json: body });

// Field errors for a form whose lists are marked data-errors-for="<field>": each API field's
// messages go under its field (when shown); the rest, and the message itself when no field
// took it, go in `box`; clearFieldErrors(form, box) undoes it.
export function clearFieldErrors(form, box) {
  $$(form, "[data-errors-for]").forEach((list) => {
    list.innerHTML = "";
    list.closest(".field")?.classList.remove("field-invalid");
  });
  if (box) {
    box.innerHTML = "";
    setVisible(box, false);
  }
}

export function showFieldErrors(form, box, error) {
  clearFieldErrors(form, box);
  const texts = (messages) => (Array.isArray(messages) ? messages : [messages]).map(String);
  const general = [];
  let placed = false;
  for (const [field, messages] of Object.entries(error.fields || {})) {
    const list = $$(form, "[data-errors-for]").find(
      (l) => l.dataset.errorsFor.split(" ").includes(field) && !l.closest("[hidden]"),
    );
    if (list) {
      list.innerHTML = listItems(texts(messages));
      list.closest(".field")?.classList.add("field-invalid");
      placed = true;
    } else {
      general.push(...texts(messages));
    }
  }
  if (!placed || general.length) general.unshift(error.message);
  if (box) {
    box.innerHTML = listItems(general);
    setVisible(box, general.length > 0);
  }
}
