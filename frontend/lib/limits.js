// A trader's risk limits (GET /api/v1/risk/limits) for the screen: the account page's Limits
// panel and the order ticket's largest allowed quantity. Numbers stay decimal strings.
import { cmp, fitSteps, parse, sub, toText, ZERO } from "./decimal.js";
import { formatNumber } from "./format.js";

export const LABELS = {
  buy_band_above: "Buy price above index",
  buy_band_below: "Buy price below index",
  sell_band_above: "Sell price above index",
  sell_band_below: "Sell price below index",
  min_notional: "Smallest order",
  max_notional: "Largest order",
  max_order_quantity: "Largest quantity (limit, stop)",
  max_market_quantity: "Largest quantity (market)",
  max_open_orders: "Open orders",
  max_position: "Largest holding",
  max_series_contracts: "Contracts per option series",
  max_option_premium: "Premium in open options",
  order_rate: "Orders per second",
  order_burst: "Orders at once",
  daily_withdrawal: "Withdrawals per 24 h",
};

const STATES = { active: "Active", reduce_only: "Reduce only", halted: "Halted" };
export const stateLabel = (state) => STATES[state] || state;

// A limit's value as people read it: a band as a percentage, amounts with their unit.
export function limitText(line) {
  if (line.unit === "fraction") {
    const d = parse(line.limit);
    return d ? `${formatNumber(toText({ n: d.n * 100n, s: d.s }))}%` : line.limit;
  }
  const unit = ["orders", "orders/s", "contracts"].includes(line.unit) ? "" : ` ${line.unit}`;
  return `${formatNumber(line.limit)}${unit}`;
}

// "ok" below 80 % of the limit, "warn" from 80 %, "full" at 100 % (the alert thresholds).
export function usageLevel(line) {
  if (line.used_percent === null || line.used_percent === undefined) return "";
  const p = Number(line.used_percent);
  return p >= 100 ? "full" : p >= 80 ? "warn" : "ok";
}

// Rows for the panel: the limits on what the trader has first (with usage), then per market.
export function limitRows(data) {
  const rows = data.limits.map((line) => ({
    name: line.name,
    label: LABELS[line.name] || line.name,
    scope: line.scope === "account" ? "Account" : line.scope,
    limit: limitText(line),
    used: line.used === null ? "" : formatNumber(line.used),
    percent: line.used_percent === null ? null : Number(line.used_percent),
    level: usageLevel(line),
  }));
  const withUsage = rows.filter((r) => r.percent !== null);
  const perOrder = rows.filter((r) => r.percent === null);
  return [...withUsage, ...perOrder];
}

function find(data, name, scope) {
  const line = data.limits.find((l) => l.name === name && l.scope === scope);
  return line ? parse(line.limit) : null;
}

// The largest quantity an order could carry under the limits, in whole lots, or null when
// nothing caps it: the quantity limit (market orders their own), the largest order value at
// `price`, and for a buy the room left under the largest holding. Mirrors risk.core.max_quantity.
export function maxQuantity(data, { symbol, base, side, type, price, held, lot }) {
  const caps = [];
  const quantity = find(data, type === "market" ? "max_market_quantity" : "max_order_quantity", symbol);
  if (quantity) caps.push(quantity);
  const notional = find(data, "max_notional", symbol);
  const p = price ? parse(price) : null;
  if (notional && p && p.n > 0n) caps.push(fitSteps(notional, p, lot));
  const position = find(data, "max_position", base);
  if (side === "buy" && position) {
    const room = sub(position, parse(held || "0") || ZERO);
    caps.push(room.n > 0n ? room : ZERO);
  }
  if (!caps.length) return null;
  let least = caps[0];
  for (const cap of caps) if (cmp(cap, least) < 0) least = cap;
  return fitSteps(least, parse("1"), lot);
}
