// The markets overview (/markets/): each row's ticker live from /ws/market/, and the
// watchlist stars of a signed-in trader.
import { api } from "./lib/api.js";
import { $$ } from "./lib/dom.js";
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
    } catch {
      // the star keeps showing what the server has
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=markets]");
  if (page) marketsPage(page);
});
