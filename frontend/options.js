// The options page (/options/): the chain for everyone (its index on the page's one
// /ws/market/ connection); for a signed-in trader also the USDT-mode ticket, positions and
// option orders, all through the options API.
import { marketFeed } from "./lib/socket.js";
import { startChain } from "./options/chain.js";
import { startPortfolio } from "./options/portfolio.js";
import { startTicket } from "./options/ticket.js";

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=options]");
  if (!page) return;
  const chain = startChain(page, { feed: marketFeed() });
  const root = document.querySelector("#options-trading");
  if (!root) return;
  let portfolio = null;
  const ticket = startTicket(root, { chain, onTraded: () => portfolio.refresh() });
  portfolio = startPortfolio(root, { onClose: (series, contracts) => ticket.close(series, contracts) });
  page.dataset.trading = "ready";
});
