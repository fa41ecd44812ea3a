// The option ticket's payoff chart: what the quoted contracts make or lose at expiry across
// underlying prices, at the quoted premium. Pure functions (no DOM): the figures exactly
// from the API's decimal strings (lib/decimal.js), the curve as numbers for drawing, and the
// SVG as markup. A sell quote draws the same line: what holding to expiry would make over
// selling now.
import { add, mul, parse, sub, toText, ZERO } from "../lib/decimal.js";
import { escapeHtml } from "../lib/dom.js";
import { formatAmount, formatNumber } from "../lib/format.js";

// "BTC-20261225-100000-C" -> {underlying: "BTC", strike: "100000", kind: "call"}; null if not a series.
export function parseSeries(series) {
  const match = /^([A-Z]+)-(\d{8})-(\d+(?:\.\d+)?)-([CP])$/.exec(String(series || ""));
  if (!match) return null;
  return { underlying: match[1], expiry: match[2], strike: match[3], kind: match[4] === "C" ? "call" : "put" };
}

const positive = (d) => (d.n > 0n ? d : ZERO);

// The profit or loss at expiry, as a decimal string, if the underlying settles at `price`:
// contracts x (max(±(price − strike), 0) − premium).
export function payoffAt({ kind, strike, premium, contracts }, price) {
  const s = parse(price);
  const k = parse(strike);
  const intrinsic = positive(kind === "call" ? sub(s, k) : sub(k, s));
  return toText(mul(sub(intrinsic, parse(premium)), parse(contracts)));
}

// Breakeven price, the most the position can lose (the premium paid) and make (null: unlimited).
export function payoffSummary({ kind, strike, premium, contracts }) {
  const k = parse(strike);
  const p = parse(premium);
  const n = parse(contracts);
  const breakeven = kind === "call" ? add(k, p) : positive(sub(k, p));
  return {
    breakeven: toText(breakeven),
    maxLoss: toText(mul(p, n)),
    maxProfit: kind === "call" ? null : toText(mul(positive(sub(k, p)), n)),
  };
}

// The prices the chart spans: the strike, the breakeven and the index with room either side.
export function priceRange({ strike, index, breakeven }) {
  const points = [strike, index, breakeven].map(Number).filter((x) => Number.isFinite(x) && x > 0);
  const low = Math.min(...points);
  const high = Math.max(...points);
  const pad = Math.max((high - low) * 0.6, high * 0.08);
  return [Math.max(0, low - pad), high + pad];
}

// The curve to draw: [{price, pnl}] as numbers, `steps` even steps from low to high, plus
// the kink at the strike and the breakeven (exact there), in price order.
export function payoffCurve(position, [low, high], steps = 60) {
  const at = new Set();
  for (let i = 0; i <= steps; i += 1) at.add(low + ((high - low) * i) / steps);
  const { breakeven } = payoffSummary(position);
  for (const x of [Number(position.strike), Number(breakeven)]) if (x > low && x < high) at.add(x);
  return [...at]
    .sort((a, b) => a - b)
    .map((price) => ({ price, pnl: Number(payoffAt(position, price.toFixed(8))) }));
}

const r = (x) => Math.round(x * 10) / 10;

// The chart as SVG markup: the P/L line (green above zero, red below), the zero line, the
// index (dashed) and the breakeven (a dot). `labels` are the texts for the axes, made by the
// caller with lib/format.js: {low, high, strike, maxLoss, top}.
export function payoffSvg(points, { width = 320, height = 160, index, breakeven, labels = {} } = {}) {
  if (!points.length) return "";
  const pad = { left: 8, right: 8, top: 14, bottom: 20 };
  const lowX = points[0].price;
  const highX = points[points.length - 1].price;
  const pnls = points.map((p) => p.pnl);
  const worst = Math.min(0, ...pnls);
  let lowY = worst;
  let highY = Math.max(0, ...pnls);
  if (highY === lowY) highY = lowY + 1;
  const spanY = highY - lowY;
  lowY -= spanY * 0.08;
  highY += spanY * 0.08;
  const x = (price) => r(pad.left + ((price - lowX) / (highX - lowX || 1)) * (width - pad.left - pad.right));
  const y = (pnl) => r(pad.top + ((highY - pnl) / (highY - lowY)) * (height - pad.top - pad.bottom));
  const zero = y(0);
  const split = Math.min(1, Math.max(0, zero / height));
  const line = points.map((p) => `${x(p.price)},${y(p.pnl)}`).join(" ");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="100%" role="img" class="payoff-chart">`,
    `<defs><linearGradient id="payoff-stroke" gradientUnits="userSpaceOnUse" x1="0" y1="0" x2="0" y2="${height}">`,
    `<stop offset="${split}" stop-color="var(--up, #1fc98a)"/><stop offset="${split}" stop-color="var(--down, #f0506e)"/>`,
    `</linearGradient></defs>`,
    `<line class="payoff-zero" x1="${pad.left}" x2="${width - pad.right}" y1="${zero}" y2="${zero}" stroke="currentColor" stroke-opacity="0.35"/>`,
  ];
  const indexPrice = Number(index);
  if (indexPrice >= lowX && indexPrice <= highX) {
    parts.push(
      `<line class="payoff-index" x1="${x(indexPrice)}" x2="${x(indexPrice)}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="currentColor" stroke-opacity="0.5" stroke-dasharray="3 3"/>`,
    );
  }
  parts.push(`<polyline class="payoff-line" fill="none" stroke="url(#payoff-stroke)" stroke-width="2" points="${line}"/>`);
  const even = Number(breakeven);
  if (even >= lowX && even <= highX) {
    parts.push(`<circle class="payoff-breakeven" cx="${x(even)}" cy="${zero}" r="3.5" fill="currentColor"/>`);
  }
  const text = (tx, ty, anchor, value, cls) =>
    value ? `<text class="${cls}" x="${tx}" y="${ty}" text-anchor="${anchor}" font-size="10" fill="currentColor" fill-opacity="0.7">${escapeHtml(value)}</text>` : "";
  parts.push(
    text(pad.left, height - 6, "start", labels.low, "payoff-low"),
    text(width - pad.right, height - 6, "end", labels.high, "payoff-high"),
    text(width - pad.right, pad.top - 3, "end", labels.top, "payoff-top"),
    text(pad.left, Math.min(height - pad.bottom - 2, y(worst) + 11), "start", labels.maxLoss, "payoff-loss"),
    "</svg>",
  );
  return parts.join("");
}

// Everything the ticket shows for a quote (the API's body: series, side, contracts,
// price_usdt, index_price): the SVG, the summary line and its figures; null if the quote is
// not for an option series.
export function payoffView(quote, { width = 320, height = 160 } = {}) {
  const series = parseSeries(quote.series);
  if (!series) return null;
  const position = { kind: series.kind, strike: series.strike, premium: quote.price_usdt, contracts: quote.contracts };
  const summary = payoffSummary(position);
  const range = priceRange({ strike: series.strike, index: quote.index_price, breakeven: summary.breakeven });
  const points = payoffCurve(position, range);
  const best = payoffAt(position, range[1].toFixed(8));
  const price = (x) => formatNumber(x.toFixed(0), { places: 0 });
  const usdt = (value) => `${formatAmount(value, "USDT")} USDT`;
  const svg = payoffSvg(points, {
    width,
    height,
    index: quote.index_price,
    breakeven: summary.breakeven,
    labels: {
      low: price(range[0]),
      high: price(range[1]),
      maxLoss: usdt(`-${summary.maxLoss}`),
      top: series.kind === "call" ? `${usdt(best)} at ${price(range[1])}` : usdt(summary.maxProfit),
    },
  });
  const most = summary.maxProfit === null ? "unlimited" : usdt(summary.maxProfit);
  const lead = quote.side === "sell" ? "Holding to expiry instead of selling now" : "At expiry";
  return {
    svg,
    summary: `${lead}: breakeven ${formatAmount(summary.breakeven, "USDT")} · max loss ${usdt(summary.maxLoss)} · max profit ${most}`,
    ...summary,
  };
}
