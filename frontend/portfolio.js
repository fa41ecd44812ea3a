// The Portfolio page (/portfolio/): the summary, allocation, equity curve, assets with their
// cost basis and PnL (FIFO or average cost), open lots, option positions, downloads and the
// rebalancing form, from the portfolio API. Values move with the ticker on the page's one
// /ws/market/ connection; a change in the trader's account (/ws/user/) refetches them.
import "./portfolio.css";
import { api } from "./lib/api.js";
import { shareUserMessage } from "./lib/bell.js";
import { $$, readJson } from "./lib/dom.js";
import { marketFeed, ReconnectingSocket } from "./lib/socket.js";
import { startAllocation } from "./portfolio/allocation.js";
import { startDownloads } from "./portfolio/downloads.js";
import { startEquity } from "./portfolio/equity.js";
import { startLots } from "./portfolio/lots.js";
import { startOverview } from "./portfolio/overview.js";
import { startRebalance } from "./portfolio/rebalance.js";
import { startSuggestions } from "./portfolio/suggestions.js";

const ACCOUNT_EVENTS = new Set(["fill", "order", "balances", "balance_changed", "position", "snapshot"]);
const CONNECTION = { live: "Prices: live", connecting: "Prices: connecting", offline: "Prices: reconnecting" };

function start(page) {
  const cfg = readJson("portfolio-config") || {};
  const allocation = startAllocation(page);
  const lots = startLots(page);
  let saved = null;
  const rebalance = startRebalance(page, {
    assets: cfg.assets,
    tolerance: cfg.tolerance,
    onPlaced: () => {
      overview.refresh();
      suggestions.refresh();
      equity.reload();
      lots.reload(overview.method);
    },
  });
  const overview = startOverview(page, {
    onView: (view) => {
      allocation.paint(view);
      rebalance.showNow(view);
      rebalance.suggestFrom(view, saved);
    },
    onLots: (asset, method) => {
      lots.show(asset, method);
      document.getElementById("lots").scrollIntoView({ block: "nearest", behavior: "smooth" });
    },
  });
  const suggestions = startSuggestions(page, {
    onUseTargets: (targets, tolerance) => {
      rebalance.setTargets(targets, tolerance);
      document.getElementById("rebalance").scrollIntoView({ behavior: "smooth", block: "start" });
    },
  });
  const equity = startEquity(page, { period: cfg.period });
  startDownloads(page);
  api("/api/v1/portfolio/targets")
    .then((body) => {
      saved = body.targets ? body : null;
      if (saved) rebalance.setTargets(saved.targets, saved.tolerance);
    })
    .catch(() => {});

  // the cost method
  $$(page, "[data-method-choice]").forEach((button) =>
    button.addEventListener("click", () => {
      $$(page, "[data-method-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      overview.setMethod(button.dataset.methodChoice);
      lots.reload(button.dataset.methodChoice);
    }),
  );

  // live prices: each pair's ticker moves its base asset's value
  const feed = marketFeed();
  const channels = (cfg.symbols || []).map((symbol) => `ticker:${symbol}`);
  feed.subscribe(channels, (message) => {
    if (!message.data || !message.channel) return;
    const symbol = message.channel.slice("ticker:".length);
    overview.tick(symbol.split("-")[0], message.data.last);
  });
  const conn = document.getElementById("conn-prices");
  feed.onState((state) => {
    conn.dataset.state = state === "connecting" ? "polling" : state;
    conn.textContent = CONNECTION[state] || state;
  });

  // the account: a fill, an order or a balance change refetches the figures (once per burst)
  let timer = null;
  new ReconnectingSocket("/ws/user/", {
    minDelay: 1000,
    maxDelay: 30000,
    onMessage: (message) => {
      shareUserMessage(message); // the navigation's bell hears this page's socket
      if (!ACCOUNT_EVENTS.has(message.type || message.event)) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        overview.refresh();
        suggestions.refresh();
        lots.reload(overview.method);
      }, 400);
    },
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=portfolio]");
  if (page) start(page);
});
