// Recent trades on #recent-trades, from the trades: channel (a snapshot of the latest, then
// one frame per trade). onTrade(price) hears each new print and the snapshot's latest.
import { formatNumber, formatTime, zoneName } from "../lib/format.js";
import { escapeHtml, timeHtml } from "../lib/dom.js";

const LENGTH = 40;

export function startTape(page, { symbol, feed, pricePlaces, qtyPlaces, onTrade = () => {} }) {
  const tape = page.querySelector("#recent-trades tbody");
  // the tape shows the time of day alone: its heading names the trader's zone
  const heading = page.querySelector("#recent-trades thead th");
  if (heading) heading.textContent = `Time (${zoneName()})`;

  const row = (t) => `<tr data-trade="${escapeHtml(t.id ?? "")}"><td class="muted">${timeHtml(t.time, formatTime(t.time))}</td>
      <td class="num mono ${t.side === "buy" ? "up" : "down"}">${formatNumber(t.price, { places: pricePlaces })}</td>
      <td class="num mono">${formatNumber(t.quantity, { places: qtyPlaces })}</td></tr>`;

  feed.subscribe([`trades:${symbol}`], (message) => {
    if (message.type === "snapshot") {
      const trades = Array.isArray(message.data) ? message.data : [];
      tape.innerHTML = trades.length
        ? trades.slice(0, LENGTH).map(row).join("")
        : `<tr><td colspan="3" class="empty-state">No trades yet.</td></tr>`;
      if (trades.length) onTrade(trades[0].price, { snapshot: true });
      return;
    }
    // an update carries one trade, at the top level of the frame (or under data)
    const trade = message.data && !Array.isArray(message.data) ? message.data : message;
    if (!trade.price) return;
    tape.querySelector(".empty-state")?.closest("tr").remove();
    tape.insertAdjacentHTML("afterbegin", row(trade));
    while (tape.rows.length > LENGTH) tape.deleteRow(-1);
    onTrade(trade.price, { snapshot: false });
  });
}
