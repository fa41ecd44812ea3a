// The trader's options: positions with their live mark and PnL (each with a Close button),
// option orders with the back office's settlement state, and the USDT available to the
// ticket, refreshed every 3 s and after each trade.
import { api, rows } from "../lib/api.js";
import { formatAmount, formatDate, formatDateTime, formatMovement, formatNumber } from "../lib/format.js";
import { $, countUp, escapeHtml, timeHtml } from "../lib/dom.js";

const REFRESH_MS = 3000;
const SETTLEMENT = {
  pending: ["badge-warning", "Pending"],
  settling: ["badge-info", "Settling"],
  settled: ["badge-success", "Settled"],
  manual_review: ["badge-danger", "Manual review"],
};
const usdt = (value) => formatAmount(value, "USDT");
const contracts = (value) => formatNumber(value, { minPlaces: 2 });

// onClose(series, contracts) when a position's Close button is pressed.
export function startPortfolio(root, { onClose = () => {} }) {
  const positionsBody = $(root, "#option-positions tbody");
  const ordersBody = document.querySelector("#option-orders tbody");
  const available = $(root, "#ticket-form [data-field=usdt-available]");

  function paintPositions(positions) {
    if (!positions.length) {
      positionsBody.innerHTML = `<tr><td colspan="6" class="empty-state">No open positions.</td></tr>`;
      return;
    }
    positionsBody.innerHTML = positions
      .map((p) => {
        const pnl = formatMovement(p.unrealized_pnl_usdt, "USDT");
        const series = escapeHtml(p.series);
        return `<tr data-position="${series}" title="${series}">
          <td><div class="mono">${escapeHtml(p.underlying)} ${formatNumber(p.strike, { minPlaces: 0 })} ${p.option_type === "call" ? "Call" : "Put"}</div>
            <div class="muted small">${escapeHtml(formatDate(p.expiry, { year: false }))} · <span class="mono" data-field="contracts">${escapeHtml(contracts(p.contracts))}</span> ct</div></td>
          <td class="num mono" data-field="average">${usdt(p.average_price_usdt)}</td>
          <td class="num mono" data-field="mark">${usdt(p.mark_price_usdt)}</td>
          <td class="num mono" data-field="value">${usdt(p.mark_value_usdt)}</td>
          <td class="num mono ${pnl.cls}" data-field="pnl">${pnl.text}</td>
          <td><button type="button" class="btn btn-ghost btn-sm" data-close="${series}" data-contracts="${escapeHtml(p.contracts)}">Close</button></td>
        </tr>`;
      })
      .join("");
  }

  function paintOrders(orders) {
    if (!orders.length) {
      ordersBody.innerHTML = `<tr><td colspan="8" class="empty-state">No option orders yet.</td></tr>`;
      return;
    }
    ordersBody.innerHTML = orders
      .map((o) => {
        const [badge, label] = SETTLEMENT[o.settlement_state] || ["", o.settlement_state];
        const pnl = formatMovement(o.realized_pnl_usdt, "USDT");
        return `<tr id="option-order-${escapeHtml(o.id)}" data-order="${escapeHtml(o.id)}" data-side="${escapeHtml(o.side)}" data-settlement="${escapeHtml(o.settlement_state)}">
          <td>${timeHtml(o.created_at, formatDateTime(o.created_at))}</td>
          <td class="mono small">${escapeHtml(o.series)}</td>
          <td class="${o.side === "buy" ? "up" : "down"}">${o.side === "buy" ? "Buy" : "Sell"}</td>
          <td class="num mono">${escapeHtml(contracts(o.contracts))}</td>
          <td class="num mono">${usdt(o.price_usdt)}</td>
          <td class="num mono" data-field="total">${usdt(o.total_usdt)}</td>
          <td class="num mono ${pnl.cls}">${o.realized_pnl_usdt === null ? "—" : pnl.text}</td>
          <td><span class="badge ${badge}" data-field="settlement">${escapeHtml(label)}</span></td>
        </tr>`;
      })
      .join("");
  }

  positionsBody.addEventListener("click", (event) => {
    const button = event.target.closest("[data-close]");
    if (button) onClose(button.dataset.close, button.dataset.contracts);
  });

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const [positions, orders, balances] = await Promise.all([
        api("/api/v1/options/positions"),
        api("/api/v1/options/orders"),
        api("/api/v1/balances"),
      ]);
      paintPositions(rows(positions));
      paintOrders(rows(orders));
      const balance = rows(balances).find((b) => b.asset === "USDT");
      available.textContent = balance ? usdt(balance.available) : "—";
      countUp(root, "refreshes");
    } catch {
      // a blip: the next round repaints
    } finally {
      refreshing = false;
    }
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
  return { refresh };
}
