// The price alerts page (/alerts/): the trader's alerts (active and triggered, with how often
// and when they fired), a form for a new one and a delete button on each, all through the
// alerts API. When one of them fires (a price_alert notification, heard by the navigation's
// bell on /ws/user/) the list is read again, so its status and count move without a reload.
import { api, rows } from "./lib/api.js";
import {
  alertPayload,
  clearFieldErrors,
  CONDITION_LABELS,
  createAlert,
  describeAlert,
  FREQUENCY_LABELS,
  firedText,
  showFieldErrors,
  symbolLabel,
} from "./lib/alerts.js";
import { NOTIFICATION_EVENT } from "./lib/bell.js";
import { $, escapeHtml, listItems, readJson, setVisible } from "./lib/dom.js";

const WINDOW_LABELS = { "5m": "5 minutes", "1h": "1 hour", "24h": "24 hours" };

function fillSelect(select, values, label, chosen) {
  select.innerHTML = values
    .map((v) => `<option value="${escapeHtml(v)}"${v === chosen ? " selected" : ""}>${escapeHtml(label(v))}</option>`)
    .join("");
}

// Every alert of the trader, following the list's pages.
async function fetchAlerts() {
  const all = [];
  let url = "/api/v1/alerts";
  while (url) {
    const body = await api(url);
    all.push(...rows(body));
    const next = body && !Array.isArray(body) && body.next ? new URL(body.next, location.href) : null;
    url = next ? next.pathname + next.search : null;
  }
  return all;
}

function alertsPage(page, cfg) {
  const form = $(page, "#alert-form");
  const formErrors = $(page, "#alert-form-errors");
  const done = $(page, "#alert-form-done");
  const list = $(page, "#alert-list");
  const listErrors = $(page, "#alert-list-errors");
  const empty = $(page, "#alert-empty");
  const count = $(page, "[data-field=active-count]");
  const inputs = {
    symbol: form.elements.symbol,
    condition: form.elements.condition,
    value: form.elements.value,
    window: form.elements.window,
    frequency: form.elements.frequency,
  };
  let alerts = cfg.alerts || [];
  let fresh = null; // the id just created or fired: its row is marked for a moment

  fillSelect(inputs.symbol, cfg.symbols, symbolLabel, cfg.symbol);
  fillSelect(inputs.condition, cfg.conditions, (c) => CONDITION_LABELS[c] || c, cfg.conditions[0]);
  fillSelect(inputs.window, cfg.windows, (w) => WINDOW_LABELS[w] || w, "1h");
  fillSelect(inputs.frequency, cfg.frequencies, (f) => FREQUENCY_LABELS[f] || f, "once");

  function conditionChanged() {
    const move = inputs.condition.value === "change_pct";
    setVisible($(form, "[data-window-field]"), move);
    $(form, "[data-value-label]").textContent = move ? "Move" : "Price";
    $(form, "[data-value-unit]").textContent = move ? "%" : "USDT";
    $(form, "[data-value-help]").textContent = move
      ? "A positive number for a rise, a negative one for a fall (−5 is a 5 % fall), at most two decimals."
      : `A multiple of ${cfg.ticks[inputs.symbol.value] || "the tick size"}.`;
  }
  inputs.condition.addEventListener("change", conditionChanged);
  inputs.symbol.addEventListener("change", conditionChanged);
  conditionChanged();

  function paint() {
    const active = alerts.filter((a) => a.status === "active").length;
    count.textContent = `${active} of ${cfg.max_active} active`;
    setVisible(empty, alerts.length === 0);
    list.innerHTML = alerts
      .map((alert) => {
        const triggered = alert.status === "triggered";
        return `<li class="alert-item${alert.id === fresh ? " is-new" : ""}" data-alert="${alert.id}" data-status="${escapeHtml(alert.status)}">
          <p class="alert-what">${escapeHtml(describeAlert(alert))}</p>
          <p class="alert-meta">
            <span class="badge ${triggered ? "badge-info" : "badge-success"}" data-field="status">${triggered ? "Triggered" : "Active"}</span>
            <span data-field="frequency">${escapeHtml(FREQUENCY_LABELS[alert.frequency] || alert.frequency)}</span>
            <span data-field="fired" data-count="${alert.fire_count}">${escapeHtml(firedText(alert))}</span>
          </p>
          <button type="button" class="btn btn-ghost btn-sm" data-delete="${alert.id}" aria-label="Delete the alert: ${escapeHtml(describeAlert(alert))}">Delete</button>
        </li>`;
      })
      .join("");
    page.dataset.alerts = String(alerts.length);
  }

  function showListError(message) {
    listErrors.innerHTML = message ? listItems([message]) : "";
    setVisible(listErrors, Boolean(message));
  }

  async function reload() {
    try {
      alerts = await fetchAlerts();
      showListError("");
      paint();
    } catch (error) {
      showListError(`Your alerts could not be read again: ${error.message}`);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form, formErrors);
    setVisible(done, false);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const alert = await createAlert(
        alertPayload({
          symbol: inputs.symbol.value,
          condition: inputs.condition.value,
          value: inputs.value.value,
          window: inputs.window.value,
          frequency: inputs.frequency.value,
        }),
      );
      alerts = [alert, ...alerts.filter((a) => a.id !== alert.id)];
      fresh = alert.id;
      paint();
      done.textContent = `Alert created: ${describeAlert(alert)}.`;
      setVisible(done, true);
      inputs.value.value = "";
    } catch (error) {
      showFieldErrors(form, formErrors, error);
    } finally {
      button.disabled = false;
    }
  });

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-delete]");
    if (!button) return;
    const id = Number(button.dataset.delete);
    button.disabled = true;
    try {
      await api(`/api/v1/alerts/${id}`, { method: "DELETE" });
      alerts = alerts.filter((a) => a.id !== id);
      showListError("");
      paint();
    } catch (error) {
      if (error.status === 404) {
        alerts = alerts.filter((a) => a.id !== id); // already gone (another tab)
        paint();
      } else {
        button.disabled = false;
        showListError(error.message);
      }
    }
  });

  document.addEventListener(NOTIFICATION_EVENT, (event) => {
    const notification = event.detail || {};
    if (notification.kind !== "price_alert") return;
    fresh = notification.data ? notification.data.alert_id : null;
    reload();
  });

  paint();
  page.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=alerts]");
  const cfg = readJson("alerts-config");
  if (page && cfg) alertsPage(page, cfg);
});
