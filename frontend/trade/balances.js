// The trader's balances: kept from the page's first paint, /ws/user/ and the balances API,
// painted on #balances (the market's quote and base first).
import { formatAmount } from "../lib/format.js";
import { escapeHtml } from "../lib/dom.js";

export function createBalances(page, { base, quote, initial = [], onChange = () => {} }) {
  const balances = new Map();
  const body = page.querySelector("#balances tbody");

  function paint() {
    const order = [quote, base, ...[...balances.keys()].filter((a) => a !== quote && a !== base)];
    body.innerHTML = order
      .filter((asset) => balances.has(asset))
      .map((asset) => {
        const b = balances.get(asset);
        const shown = (value) => formatAmount(value, asset); // as the wallet shows them
        return `<tr data-asset="${escapeHtml(asset)}"><td>${escapeHtml(asset)}</td>
          <td class="num mono" data-field="available">${shown(b.available)}</td>
          <td class="num mono" data-field="held">${shown(b.held)}</td>
          <td class="num mono" data-field="total">${shown(b.total)}</td></tr>`;
      })
      .join("");
  }

  const store = {
    get: (asset) => balances.get(asset),
    // Merges [{asset, available, held, total}, ...] (a full list or the changed ones).
    update(list) {
      if (!Array.isArray(list)) return;
      list.forEach((b) => b && b.asset && balances.set(b.asset, b));
      paint();
      onChange();
    },
  };
  initial.forEach((b) => b && b.asset && balances.set(b.asset, b));
  return store;
}
