// The spot trading page (/markets/<SYMBOL>/): the live order book and tape for everyone; for a
// signed-in trader also the order ticket, open orders (with cancel), order history, fills and
// balances. The book is a snapshot then deltas from /ws/market/ (applied by sequence; anything
// inconsistent re-subscribes for a new snapshot). The account side follows /ws/user/ and falls
// back to the REST API (polling) whenever that socket is not connected. market.js draws the chart.

const TERMINAL = new Set(["filled", "cancelled", "rejected"]);
const LIVE = new Set(["new", "open", "partially_filled", "triggered_pending"]);
const BOOK_LEVELS = 12;
const TAPE_LENGTH = 40;
const POLL_MS = 3000;

const $ = (root, selector) => root.querySelector(selector);
const $$ = (root, selector) => [...root.querySelectorAll(selector)];

// --- exact decimals ---------------------------------------------------------------------------
// Prices, quantities and amounts stay decimal strings; the few sums the page shows (cost,
// totals, percentages of a balance) are done on scaled BigInts, never on floats.

function dec(text) {
  if (text === null || text === undefined) return null;
  const t = String(text).trim();
  if (!/^-?(\d+\.?\d*|\.\d+)$/.test(t)) return null;
  const negative = t.startsWith("-");
  const [whole, fraction = ""] = (negative ? t.slice(1) : t).split(".");
  const n = BigInt((whole || "0") + fraction);
  return { n: negative ? -n : n, s: fraction.length };
}

const pow10 = (k) => 10n ** BigInt(k);

function aligned(a, b) {
  const s = Math.max(a.s, b.s);
  return [a.n * pow10(s - a.s), b.n * pow10(s - b.s), s];
}

const D = {
  add(a, b) {
    const [x, y, s] = aligned(a, b);
    return { n: x + y, s };
  },
  sub(a, b) {
    const [x, y, s] = aligned(a, b);
    return { n: x - y, s };
  },
  mul: (a, b) => ({ n: a.n * b.n, s: a.s + b.s }),
  cmp(a, b) {
    const [x, y] = aligned(a, b);
    return x < y ? -1 : x > y ? 1 : 0;
  },
  zero: { n: 0n, s: 0 },
  // a rounded to `places` decimals ("down" toward zero, "up" away from zero, else half-up)
  round(a, places, mode = "half") {
    if (a.s <= places) return { n: a.n * pow10(places - a.s), s: places };
    const div = pow10(a.s - places);
    const sign = a.n < 0n ? -1n : 1n;
    const abs = a.n * sign;
    let q = abs / div;
    const r = abs % div;
    if (mode === "up" && r > 0n) q += 1n;
    else if (mode === "half" && r * 2n >= div) q += 1n;
    return { n: q * sign, s: places };
  },
  // floor(a / b / step) * step, for positive a, b and step: the most whole steps that fit
  fitSteps(a, b, step) {
    if (b.n <= 0n || step.n <= 0n || a.n <= 0n) return { n: 0n, s: step.s };
    const k = (a.n * pow10(b.s + step.s)) / (pow10(a.s) * b.n * step.n);
    return { n: k * step.n, s: step.s };
  },
  text(a) {
    const negative = a.n < 0n;
    let digits = (negative ? -a.n : a.n).toString().padStart(a.s + 1, "0");
    const whole = digits.slice(0, digits.length - a.s);
    const fraction = a.s ? digits.slice(digits.length - a.s) : "";
    return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
  },
};

const placesOf = (step) => {
  const d = dec(step);
  if (!d) return 2;
  const text = D.text(d).replace(/0+$/, "");
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
};

// The canonical form of a decimal string (no trailing zeros): a stable key for book levels.
function canon(text) {
  const d = dec(text);
  if (!d) return String(text);
  let t = D.text(d);
  if (t.includes(".")) t = t.replace(/0+$/, "").replace(/\.$/, "");
  return t === "-0" ? "0" : t;
}

// A decimal string for the screen: grouped, exactly `places` decimals (rounded half-up).
function show(text, places) {
  if (text === null || text === undefined || text === "") return "—";
  const d = dec(text);
  if (!d) return String(text);
  const t = D.text(D.round(d, places));
  const negative = t.startsWith("-");
  const [whole, fraction] = (negative ? t.slice(1) : t).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "−" : ""}${grouped}${fraction ? `.${fraction}` : ""}`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Some of the site's boxes have a display of their own, which beats the hidden attribute.
function setVisible(element, visible) {
  element.hidden = !visible;
  element.style.display = visible ? "" : "none";
}

function clientOrderId() {
  if (window.crypto && crypto.randomUUID) return `web-${crypto.randomUUID()}`;
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

function csrfToken() {
  const input = document.querySelector("#order-form input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const match = document.cookie.match(/csrftoken=([^;]+)/);
  return match ? match[1] : "";
}

class ApiError extends Error {
  constructor(message, code, fields, status) {
    super(message);
    this.code = code;
    this.fields = fields || {};
    this.status = status;
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      credentials: "same-origin",
      ...options,
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken(), ...(options.headers || {}) },
    });
  } catch (error) {
    throw new ApiError("The server cannot be reached; check your connection.", "network", {}, 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(error.message || `Request failed (${response.status}).`, error.code || "error", error.fields, response.status);
  }
  return body;
}

const wsUrl = (path) => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;

function setConnection(id, state, text) {
  const node = document.getElementById(id);
  if (!node) return;
  node.dataset.state = state;
  node.textContent = text;
}

// --- /ws/market/: the book and the tape ------------------------------------------------------

class MarketStream {
  constructor(channels, onMessage) {
    this.channels = channels;
    this.onMessage = onMessage;
    this.backoff = 500;
    this.connect();
  }

  connect() {
    setConnection("conn-market", "connecting", "Market: connecting");
    this.ws = new WebSocket(wsUrl("/ws/market/"));
    this.ws.addEventListener("open", () => {
      this.backoff = 500;
      setConnection("conn-market", "live", "Market: live");
      this.send({ op: "subscribe", channels: this.channels });
    });
    this.ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    });
    this.ws.addEventListener("close", () => {
      setConnection("conn-market", "offline", "Market: reconnecting");
      this.onMessage({ event: "disconnected" });
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  // A fresh snapshot of a sequenced channel: what the server sends on (re)subscribing.
  resubscribe(channel) {
    this.send({ op: "unsubscribe", channels: [channel] });
    this.send({ op: "subscribe", channels: [channel] });
  }
}

class Book {
  constructor() {
    this.reset();
  }

  reset() {
    this.sequence = null; // null: waiting for a snapshot, deltas are dropped
    this.bids = new Map();
    this.asks = new Map();
  }

  snapshot(message) {
    this.reset();
    this.sequence = typeof message.sequence === "number" ? message.sequence : 0;
    this.merge(message.bids, message.asks);
  }

  // Returns false when the delta cannot follow what we hold (then: re-subscribe).
  delta(message) {
    if (this.sequence === null) return true; // a snapshot is on its way
    const sequence = message.sequence;
    if (typeof sequence === "number" && sequence <= this.sequence) return true; // already in the snapshot
    const previous = message.previous ?? message.prev_sequence ?? message.previous_sequence;
    if (typeof previous === "number" && previous !== this.sequence) return false;
    this.merge(message.bids, message.asks);
    if (typeof sequence === "number") this.sequence = sequence;
    return !this.crossed();
  }

  merge(bids = [], asks = []) {
    for (const [side, levels] of [[this.bids, bids], [this.asks, asks]]) {
      for (const level of levels || []) {
        const [price, quantity] = level;
        const qty = dec(quantity);
        if (!qty || qty.n === 0n) side.delete(canon(price));
        else side.set(canon(price), String(quantity));
      }
    }
  }

  sorted(side) {
    const entries = [...(side === "bids" ? this.bids : this.asks).entries()];
    const order = (a, b) => D.cmp(dec(a[0]), dec(b[0]));
    return side === "bids" ? entries.sort((a, b) => order(b, a)) : entries.sort(order);
  }

  best(side) {
    return this.sorted(side)[0] || null;
  }

  // Only a lost delta can leave a bid at or above an ask: resynchronise.
  crossed() {
    const bid = this.best("bids");
    const ask = this.best("asks");
    return Boolean(bid && ask && D.cmp(dec(bid[0]), dec(ask[0])) >= 0);
  }
}

// --- /ws/user/: the trader's own events -------------------------------------------------------

class UserStream {
  // Live once the snapshot has arrived (an accepted socket may still be refused: 4401).
  constructor(onMessage, onState) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.backoff = 1000;
    this.live = false;
    this.connect();
  }

  connect() {
    let ws;
    try {
      ws = new WebSocket(wsUrl("/ws/user/"));
    } catch {
      return this.retry();
    }
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!this.live && message.type === "snapshot") {
        this.backoff = 1000;
        this.live = true;
        this.onState("live");
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      this.live = false;
      this.onState(event.code === 4401 ? "signed-out" : "polling");
      this.retry();
    });
  }

  retry() {
    setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 30000);
  }
}

// --- the page ------------------------------------------------------------------------------------

function tradingPage(page, cfg) {
  const symbol = cfg.symbol;
  const pricePlaces = placesOf(cfg.tick_size);
  const qtyPlaces = placesOf(cfg.lot_size);
  const quotePlaces = 2;
  const lot = dec(cfg.lot_size);
  const tick = dec(cfg.tick_size);
  const signedIn = Boolean(cfg.signed_in);

  const ladder = $(page, "#orderbook tbody");
  const tape = $(page, "#recent-trades tbody");
  const book = new Book();
  let lastPrice = null;
  let myLevels = { bids: new Set(), asks: new Set() };
  let trading = null;
  if (signedIn && $(page, "#spot-ticket")) trading = accountSide();

  // --- book -----------------------------------------------------------------------------------
  function paintBook() {
    const asks = book.sorted("asks").slice(0, BOOK_LEVELS);
    const bids = book.sorted("bids").slice(0, BOOK_LEVELS);
    const cumulate = (levels) => {
      let total = D.zero;
      return levels.map(([price, qty]) => {
        total = D.add(total, dec(qty));
        return { price, qty, total };
      });
    };
    const askRows = cumulate(asks);
    const bidRows = cumulate(bids);
    const deepest = [askRows.at(-1), bidRows.at(-1)].filter(Boolean).map((r) => Number(D.text(r.total)));
    const max = Math.max(...deepest, 0) || 1;
    const row = (side, level) => {
      const depth = Math.min(100, (Number(D.text(level.total)) / max) * 100).toFixed(1);
      const mine = myLevels[side].has(level.price);
      return `<tr class="level ${side === "bids" ? "bid" : "ask"}${mine ? " mine" : ""}" data-side="${side === "bids" ? "buy" : "sell"}"
          data-price="${escapeHtml(level.price)}" data-quantity="${escapeHtml(canon(level.qty))}" style="--depth:${depth}%"
          title="${mine ? "Includes your order" : "Click to use this price"}">
        <td class="num mono ${side === "bids" ? "up" : "down"}">${show(level.price, pricePlaces)}</td>
        <td class="num mono">${show(level.qty, qtyPlaces)}</td>
        <td class="num mono muted">${show(D.text(level.total), qtyPlaces)}</td></tr>`;
    };
    if (!askRows.length && !bidRows.length) {
      ladder.innerHTML = `<tr><td colspan="3" class="empty-state">No resting orders yet.</td></tr>`;
    } else {
      const bestAsk = askRows[0];
      const bestBid = bidRows[0];
      const spread = bestAsk && bestBid ? show(D.text(D.sub(dec(bestAsk.price), dec(bestBid.price))), pricePlaces) : "—";
      ladder.innerHTML =
        askRows.reverse().map((l) => row("asks", l)).join("") +
        `<tr class="spread-row"><td class="num mono" data-field="book-last">${lastPrice ? show(lastPrice, pricePlaces) : "—"}</td>
          <td colspan="2" class="num muted small">Spread <span class="mono" data-field="spread">${spread}</span></td></tr>` +
        bidRows.map((l) => row("bids", l)).join("");
    }
    page.dataset.bookSequence = String(book.sequence ?? "");
    if (trading) trading.estimate();
  }

  // --- tape -----------------------------------------------------------------------------------
  function tradeRow(t) {
    const time = t.time ? new Date(t.time).toLocaleTimeString() : "";
    return `<tr data-trade="${escapeHtml(t.id ?? "")}"><td class="muted">${escapeHtml(time)}</td>
      <td class="num mono ${t.side === "buy" ? "up" : "down"}">${show(t.price, pricePlaces)}</td>
      <td class="num mono">${show(t.quantity, qtyPlaces)}</td></tr>`;
  }

  function paintTrades(message) {
    if (message.type === "snapshot") {
      const trades = Array.isArray(message.data) ? message.data : [];
      if (trades.length) lastPrice = trades[0].price;
      tape.innerHTML = trades.length
        ? trades.slice(0, TAPE_LENGTH).map(tradeRow).join("")
        : `<tr><td colspan="3" class="empty-state">No trades yet.</td></tr>`;
      return;
    }
    // an update carries one trade, at the top level of the frame (or under data)
    const trade = message.data && !Array.isArray(message.data) ? message.data : message;
    if (!trade.price) return;
    lastPrice = trade.price;
    $(tape, ".empty-state")?.closest("tr").remove();
    tape.insertAdjacentHTML("afterbegin", tradeRow(trade));
    while (tape.rows.length > TAPE_LENGTH) tape.deleteRow(-1);
    const cell = $(ladder, "[data-field=book-last]");
    if (cell) cell.textContent = show(lastPrice, pricePlaces);
    if (trading) trading.publicTrade();
  }

  const bookChannel = `book:${symbol}`;
  const tradesChannel = `trades:${symbol}`;
  const market = new MarketStream([bookChannel, tradesChannel], (message) => {
    if (message.event === "disconnected") {
      book.reset(); // the next connection starts from a snapshot
      return;
    }
    if (message.channel === bookChannel) {
      if (message.type === "snapshot") {
        book.snapshot(message);
        paintBook();
      } else if (!book.delta(message)) {
        book.reset();
        page.dataset.bookResyncs = String(Number(page.dataset.bookResyncs || 0) + 1);
        market.resubscribe(bookChannel);
      } else {
        paintBook();
      }
    } else if (message.channel === tradesChannel) {
      paintTrades(message);
    }
  });

  ladder.addEventListener("click", (event) => {
    const level = event.target.closest("tr.level");
    if (level && trading) trading.usePrice(level.dataset.price);
  });

  page.dataset.trade = "ready";

  // --- the trader's side ------------------------------------------------------------------------
  function accountSide() {
    const ticket = $(page, "#spot-ticket");
    const form = $(ticket, "#order-form");
    const typeSelect = $(form, "#order-type");
    const tifSelect = $(form, "#order-tif");
    const inputs = {
      price: $(form, "#order-price"),
      stop: $(form, "#order-stop"),
      trail: $(form, "#order-trail"),
      trailMode: $(form, "#order-trail-mode"),
      quantity: $(form, "#order-quantity"),
      quote: $(form, "#order-quote"),
      postOnly: $(form, "#order-post-only"),
      iceberg: $(form, "#order-iceberg"),
      display: $(form, "#order-display"),
    };
    const submit = $(form, "#order-submit");
    const errorBox = $(form, "#order-error");
    const doneBox = $(form, "#order-done");
    const accountError = $(page, "#account-error");
    const takerFee = dec(cfg.taker_fee || "0") || D.zero;
    const band = dec(cfg.market_band || "0") || D.zero;

    let side = "buy";
    let marketIn = "base";
    let busy = false;
    let balances = new Map((cfg.balances || []).map((b) => [b.asset, b]));
    let openOrders = [];

    const type = () => typeSelect.value;

    // --- the form follows the side and the type ---------------------------------------------
    function layout() {
      const t = type();
      ticket.dataset.side = side;
      ticket.dataset.type = t;
      $$(form, "[data-side-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.sideChoice === side)));
      $$(form, "[data-market-in]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.marketIn === marketIn)));
      const byQuote = t === "market" && side === "buy" && marketIn === "quote";
      $$(form, "[data-types]").forEach((box) => {
        const types = box.dataset.types.split(" ");
        const sides = box.dataset.sides ? box.dataset.sides.split(" ") : ["buy", "sell"];
        setVisible(box, types.includes(t) && sides.includes(side));
      });
      setVisible($(form, "[data-qty=base]"), !byQuote);
      setVisible($(form, "[data-qty=quote]"), byQuote);
      // time in force: a market order is IOC or FOK (FOK cannot spend an amount); stops become market orders
      const allowed = t === "market" ? (byQuote ? ["IOC"] : ["IOC", "FOK"]) : ["GTC", "IOC", "FOK"];
      [...tifSelect.options].forEach((o) => {
        o.disabled = !allowed.includes(o.value);
        o.hidden = o.disabled;
      });
      if (!allowed.includes(tifSelect.value)) tifSelect.value = allowed[0];
      const gtcLimit = t === "limit" && tifSelect.value === "GTC";
      setVisible($(form, "[data-option=post-only]"), gtcLimit);
      setVisible($(form, "[data-option=iceberg]"), gtcLimit && !inputs.postOnly.checked);
      setVisible($(form, "[data-iceberg]"), gtcLimit && !inputs.postOnly.checked && inputs.iceberg.checked);
      $(form, "[data-help=stop]").textContent =
        side === "buy" ? "Triggers when a trade prints at or above it." : "Triggers when a trade prints at or below it.";
      submit.textContent = `${side === "buy" ? "Buy" : "Sell"} ${cfg.base}`;
      submit.classList.toggle("btn-buy", side === "buy");
      submit.classList.toggle("btn-sell", side === "sell");
      estimate();
    }

    const visible = (element) => element && !element.closest("[hidden]") && element.offsetParent !== null;

    function body() {
      const t = type();
      const data = { symbol, side, type: t, client_order_id: clientOrderId() };
      const put = (key, input) => {
        const value = input.value.trim();
        if (value) data[key] = value;
      };
      const byQuote = t === "market" && side === "buy" && marketIn === "quote";
      if (byQuote) put("quote_quantity", inputs.quote);
      else put("quantity", inputs.quantity);
      if (t === "limit" || t === "stop_limit") put("price", inputs.price);
      if (t === "stop_market" || t === "stop_limit") put("stop_price", inputs.stop);
      if (t === "trailing_stop") put(inputs.trailMode.value === "percent" ? "trail_percent" : "trail_amount", inputs.trail);
      if (t === "limit" || t === "stop_limit" || t === "market") data.time_in_force = tifSelect.value;
      if (visible(inputs.postOnly) && inputs.postOnly.checked) data.post_only = true;
      if (visible(inputs.display) && inputs.iceberg.checked) put("display_quantity", inputs.display);
      return data;
    }

    // --- errors next to their fields ------------------------------------------------------------
    function clearErrors() {
      $$(form, "[data-errors-for]").forEach((list) => {
        list.innerHTML = "";
        list.closest(".field")?.classList.remove("field-invalid");
      });
      errorBox.innerHTML = "";
      setVisible(errorBox, false);
    }

    function showErrors(error) {
      clearErrors();
      const placed = new Set();
      for (const [field, messages] of Object.entries(error.fields || {})) {
        const list = $$(form, "[data-errors-for]").find((l) => l.dataset.errorsFor.split(" ").includes(field) && visible(l.parentElement));
        const texts = (Array.isArray(messages) ? messages : [messages]).map(String);
        if (!list) continue;
        list.innerHTML = texts.map((m) => `<li>${escapeHtml(m)}</li>`).join("");
        list.closest(".field")?.classList.add("field-invalid");
        texts.forEach((m) => placed.add(m));
        placed.add(field);
      }
      const general = [];
      if (!placed.has(error.message)) general.push(error.message);
      for (const [field, messages] of Object.entries(error.fields || {})) {
        if (!placed.has(field)) general.push(...(Array.isArray(messages) ? messages : [messages]).map(String));
      }
      errorBox.innerHTML = general.map((m) => `<li>${escapeHtml(m)}</li>`).join("");
      setVisible(errorBox, general.length > 0);
      ticket.dataset.error = error.code || "error";
    }

    // --- estimate ----------------------------------------------------------------------------------
    // Walks the visible book: what a marketable quantity (or amount) would cost.
    function walk(levels, quantity, amount) {
      let filled = D.zero;
      let spent = D.zero;
      for (const [price, qty] of levels) {
        const p = dec(price);
        let q = dec(qty);
        if (quantity) {
          const left = D.sub(quantity, filled);
          if (D.cmp(q, left) > 0) q = left;
        } else {
          const left = D.sub(amount, spent);
          const fits = D.fitSteps(left, p, lot);
          if (D.cmp(q, fits) > 0) q = fits;
        }
        if (q.n <= 0n) break;
        filled = D.add(filled, q);
        spent = D.add(spent, D.mul(p, q));
      }
      const complete = quantity ? D.cmp(filled, quantity) >= 0 : true;
      return { filled, spent, complete };
    }

    function referencePrice() {
      const t = type();
      if (t === "limit" || t === "stop_limit") return dec(inputs.price.value);
      if (t === "stop_market") return dec(inputs.stop.value);
      const best = book.best(side === "buy" ? "asks" : "bids");
      return best ? dec(best[0]) : lastPrice ? dec(lastPrice) : null;
    }

    function estimate() {
      const t = type();
      const quoteAsset = cfg.quote;
      const baseAsset = cfg.base;
      const availableAsset = side === "buy" ? quoteAsset : baseAsset;
      const balance = balances.get(availableAsset);
      $(form, "[data-field=available]").textContent = balance
        ? `${show(balance.available, availableAsset === quoteAsset ? quotePlaces : qtyPlaces)} ${availableAsset}`
        : "—";
      $(form, "[data-field=estimate-label]").textContent = side === "buy" ? "Est. cost" : "Est. proceeds";
      const estimateCell = $(form, "[data-field=estimate]");
      const feeCell = $(form, "[data-field=fee]");
      let notional = null;
      let quantity = dec(inputs.quantity.value);
      let note = "";
      if (t === "market") {
        const levels = book.sorted(side === "buy" ? "asks" : "bids");
        if (side === "buy" && marketIn === "quote") {
          const amount = dec(inputs.quote.value);
          if (amount) {
            notional = amount;
            quantity = walk(levels, null, amount).filled;
          }
        } else if (quantity) {
          const result = walk(levels, quantity, null);
          notional = result.spent;
          if (!result.complete) note = " (more than the book shows)";
        }
      } else if (quantity) {
        const price = referencePrice();
        if (price) notional = D.mul(price, quantity);
      }
      if (!notional || notional.n === 0n) {
        estimateCell.textContent = "—";
        feeCell.textContent = "—";
        estimateCell.classList.remove("down");
        return;
      }
      estimateCell.textContent = `≈ ${show(D.text(notional), quotePlaces)} ${quoteAsset}${note}`;
      const short = balance && dec(balance.available) && D.cmp(side === "buy" ? notional : quantity || D.zero, dec(balance.available)) > 0;
      estimateCell.classList.toggle("down", Boolean(short));
      estimateCell.title = short ? `More than your available ${availableAsset}` : "";
      // fees are taken from what you receive: the base on a buy, the quote on a sell (taker rate: at most)
      feeCell.textContent =
        side === "buy"
          ? quantity
            ? `≤ ${canon(D.text(D.mul(quantity, takerFee)))} ${baseAsset}`
            : "—"
          : `≤ ${show(D.text(D.mul(notional, takerFee)), quotePlaces)} ${quoteAsset}`;
    }

    function fillShare(pct) {
      const share = { n: BigInt(pct), s: 2 };
      if (side === "sell") {
        const available = dec(balances.get(cfg.base)?.available || "0");
        inputs.quantity.value = D.text(D.fitSteps(D.mul(available, share), { n: 1n, s: 0 }, lot));
      } else {
        const available = D.mul(dec(balances.get(cfg.quote)?.available || "0"), share);
        if (type() === "market" && marketIn === "quote") {
          inputs.quote.value = D.text(D.round(available, quotePlaces, "down"));
        } else {
          let price = referencePrice();
          if (!price) return;
          // orders without a limit price hold at a protection price above the market
          if (!["limit", "stop_limit"].includes(type())) price = D.mul(price, D.add({ n: 1n, s: 0 }, band));
          inputs.quantity.value = D.text(D.fitSteps(available, price, lot));
        }
      }
      estimate();
    }

    // --- submit -------------------------------------------------------------------------------------
    async function place(event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      submit.disabled = true;
      clearErrors();
      setVisible(doneBox, false);
      delete ticket.dataset.error;
      try {
        const order = await api("/api/v1/orders?wait=1", { method: "POST", body: JSON.stringify(body()) });
        const what = `${order.side === "buy" ? "Buy" : "Sell"} ${order.quantity ? `${show(order.quantity, qtyPlaces)} ${cfg.base}` : `${show(order.quote_quantity, quotePlaces)} ${cfg.quote}`}`;
        const at = order.price ? ` at ${show(order.price, pricePlaces)}` : "";
        const filled = order.filled_quantity && dec(order.filled_quantity).n > 0n
          ? ` · filled ${show(order.filled_quantity, qtyPlaces)}${order.average_price ? ` @ ${show(order.average_price, pricePlaces)}` : ""}`
          : "";
        doneBox.textContent = `Order #${order.id} ${statusLabel(order.status).toLowerCase()}: ${what}${at}${filled}.`;
        doneBox.classList.toggle("alert-warning", order.status === "rejected" || order.status === "cancelled");
        doneBox.classList.toggle("alert-success", !(order.status === "rejected" || order.status === "cancelled"));
        setVisible(doneBox, true);
        ticket.dataset.placed = String(order.id);
        upsertOpen(order);
        refresh(["open", "history", "fills", "balances"]);
      } catch (error) {
        showErrors(error);
      } finally {
        busy = false;
        submit.disabled = false;
      }
    }

    // --- account tables --------------------------------------------------------------------------------
    const TYPE_LABEL = { limit: "Limit", market: "Market", stop_limit: "Stop-limit", stop_market: "Stop-market", trailing_stop: "Trailing" };
    const STATUS = {
      new: ["badge-info", "New"],
      open: ["badge-info", "Open"],
      partially_filled: ["badge-warning", "Partially filled"],
      triggered_pending: ["badge-plain", "Waiting for trigger"],
      filled: ["badge-success", "Filled"],
      cancelled: ["badge-plain", "Cancelled"],
      rejected: ["badge-danger", "Rejected"],
    };
    const statusLabel = (status) => (STATUS[status] || ["", status])[1];
    const when = (iso, withDate = false) => {
      if (!iso) return "";
      const d = new Date(iso);
      return withDate ? `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${d.toLocaleTimeString()}` : d.toLocaleTimeString();
    };

    function typeCell(o) {
      const flags = [];
      if (o.time_in_force && o.type !== "stop_market" && o.type !== "trailing_stop" && !(o.type === "limit" && o.time_in_force === "GTC") && !(o.type === "market" && o.time_in_force === "IOC")) flags.push(o.time_in_force);
      if (o.post_only) flags.push("post-only");
      if (o.display_quantity) flags.push(`iceberg ${show(o.display_quantity, qtyPlaces)}`);
      return `${TYPE_LABEL[o.type] || escapeHtml(o.type || "")}${flags.length ? ` <span class="muted small">${escapeHtml(flags.join(" · "))}</span>` : ""}`;
    }

    function trigger(o) {
      if (o.stop_price) return show(o.stop_price, pricePlaces);
      if (o.trail_amount) return `trail ${show(o.trail_amount, pricePlaces)}`;
      if (o.trail_percent) return `trail ${canon(o.trail_percent)}%`;
      return "—";
    }

    const amountOf = (o) => (o.quantity ? show(o.quantity, qtyPlaces) : o.quote_quantity ? `${show(o.quote_quantity, quotePlaces)} ${cfg.quote}` : "—");
    const badge = (o) => {
      const [cls, label] = STATUS[o.status] || ["", o.status];
      const reason = o.reject_reason || o.cancel_reason;
      return `<span class="badge ${cls}" data-field="status"${reason ? ` title="${escapeHtml(reason)}"` : ""}>${escapeHtml(label)}</span>`;
    };

    function paintOpen() {
      const body = $(page, "#open-orders tbody");
      const rows = openOrders.filter((o) => LIVE.has(o.status) && (!o.symbol || o.symbol === symbol));
      $(page, "[data-field=open-count]").textContent = String(rows.length);
      // the ladder marks the levels holding your resting limit orders
      myLevels = { bids: new Set(), asks: new Set() };
      rows.forEach((o) => {
        if (o.price && (o.type === "limit" || o.status !== "triggered_pending")) (o.side === "buy" ? myLevels.bids : myLevels.asks).add(canon(o.price));
      });
      if (!rows.length) {
        body.innerHTML = `<tr><td colspan="9" class="empty-state">No open orders.</td></tr>`;
      } else {
        body.innerHTML = rows
          .map(
            (o) => `<tr data-order="${o.id}" data-status="${escapeHtml(o.status)}" data-side="${escapeHtml(o.side)}">
              <td class="muted">${escapeHtml(when(o.created_at))}</td>
              <td>${typeCell(o)}</td>
              <td class="${o.side === "buy" ? "up" : "down"}">${o.side === "buy" ? "Buy" : "Sell"}</td>
              <td class="num mono" data-field="price">${o.price ? show(o.price, pricePlaces) : "Market"}</td>
              <td class="num mono">${trigger(o)}</td>
              <td class="num mono" data-field="quantity">${amountOf(o)}</td>
              <td class="num mono" data-field="filled">${show(o.filled_quantity || "0", qtyPlaces)}</td>
              <td>${badge(o)}</td>
              <td class="num"><button type="button" class="btn btn-danger btn-sm" data-cancel="${o.id}"${o.cancelling ? " disabled" : ""}>Cancel</button></td>
            </tr>`,
          )
          .join("");
      }
      paintBook();
    }

    function paintHistory(orders) {
      const body = $(page, "#order-history tbody");
      if (!orders.length) {
        body.innerHTML = `<tr><td colspan="9" class="empty-state">No finished orders yet.</td></tr>`;
        return;
      }
      body.innerHTML = orders
        .map(
          (o) => `<tr data-order="${o.id}" data-status="${escapeHtml(o.status)}" data-side="${escapeHtml(o.side)}">
            <td class="muted">${escapeHtml(when(o.created_at, true))}</td>
            <td>${typeCell(o)}</td>
            <td class="${o.side === "buy" ? "up" : "down"}">${o.side === "buy" ? "Buy" : "Sell"}</td>
            <td class="num mono">${o.price ? show(o.price, pricePlaces) : "Market"}</td>
            <td class="num mono" data-field="average">${o.average_price ? show(o.average_price, pricePlaces) : "—"}</td>
            <td class="num mono">${amountOf(o)}</td>
            <td class="num mono" data-field="filled">${show(o.filled_quantity || "0", qtyPlaces)}</td>
            <td class="num mono">${o.fees_paid && dec(o.fees_paid).n > 0n ? canon(o.fees_paid) : "—"}</td>
            <td>${badge(o)}</td>
          </tr>`,
        )
        .join("");
    }

    function paintFills(fills) {
      const body = $(page, "#fills tbody");
      if (!fills.length) {
        body.innerHTML = `<tr><td colspan="7" class="empty-state">No fills yet.</td></tr>`;
        return;
      }
      body.innerHTML = fills
        .map(
          (f) => `<tr data-fill="${escapeHtml(f.trade_id ?? "")}" data-order="${escapeHtml(f.order_id ?? "")}" data-side="${escapeHtml(f.side || "")}">
            <td class="muted">${escapeHtml(when(f.time, true))}</td>
            <td class="${f.side === "buy" ? "up" : "down"}">${f.side === "buy" ? "Buy" : f.side === "sell" ? "Sell" : ""}</td>
            <td class="num mono" data-field="price">${show(f.price, pricePlaces)}</td>
            <td class="num mono" data-field="quantity">${show(f.quantity, qtyPlaces)}</td>
            <td class="num mono">${f.quote_amount ? show(f.quote_amount, quotePlaces) : "—"}</td>
            <td class="num mono" data-field="fee">${f.fee ? `${canon(f.fee)} ${escapeHtml(f.fee_asset || "")}` : "—"}</td>
            <td class="muted" data-field="liquidity">${f.liquidity === "maker" ? "Maker" : f.liquidity === "taker" ? "Taker" : ""}</td>
          </tr>`,
        )
        .join("");
    }

    function paintBalances(list) {
      if (!Array.isArray(list)) return;
      list.forEach((b) => b && b.asset && balances.set(b.asset, b));
      const body = $(page, "#balances tbody");
      const shown = [cfg.quote, cfg.base, ...[...balances.keys()].filter((a) => a !== cfg.quote && a !== cfg.base)];
      body.innerHTML = shown
        .filter((asset) => balances.has(asset))
        .map((asset) => {
          const b = balances.get(asset);
          const places = asset === cfg.quote ? quotePlaces : qtyPlaces;
          return `<tr data-asset="${escapeHtml(asset)}"><td>${escapeHtml(asset)}</td>
            <td class="num mono" data-field="available">${show(b.available, places)}</td>
            <td class="num mono" data-field="held">${show(b.held, places)}</td>
            <td class="num mono" data-field="total">${show(b.total, places)}</td></tr>`;
        })
        .join("");
      estimate();
    }

    function upsertOpen(order) {
      const at = openOrders.findIndex((o) => o.id === order.id);
      if (at >= 0) openOrders[at] = { ...openOrders[at], ...order };
      else if (LIVE.has(order.status)) openOrders.unshift(order);
      openOrders = openOrders.filter((o) => !TERMINAL.has(o.status));
      paintOpen();
    }

    // --- fetching: one round at a time, the newest wins ------------------------------------------------
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
      if (kinds.has("open")) jobs.push(api(`/api/v1/orders?status=open&symbol=${q}`).then((r) => {
        openOrders = (r.results || r).map((o) => ({ ...o, cancelling: openOrders.find((p) => p.id === o.id)?.cancelling }));
        paintOpen();
      }));
      if (kinds.has("history")) jobs.push(api(`/api/v1/orders?status=closed&symbol=${q}`).then((r) => paintHistory(r.results || r)));
      if (kinds.has("fills")) jobs.push(api(`/api/v1/fills?symbol=${q}&limit=50`).then(paintFills));
      if (kinds.has("balances")) jobs.push(api("/api/v1/balances").then(paintBalances));
      const results = await Promise.allSettled(jobs);
      running = false;
      const failed = results.find((r) => r.status === "rejected");
      if (failed) {
        kinds.forEach((k) => pending.add(k)); // try again on the next round
        if (failed.reason && failed.reason.status === 403) {
          accountError.innerHTML = `<li>${escapeHtml(failed.reason.message)} <a href="/login/?next=${encodeURIComponent(location.pathname)}">Sign in again</a>.</li>`;
          setVisible(accountError, true);
        }
      }
      page.dataset.refreshes = String(Number(page.dataset.refreshes || 0) + 1);
    }

    // --- cancel ---------------------------------------------------------------------------------------
    $(page, "#open-orders").addEventListener("click", async (event) => {
      const button = event.target.closest("[data-cancel]");
      if (!button) return;
      const id = Number(button.dataset.cancel);
      const order = openOrders.find((o) => o.id === id);
      if (order) order.cancelling = true;
      button.disabled = true;
      setVisible(accountError, false);
      try {
        const result = await api(`/api/v1/orders/${id}`, { method: "DELETE" });
        upsertOpen(result);
      } catch (error) {
        if (order) order.cancelling = false;
        button.disabled = false;
        accountError.innerHTML = `<li>Order #${id}: ${escapeHtml(error.message)}</li>`;
        setVisible(accountError, true);
      }
      refresh(["open", "history", "balances"]);
    });

    // --- tabs ----------------------------------------------------------------------------------------------
    const tabs = $$(page, "#spot-account [role=tab]");
    function selectTab(tab) {
      tabs.forEach((t) => {
        const selected = t === tab;
        t.setAttribute("aria-selected", String(selected));
        t.tabIndex = selected ? 0 : -1;
        setVisible(document.getElementById(t.getAttribute("aria-controls")), selected);
      });
    }
    tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => selectTab(tab));
      tab.addEventListener("keydown", (event) => {
        const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (!step) return;
        const next = tabs[(index + step + tabs.length) % tabs.length];
        selectTab(next);
        next.focus();
      });
    });

    // --- the user stream ------------------------------------------------------------------------------------
    let pollTimer = null;
    function polling(on) {
      if (on && !pollTimer) pollTimer = setInterval(() => refresh(["open", "history", "fills", "balances"]), POLL_MS);
      if (!on && pollTimer) {
        clearInterval(pollTimer);
        pollTimer = null;
      }
    }

    const stream = new UserStream(
      (message) => {
        const kind = message.type || message.event;
        if (kind === "snapshot") {
          if (Array.isArray(message.orders)) {
            openOrders = message.orders.filter((o) => LIVE.has(o.status) && (!o.symbol || o.symbol === symbol));
            paintOpen();
          } else refresh(["open"]);
          if (Array.isArray(message.balances)) paintBalances(message.balances);
          else refresh(["balances"]);
          refresh(["history", "fills"]);
        } else if (kind === "order") {
          if (message.symbol && message.symbol !== symbol) return refresh(["balances"]);
          const known = openOrders.find((o) => o.id === (message.id ?? message.order_id));
          if (known) upsertOpen({ ...known, ...message, id: known.id });
          refresh(["open", "history"]); // the event is partial: the API has the whole order
        } else if (kind === "fill") {
          refresh(message.symbol && message.symbol !== symbol ? ["balances"] : ["fills", "open", "balances"]);
        } else if (kind === "balances") {
          if (Array.isArray(message.balances)) paintBalances(message.balances);
          else refresh(["balances"]);
        } else if (kind === "balance_changed") {
          refresh(["balances"]);
        }
      },
      (state) => {
        const live = state === "live";
        if (live) setConnection("conn-user", "live", "Account: live");
        else if (state === "signed-out") setConnection("conn-user", "offline", "Account: signed out");
        else setConnection("conn-user", "polling", "Account: polling");
        polling(!live);
        if (!live) refresh(["open", "history", "fills", "balances"]);
      },
    );

    // --- wiring -----------------------------------------------------------------------------------------------
    $$(form, "[data-side-choice]").forEach((b) =>
      b.addEventListener("click", () => {
        side = b.dataset.sideChoice;
        clearErrors();
        layout();
      }),
    );
    $$(form, "[data-market-in]").forEach((b) =>
      b.addEventListener("click", () => {
        marketIn = b.dataset.marketIn;
        layout();
      }),
    );
    $$(form, "[data-pct]").forEach((b) => b.addEventListener("click", () => fillShare(Number(b.dataset.pct))));
    typeSelect.addEventListener("change", () => {
      tifSelect.value = type() === "market" ? "IOC" : "GTC"; // each type starts from its usual time in force
      clearErrors();
      layout();
    });
    [tifSelect, inputs.postOnly, inputs.iceberg].forEach((el) => el.addEventListener("change", layout));
    form.addEventListener("input", estimate);
    form.addEventListener("submit", place);
    layout();
    paintBalances([...balances.values()]);
    refresh(["open", "history", "fills", "balances"], 0);
    ticket.dataset.ready = "true";

    return {
      estimate,
      usePrice(price) {
        if (!["limit", "stop_limit"].includes(type())) {
          typeSelect.value = "limit";
          layout();
        }
        inputs.price.value = price;
        estimate();
        inputs.quantity.focus();
      },
      publicTrade() {
        // a print on this market may be ours: without the user stream, look now instead of at the next poll
        if (!stream.live) refresh(["open", "history", "fills", "balances"], 300);
      },
    };
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=market]");
  const config = document.getElementById("trade-config");
  if (page && config && document.getElementById("orderbook")) tradingPage(page, JSON.parse(config.textContent));
});
