// The signed-in trader's side of the market page: the ticket, open orders, history, fills and
// balances, kept live by /ws/user/ and fetched from the API in rounds (the user stream's
// events are partial: they say what changed, the API has the whole row). While /ws/user/ is
// not connected the page polls.
import { api, rows } from "../lib/api.js";
import { shareUserMessage } from "../lib/bell.js";
import { $, $$, countUp, escapeHtml, setVisible } from "../lib/dom.js";
import { ReconnectingSocket } from "../lib/socket.js";
import { createBalances } from "./balances.js";
import { createOrders, LIVE } from "./orders.js";
import { createTicket } from "./ticket.js";

const POLL_MS = 3000;
const EVERYTHING = ["open", "history", "fills", "balances"];

function setConnection(id, state, text) {
  const node = document.getElementById(id);
  if (!node) return;
  node.dataset.state = state;
  node.textContent = text;
}

// Arrow keys and clicks move between the account tabs.
function startTabs(page) {
  const tabs = $$(page, "#spot-account [role=tab]");
  function select(tab) {
    tabs.forEach((t) => {
      const selected = t === tab;
      t.setAttribute("aria-selected", String(selected));
      t.tabIndex = selected ? 0 : -1;
      setVisible(document.getElementById(t.getAttribute("aria-controls")), selected);
    });
  }
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      select(next);
      next.focus();
    });
  });
}

// market: the page's {book, lastPrice, setMine}. Returns {estimate, usePrice, publicTrade}.
export function startAccount(page, { cfg, market, places }) {
  const symbol = cfg.symbol;
  const accountError = $(page, "#account-error");
  const showAccountError = (html) => {
    accountError.innerHTML = html;
    setVisible(accountError, Boolean(html));
  };

  let ticket = null;
  const balances = createBalances(page, {
    base: cfg.base,
    quote: cfg.quote,
    initial: cfg.balances || [],
    places: places.of,
    onChange: () => ticket?.estimate(),
  });
  const orders = createOrders(page, {
    cfg,
    pricePlaces: places.price,
    qtyPlaces: places.quantity,
    quotePlaces: places.quote,
    showAccountError,
    onMine: (levels) => market.setMine(levels),
    onCancelled: () => refresh(["open", "history", "balances"]),
  });
  ticket = createTicket(page, {
    cfg,
    market,
    balances,
    places,
    onPlaced: (order) => {
      orders.upsert(order);
      refresh(EVERYTHING);
    },
  });
  startTabs(page);

  // --- fetching: one round at a time; what was asked for meanwhile goes in the next ------------
  const pending = new Set();
  let timer = null;
  let running = false;

  function refresh(kinds, delay = 100) {
    kinds.forEach((k) => pending.add(k));
    if (timer) return;
    timer = setTimeout(run, delay);
  }

  async function run() {
    timer = null;
    if (running) return refresh([], 150);
    running = true;
    const kinds = new Set(pending);
    pending.clear();
    const q = encodeURIComponent(symbol);
    const jobs = [];
    if (kinds.has("open")) jobs.push(api(`/api/v1/orders?status=open&symbol=${q}`).then((r) => orders.setOpen(rows(r))));
    if (kinds.has("history")) jobs.push(api(`/api/v1/orders?status=closed&symbol=${q}`).then((r) => orders.paintHistory(rows(r))));
    if (kinds.has("fills")) jobs.push(api(`/api/v1/fills?symbol=${q}&limit=50`).then((r) => orders.paintFills(rows(r))));
    if (kinds.has("balances")) jobs.push(api("/api/v1/balances").then((r) => balances.update(r)));
    const results = await Promise.allSettled(jobs);
    running = false;
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      kinds.forEach((k) => pending.add(k)); // try again on the next round
      if (failed.reason && failed.reason.status === 403) {
        const next = encodeURIComponent(location.pathname);
        showAccountError(`<li>${escapeHtml(failed.reason.message)} <a href="/login/?next=${next}">Sign in again</a>.</li>`);
      }
    }
    countUp(page, "refreshes");
  }

  // --- /ws/user/ ---------------------------------------------------------------------------------
  let pollTimer = null;
  function polling(on) {
    if (on && !pollTimer) pollTimer = setInterval(() => refresh(EVERYTHING), POLL_MS);
    if (!on && pollTimer) {
      clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  let live = false;
  function setLive(state) {
    live = state === "live";
    if (live) setConnection("conn-user", "live", "Account: live");
    else if (state === "signed-out") setConnection("conn-user", "offline", "Account: signed out");
    else setConnection("conn-user", "polling", "Account: polling");
    polling(!live);
    if (!live) refresh(EVERYTHING);
  }

  function onUserMessage(message) {
    const kind = message.type || message.event;
    if (kind === "snapshot") {
      if (Array.isArray(message.orders)) orders.setOpen(message.orders.filter((o) => LIVE.has(o.status)));
      else refresh(["open"]);
      if (Array.isArray(message.balances)) balances.update(message.balances);
      else refresh(["balances"]);
      refresh(["history", "fills"]);
    } else if (kind === "order") {
      if (message.symbol && message.symbol !== symbol) return refresh(["balances"]);
      const known = orders.find(message.id ?? message.order_id);
      if (known) orders.upsert({ ...known, ...message, id: known.id });
      refresh(["open", "history"]); // the event is partial: the API has the whole order
    } else if (kind === "amend") {
      // an amend the engine decided: the order's price, amount and hold come from the API
      if (!message.symbol || message.symbol === symbol) refresh(["open", "balances"]);
    } else if (kind === "fill") {
      refresh(message.symbol && message.symbol !== symbol ? ["balances"] : ["fills", "open", "balances"]);
    } else if (kind === "balances") {
      if (Array.isArray(message.balances)) balances.update(message.balances);
      else refresh(["balances"]);
    } else if (kind === "balance_changed") {
      refresh(["balances"]);
    }
  }

  // Live once the snapshot has arrived: the server may accept the socket and then refuse it (4401).
  const stream = new ReconnectingSocket("/ws/user/", {
    minDelay: 1000,
    maxDelay: 30000,
    healthyOnOpen: false,
    onMessage: (message) => {
      if (!live && message.type === "snapshot") {
        stream.healthy();
        setLive("live");
      }
      onUserMessage(message);
      shareUserMessage(message); // the navigation's bell hears this page's socket
    },
    onClose: (event) => setLive(event.code === 4401 ? "signed-out" : "polling"),
  });

  balances.update([]); // the first paint's balances, in the page's format
  refresh(EVERYTHING, 0);
  ticket.ready();

  return {
    estimate: () => ticket.estimate(),
    usePrice: (price) => ticket.usePrice(price),
    // A print on this market may be the trader's: without the user stream, look now, not at the next poll.
    publicTrade() {
      if (!live) refresh(EVERYTHING, 300);
    },
  };
}
