// The markets overview (/markets/): each row's ticker live from /ws/market/, and the
// watchlist stars of a signed-in trader.
import { api } from "./lib/api.js";
import { $, $$, escapeHtml, setVisible } from "./lib/dom.js";
import { marketFeed } from "./lib/socket.js";
import { paintTicker } from "./lib/ticker.js";

function marketsPage(page) {
  const rows = $$(page, "[data-market]");
  const channels = rows.map((row) => `ticker:${row.dataset.market}`);
  marketFeed().subscribe(channels, (message) => {
    const symbol = message.channel.slice("ticker:".length);
    rows.filter((row) => row.dataset.market === symbol).forEach((row) => paintTicker(row, message.data));
  });

  page.addEventListener("click", async (event) => {
    const star = event.target.closest("[data-watch]");
    if (!star) return;
    const symbol = star.dataset.watch;
    const watching = star.getAttribute("aria-pressed") === "true";
    try {
      if (watching) await api(`/api/v1/watchlist/${encodeURIComponent(symbol)}`, { method: "DELETE" });
      else await api("/api/v1/watchlist", { method: "POST", json: { symbol } });
      star.setAttribute("aria-pressed", watching ? "false" : "true");
      paintWatchlist(page, symbol, !watching);
    } catch {
      // the star keeps showing what the server has
    }
  });
}

// The Watchlist panel after a star changed: the market added or removed.
function paintWatchlist(page, symbol, watched) {
  const list = $(page, "#watchlist-items");
  if (!list) return;
  const present = $$(list, "[data-watched]").find((li) => li.dataset.watched === symbol);
  if (watched && !present) {
    const href = $(page, `[data-market="${CSS.escape(symbol)}"] a.pair`)?.getAttribute("href") || `/markets/${encodeURIComponent(symbol)}/`;
    const item = document.createElement("li");
    item.dataset.watched = symbol;
    item.innerHTML = `<a href="${escapeHtml(href)}">${escapeHtml(symbol)}</a>`;
    // in alphabetical order, as the page lists them
    const after = $$(list, "[data-watched]").find((li) => li.dataset.watched > symbol);
    list.insertBefore(item, after || null);
  } else if (!watched && present) {
    present.remove();
  }
  setVisible($(page, "#watchlist-empty"), !$$(list, "[data-watched]").length);
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=markets]");
  if (page) marketsPage(page);
});
