// The Portfolio page's figures between two answers of GET /api/v1/portfolio: the same rules
// as the server, redone at the ticker's prices, in exact decimals (lib/decimal.js). An
// asset's value is quantity × price at USDT's 6 places; the total is the assets' values plus
// the options at mark; today's PnL is the total − the value at 00:00 UTC − the day's net
// deposits. Also the rebalancing form's percentages to and from the API's weights.
import { add, canonical, cmp, mul, parse, round, sign, sub, toText, ZERO } from "../lib/decimal.js";

export const USDT = "USDT";
const USDT_PLACES = 6;
const WEIGHT_PLACES = 6;
const HUNDRED = parse("100");

const pow10 = (k) => 10n ** BigInt(k);

// a / b with `places` decimals, rounded half-up; null when b is zero.
export function divide(a, b, places) {
  if (!b || b.n === 0n) return null;
  let num = a.n * pow10(b.s + places);
  let den = b.n * pow10(a.s);
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const negative = num < 0n;
  const abs = negative ? -num : num;
  let q = abs / den;
  if ((abs % den) * 2n >= den) q += 1n;
  return { n: negative ? -q : q, s: places };
}

const text = (d) => (d === null ? null : toText(d));

// body: the API's portfolio; prices: {BTC: "65100.5", ...} from the ticker (missing: the
// API's price stays). Returns the body's shape with every price-dependent figure redone.
export function revalue(body, prices = {}) {
  const assets = body.assets.map((line) => {
    const ticked = line.asset === USDT ? null : prices[line.asset];
    const priceText = ticked ?? line.price_usdt;
    const price = parse(priceText);
    const quantity = parse(line.quantity) || ZERO;
    const value = price ? round(mul(quantity, price), USDT_PLACES) : null;
    const cost = parse(line.cost_basis_usdt) || ZERO;
    return {
      ...line,
      price_usdt: priceText,
      live: Boolean(ticked),
      value,
      unrealized: value ? sub(value, cost) : null,
    };
  });
  const options = body.options || {};
  const optionsValue = parse(options.value_usdt) || ZERO;
  const total = assets.reduce((sum, line) => (line.value ? add(sum, line.value) : sum), optionsValue);
  const start = parse(body.value_at_day_start_usdt) || ZERO;
  const flows = parse(body.net_flows_today_usdt) || ZERO;
  const pnlToday = sub(sub(total, start), flows);
  const base = add(start, flows);
  const unrealized = assets.reduce(
    (sum, line) => (line.unrealized ? add(sum, line.unrealized) : sum),
    parse(options.unrealized_pnl_usdt) || ZERO,
  );
  return {
    ...body,
    total_usdt: toText(total),
    pnl_today_usdt: toText(pnlToday),
    // today's PnL against what was there to grow: the day's opening value and its deposits
    pnl_today_ratio: sign(base) > 0 ? text(divide(pnlToday, base, WEIGHT_PLACES)) : null,
    unrealized_pnl_usdt: toText(unrealized),
    assets: assets.map((line) => ({
      ...line,
      value_usdt: text(line.value),
      unrealized_pnl_usdt: text(line.unrealized),
      weight: line.value ? text(divide(line.value, total, WEIGHT_PLACES)) : null,
      value: undefined,
      unrealized: undefined,
    })),
    options: { ...options, weight: text(divide(optionsValue, total, WEIGHT_PLACES)) },
  };
}

// The rebalancing form's percentages ({BTC: "50", ...}; blank is 0) as the API's weights
// ({BTC: "0.5"}), with their sum in percent and the assets whose entry is not a number.
export function weightsFromPercents(percents) {
  const weights = {};
  const invalid = [];
  let sum = ZERO;
  for (const [asset, raw] of Object.entries(percents)) {
    const entry = String(raw ?? "").trim();
    const d = entry === "" ? ZERO : parse(entry);
    if (!d) {
      invalid.push(asset);
      continue;
    }
    sum = add(sum, d);
    weights[asset] = plain({ n: d.n, s: d.s + 2 });
  }
  return { weights, sum: plain(sum), complete: invalid.length === 0 && cmp(sum, HUNDRED) === 0, invalid };
}

// A fraction ("0.5") as a percentage for the form ("50").
export function percentFromWeight(weight) {
  const d = parse(weight);
  if (!d) return "";
  return plain(d.s >= 2 ? { n: d.n, s: d.s - 2 } : { n: d.n * pow10(2 - d.s), s: 0 });
}

// Whole percentages near the current weights that add up to 100 (USDT takes the rest), as a
// starting point for targets.
export function percentsFromWeights(weights, assets) {
  const result = {};
  let used = 0n;
  for (const asset of assets) {
    if (asset === USDT) continue;
    const d = parse(weights[asset] || "0") || ZERO;
    const whole = round({ n: d.n * 100n, s: d.s }, 0);
    result[asset] = toText(whole);
    used += whole.n;
  }
  if (assets.includes(USDT)) result[USDT] = (100n - used < 0n ? 0n : 100n - used).toString();
  return result;
}

// The shortest text of a value ("0.50" -> "0.5", "100.00" -> "100").
const plain = (d) => canonical(toText(d));
