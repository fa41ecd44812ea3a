// The order book: the model kept from the book: channel (a snapshot, then deltas applied by
// sequence), the ladder that paints it (its levels grouped to the chosen price step) and the
// depth chart (cumulative bids and asks). A delta that cannot follow what the page holds, or
// that leaves the book crossed, asks the server for a fresh snapshot.
import { add, canonical, cmp, isZero, parse, percentOf, placesOf, sub, toText, ZERO } from "../lib/decimal.js";
import { formatNumber } from "../lib/format.js";
import { countUp, escapeHtml } from "../lib/dom.js";

const LEVELS = 12;
const DEPTH_WIDTH = 300;
const DEPTH_HEIGHT = 120;

const pow10 = (k) => 10n ** BigInt(k);

// A price put on a grid of `step` (a positive decimal): bids down to it, asks up to it, so a
// grouped level never shows a better price than its orders'. Exact decimals, never floats.
export function groupPrice(price, step, side) {
  const p = parse(price);
  const g = parse(step);
  if (!p || !g || g.n <= 0n) return canonical(price);
  const scale = Math.max(p.s, g.s);
  const pn = p.n * pow10(scale - p.s);
  const gn = g.n * pow10(scale - g.s);
  let q = pn / gn;
  if (side === "asks" && q * gn < pn) q += 1n;
  return canonical(toText({ n: q * gn, s: scale }));
}

// [[price, quantity], ...] (best first) merged into levels of `step`, still best first.
export function groupLevels(levels, step, side) {
  const merged = new Map();
  for (const [price, qty] of levels) {
    const key = groupPrice(price, step, side);
    const sum = merged.get(key);
    merged.set(key, sum ? add(sum, parse(qty)) : parse(qty));
  }
  return [...merged.entries()].map(([price, qty]) => [price, toText(qty)]);
}

// The groupings a market offers: its tick, then ten, a hundred and a thousand ticks.
export function groupSteps(tick) {
  const t = parse(tick);
  if (!t || t.n <= 0n) return [];
  return [0, 1, 2, 3].map((k) => canonical(toText({ n: t.n * pow10(k), s: t.s })));
}

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
export function startBook(page, { symbol, feed, pricePlaces, qtyPlaces, tickSize, lastPrice: initialLast = null, onChange = () => {}, onPick = () => {} }) {
  const ladder = page.querySelector("#orderbook tbody");
  const grouping = page.querySelector("#book-grouping");
  const depth = page.querySelector("#depth-chart");
  const book = new OrderBook();
  const channel = `book:${symbol}`;
  const steps = groupSteps(tickSize);
  let step = steps[0] || null;
  // a grouped level shows the step's places (at least the tick's)
  const places = () => (step ? Math.max(0, Math.min(pricePlaces, placesOf(step))) : pricePlaces);
  const price = (value) => formatNumber(value, { places: places() });
  const lastText = (value) => formatNumber(value, { places: pricePlaces });
  const size = (value) => formatNumber(value, { places: qtyPlaces });
  let lastPrice = initialLast || null;
  let mine = { bids: new Set(), asks: new Set() };

  if (grouping && steps.length) {
    grouping.innerHTML = steps.map((s) => `<option value="${escapeHtml(s)}">${escapeHtml(s)}</option>`).join("");
    grouping.value = step;
    grouping.addEventListener("change", () => {
      step = grouping.value;
      page.dataset.bookGrouping = step;
      paint();
    });
    page.dataset.bookGrouping = step;
  }

  // the levels of one side as painted: grouped to the step
  const levelsOf = (side) => {
    const levels = book.sorted(side);
    return step && step !== steps[0] ? groupLevels(levels, step, side) : levels;
  };
  const isMine = (side, levelPrice) => {
    if (!step || step === steps[0]) return mine[side].has(levelPrice);
    for (const p of mine[side]) if (groupPrice(p, step, side) === levelPrice) return true;
    return false;
  };

  function row(side, level, deepest) {
    const bid = side === "bids";
    const held = isMine(side, canonical(level.price));
    return `<tr class="level ${bid ? "bid" : "ask"}${held ? " mine" : ""}" data-side="${bid ? "buy" : "sell"}"
        data-price="${escapeHtml(level.price)}" data-quantity="${escapeHtml(canonical(level.qty))}"
        style="--depth:${percentOf(level.total, deepest).toFixed(1)}%"
        title="${held ? "Includes your order" : "Click to use this price"}">
      <td class="num mono ${bid ? "up" : "down"}">${price(level.price)}</td>
      <td class="num mono">${size(level.qty)}</td>
      <td class="num mono muted">${size(toText(level.total))}</td></tr>`;
  }

  function paint() {
    const askRows = cumulate(levelsOf("asks").slice(0, LEVELS));
    const bidRows = cumulate(levelsOf("bids").slice(0, LEVELS));
    if (!askRows.length && !bidRows.length) {
      ladder.innerHTML = `<tr><td colspan="3" class="empty-state">No resting orders yet.</td></tr>`;
    } else {
      // bars are relative to the deeper side's total
      const totals = [askRows.at(-1), bidRows.at(-1)].filter(Boolean).map((r) => r.total);
      const deepest = totals.reduce((a, b) => (cmp(a, b) >= 0 ? a : b));
      const bestAsk = askRows[0];
      const bestBid = bidRows[0];
      const spread = bestAsk && bestBid ? lastText(toText(sub(parse(bestAsk.price), parse(bestBid.price)))) : "—";
      ladder.innerHTML =
        [...askRows].reverse().map((l) => row("asks", l, deepest)).join("") +
        `<tr class="spread-row"><td class="num mono" data-field="book-last">${lastPrice ? lastText(lastPrice) : "—"}</td>
          <td colspan="2" class="num muted small">Spread <span class="mono" data-field="spread">${spread}</span></td></tr>` +
        bidRows.map((l) => row("bids", l, deepest)).join("");
    }
    page.dataset.bookSequence = String(book.sequence ?? "");
    paintDepth();
    onChange();
  }

  // The depth chart: cumulative quantity against price, bids rising to the left of the
  // middle, asks to the right, over every level the book holds (not grouped).
  function paintDepth() {
    if (!depth) return;
    const bids = cumulate(book.sorted("bids"));
    const asks = cumulate(book.sorted("asks"));
    depth.dataset.bidLevels = String(bids.length);
    depth.dataset.askLevels = String(asks.length);
    depth.dataset.bidTotal = bids.length ? canonical(toText(bids.at(-1).total)) : "0";
    depth.dataset.askTotal = asks.length ? canonical(toText(asks.at(-1).total)) : "0";
    if (!bids.length && !asks.length) {
      depth.innerHTML = `<text x="${DEPTH_WIDTH / 2}" y="${DEPTH_HEIGHT / 2}" text-anchor="middle" class="depth-empty">No resting orders yet.</text>`;
      return;
    }
    // for pixels only: the chart's one use of floats
    const lows = bids.length ? +bids.at(-1).price : +asks[0].price;
    const highs = asks.length ? +asks.at(-1).price : +bids[0].price;
    const mid = bids.length && asks.length ? (+bids[0].price + +asks[0].price) / 2 : bids.length ? +bids[0].price : +asks[0].price;
    const half = Math.max(mid - lows, highs - mid, mid * 0.0001);
    const deepest = Math.max(...[bids.at(-1), asks.at(-1)].filter(Boolean).map((r) => +toText(r.total)));
    const x = (p) => ((p - (mid - half)) / (2 * half)) * DEPTH_WIDTH;
    const y = (q) => DEPTH_HEIGHT - (q / deepest) * (DEPTH_HEIGHT - 8);
    const area = (rows, edge) => {
      if (!rows.length) return "";
      let d = `M${x(+rows[0].price).toFixed(1)},${DEPTH_HEIGHT}`;
      let level = 0;
      for (const r of rows) {
        d += ` L${x(+r.price).toFixed(1)},${y(level).toFixed(1)}`;
        level = +toText(r.total);
        d += ` L${x(+r.price).toFixed(1)},${y(level).toFixed(1)}`;
      }
      return `${d} L${edge},${y(level).toFixed(1)} L${edge},${DEPTH_HEIGHT} Z`;
    };
    depth.innerHTML =
      `<path class="depth-bids" d="${area(bids, 0)}"></path>` +
      `<path class="depth-asks" d="${area(asks, DEPTH_WIDTH)}"></path>` +
      `<line class="depth-mid" x1="${x(mid).toFixed(1)}" x2="${x(mid).toFixed(1)}" y1="0" y2="${DEPTH_HEIGHT}"></line>`;
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
      if (!value) return;
      lastPrice = value;
      const cell = ladder.querySelector("[data-field=book-last]");
      if (cell) cell.textContent = lastText(lastPrice);
    },
    // The trader's resting levels ({bids, asks}: sets of canonical prices), marked "mine".
    setMine(levels) {
      mine = levels;
      paint();
    },
  };
}
