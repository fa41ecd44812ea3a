// The bell beside the market page's last price: opens a small form, prefilled with this
// market and its current price, that creates a price alert in place through the alerts API.
import { alertPayload, clearFieldErrors, createAlert, describeAlert, showFieldErrors } from "../lib/alerts.js";
import { $, escapeHtml, setVisible } from "../lib/dom.js";

export function startPriceAlert(page, { symbol, currentPrice }) {
  const bell = $(page, "#alert-bell");
  const panel = $(page, "#quick-alert");
  if (!bell || !panel) return;
  const form = $(panel, "#quick-alert-form");
  const errors = $(panel, "#quick-alert-errors");
  const done = $(panel, "#quick-alert-done");
  const value = form.elements.value;

  function open() {
    clearFieldErrors(form, errors);
    setVisible(done, false);
    const price = currentPrice();
    if (price) value.value = price;
    setVisible(panel, true);
    bell.setAttribute("aria-expanded", "true");
    value.focus();
    value.select();
  }

  function close() {
    setVisible(panel, false);
    bell.setAttribute("aria-expanded", "false");
    bell.focus();
  }

  bell.addEventListener("click", () => (panel.hidden ? open() : close()));
  $(panel, "[data-quick-alert-close]").addEventListener("click", close);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form, errors);
    setVisible(done, false);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const alert = await createAlert(
        alertPayload({
          symbol,
          condition: form.elements.condition.value,
          value: value.value,
          frequency: form.elements.frequency.value,
        }),
      );
      done.innerHTML = `Alert set: ${escapeHtml(describeAlert(alert))}. You will be told here, in
        <a href="/notifications/">Notifications</a> and as your preferences say. <a href="/alerts/">All my alerts</a>`;
      done.dataset.alert = String(alert.id);
      setVisible(done, true);
    } catch (error) {
      showFieldErrors(form, errors, error);
    } finally {
      button.disabled = false;
    }
  });
}
