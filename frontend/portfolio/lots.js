// The open lots of one asset (GET /api/v1/portfolio/lots): what is left of each acquisition
// under FIFO, or the one pooled lot at the average cost.
import { api } from "../lib/api.js";
import { $, escapeHtml, setText, setVisible, timeHtml } from "../lib/dom.js";
import { formatAmount, formatDateTime, formatNumber } from "../lib/format.js";
import { divide } from "./valuation.js";
import { parse, toText } from "../lib/decimal.js";

const SOURCES = { book: "Order book", smart: "Smart route", rfq: "RFQ", wallet: "Deposit", option: "Option" };

export function startLots(page) {
  const card = $(page, "#lots");
  const body = $(card, "tbody");
  $(card, "[data-action=close-lots]").addEventListener("click", () => setVisible(card, false));
  let latest = 0;

  async function show(asset, method) {
    const request = ++latest;
    setText(card, "[data-field=asset]", `${asset} (${method === "fifo" ? "FIFO" : "average cost"})`);
    if (card.hidden || card.dataset.asset !== asset) body.innerHTML = `<tr><td colspan="5" class="empty-state">Loading…</td></tr>`;
    setVisible(card, true);
    card.dataset.asset = asset;
    try {
      const lots = await api(`/api/v1/portfolio/lots?asset=${encodeURIComponent(asset)}&method=${encodeURIComponent(method)}`);
      if (request !== latest) return;
      body.innerHTML = lots.lots.length
        ? lots.lots
            .map((lot) => {
              const unit = divide(parse(lot.cost_usdt), parse(lot.quantity), 2);
              return `<tr data-lot>
                <td>${lot.acquired_at ? timeHtml(lot.acquired_at, formatDateTime(lot.acquired_at)) : "—"}</td>
                <td class="num mono" data-field="quantity">${escapeHtml(formatAmount(lot.quantity, asset))}</td>
                <td class="num mono" data-field="cost">${escapeHtml(formatAmount(lot.cost_usdt, "USDT"))}</td>
                <td class="num mono hide-sm">${unit ? escapeHtml(formatNumber(toText(unit), { places: 2 })) : "—"}</td>
                <td class="hide-sm">${escapeHtml(SOURCES[lot.source] || lot.source)}</td>
              </tr>`;
            })
            .join("")
        : `<tr><td colspan="5" class="empty-state">No open lots of ${escapeHtml(asset)}.</td></tr>`;
      card.dataset.ready = "true";
    } catch (error) {
      body.innerHTML = `<tr><td colspan="5" class="empty-state">${escapeHtml(error.message)}</td></tr>`;
    }
  }

  return {
    show,
    // after a trade: the lots shown, again
    reload(method) {
      if (!card.hidden && card.dataset.asset) show(card.dataset.asset, method);
    },
  };
}
