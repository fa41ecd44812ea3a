// The order book: the model kept from the book: channel (a snapshot, then deltas applied by
// sequence) and the ladder that paints it. A delta that cannot follow what the page holds,
// or that leaves the book crossed, asks the server for a fresh snapshot.
import { add, canonical, cmp, isZero, parse, percentOf, sub, toText, ZERO } from "../lib/decimal.js";
import { formatNumber } from "../lib/format.js";
import { countUp, escapeHtml } from "../lib/dom.js";

const LEVELS = 12;

export class OrderBook {
  constructor() {
    this.reset();
  }

  reset() {
    this.sequence = null; // null: waiting for a snapshot, deltas are dropped
    this.bids = new Map(); // canonical price -> quantity string
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
      for (const [price, quantity] of levels || []) {
        const qty = parse(quantity);
        if (!qty || isZero(qty)) side.delete(canonical(price));
        else side.set(canonical(price), String(quantity));
      }
    }
  }

  // [[price, quantity], ...] best first.
  sorted(side) {
    const entries = [...(side === "bids" ? this.bids : this.asks).entries()];
    const byPrice = (a, b) => cmp(parse(a[0]), parse(b[0]));
    return side === "bids" ? entries.sort((a, b) => byPrice(b, a)) : entries.sort(byPrice);
  }

  best(side) {
    return this.sorted(side)[0] || null;
  }

  // Only a lost delta can leave a bid at or above an ask.
  crossed() {
    const bid = this.best("bids");
    const ask = this.best("asks");
    return Boolean(bid && ask && cmp(parse(bid[0]), parse(ask[0])) >= 0);
  }
}

// Levels with their running totals, best first.
function cumulate(levels) {
  let total = ZERO;
  return levels.map(([price, qty]) => {
    total = add(total, parse(qty));
    return { price, qty, total };
  });
}

// The ladder on #orderbook, fed by the book: channel. onChange runs after every repaint (the
// ticket's estimate walks the same book); onPick(price) when a level is clicked.
export function startBook(page, { symbol, feed, pricePlaces, qtyPlaces, onChange = () => {}, onPick = () => {} }) {
  const ladder = page.querySelector("#orderbook tbody");
  const book = new OrderBook();
  const channel = `book:${symbol}`;
  const price = (value) => formatNumber(value, { places: pricePlaces });
  const size = (value) => formatNumber(value, { places: qtyPlaces });
  let lastPrice = null;
  let mine = { bids: new Set(), asks: new Set() };

  function row(side, level, deepest) {
    const bid = side === "bids";
    const held = mine[side].has(level.price);
    return `<tr class="level ${bid ? "bid" : "ask"}${held ? " mine" : ""}" data-side="${bid ? "buy" : "sell"}"
        data-price="${escapeHtml(level.price)}" data-quantity="${escapeHtml(canonical(level.qty))}"
        style="--depth:${percentOf(level.total, deepest).toFixed(1)}%"
        title="${held ? "Includes your order" : "Click to use this price"}">
      <td class="num mono ${bid ? "up" : "down"}">${price(level.price)}</td>
      <td class="num mono">${size(level.qty)}</td>
      <td class="num mono muted">${size(toText(level.total))}</td></tr>`;
  }

  function paint() {
    const askRows = cumulate(book.sorted("asks").slice(0, LEVELS));
    const bidRows = cumulate(book.sorted("bids").slice(0, LEVELS));
    if (!askRows.length && !bidRows.length) {
      ladder.innerHTML = `<tr><td colspan="3" class="empty-state">No resting orders yet.</td></tr>`;
    } else {
      // bars are relative to the deeper side's total
      const totals = [askRows.at(-1), bidRows.at(-1)].filter(Boolean).map((r) => r.total);
      const deepest = totals.reduce((a, b) => (cmp(a, b) >= 0 ? a : b));
      const bestAsk = askRows[0];
      const bestBid = bidRows[0];
      const spread = bestAsk && bestBid ? price(toText(sub(parse(bestAsk.price), parse(bestBid.price)))) : "—";
      ladder.innerHTML =
        [...askRows].reverse().map((l) => row("asks", l, deepest)).join("") +
        `<tr class="spread-row"><td class="num mono" data-field="book-last">${lastPrice ? price(lastPrice) : "—"}</td>
          <td colspan="2" class="num muted small">Spread <span class="mono" data-field="spread">${spread}</span></td></tr>` +
        bidRows.map((l) => row("bids", l, deepest)).join("");
    }
    page.dataset.bookSequence = String(book.sequence ?? "");
    onChange();
  }

  feed.subscribe([channel], (message) => {
    if (message.type === "snapshot") {
      book.snapshot(message);
      paint();
    } else if (!book.delta(message)) {
      book.reset();
      countUp(page, "bookResyncs");
      feed.resubscribe(channel);
    } else {
      paint();
    }
  });
  // a new connection starts from a snapshot: nothing may be applied on top of the old book
  feed.onState((state) => state === "offline" && book.reset());

  ladder.addEventListener("click", (event) => {
    const level = event.target.closest("tr.level");
    if (level) onPick(level.dataset.price);
  });

  return {
    book,
    get lastPrice() {
      return lastPrice;
    },
    // The last trade's price, shown between the sides.
    setLast(value) {
      lastPrice = value;
      const cell = ladder.querySelector("[data-field=book-last]");
      if (cell) cell.textContent = price(lastPrice);
    },
    // The trader's resting levels ({bids, asks}: sets of canonical prices), marked "mine".
    setMine(levels) {
      mine = levels;
      paint();
    },
  };
}
