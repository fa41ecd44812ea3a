// The account page: its Limits panel (#limits-panel), every limit that can refuse the trader's
// orders and withdrawals with what they use of it now, and its API keys panel.
import { mountApiKeys } from "./account/apikeys.js";
import { api } from "./lib/api.js";
import { $, escapeHtml, setVisible } from "./lib/dom.js";
import { limitRows, stateLabel } from "./lib/limits.js";

async function showLimits(panel) {
  const body = $(panel, "tbody");
  const status = $(panel, "[data-field=status]");
  try {
    const data = await api("/api/v1/risk/limits");
    const state = $(panel, "[data-field=state]");
    state.textContent = stateLabel(data.trading_state);
    state.className = `badge badge-${data.trading_state === "active" ? "success" : "danger"}`;
    setVisible($(panel, "[data-field=reason]"), Boolean(data.trading_state_reason));
    $(panel, "[data-field=reason]").textContent = data.trading_state_reason;
    body.innerHTML = limitRows(data)
      .map(
        (row) => `<tr data-limit="${escapeHtml(row.name)}" data-scope="${escapeHtml(row.scope)}">
          <td>${escapeHtml(row.label)}</td>
          <td>${escapeHtml(row.scope)}</td>
          <td class="num">${escapeHtml(row.limit)}</td>
          <td class="num">${
            row.percent === null
              ? '<span class="muted">per order</span>'
              : `${escapeHtml(row.used)} <span class="usage usage-${row.level}" title="${row.percent}% used">
                   <span style="width:${Math.min(row.percent, 100)}%"></span></span>`
          }</td>
        </tr>`,
      )
      .join("");
    setVisible(status, false);
  } catch (error) {
    status.textContent = `Limits are unavailable right now: ${error.message}`;
    setVisible(status, true);
  }
}

const panel = document.getElementById("limits-panel");
if (panel) showLimits(panel);

const keys = document.getElementById("api-keys-panel");
if (keys) mountApiKeys(keys);
