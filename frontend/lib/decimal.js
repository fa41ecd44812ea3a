// Exact decimal maths for prices, quantities and amounts. The API sends them as decimal
// strings; here a value is a BigInt count of its smallest unit plus a scale
// ({n: 12345n, s: 2} is 123.45), so sums, products and whole-step divisions are exact.
// Nothing here ever goes through a JS float.

const DECIMAL = /^-?(\d+\.?\d*|\.\d+)$/;
const pow10 = (k) => 10n ** BigInt(k);

export const ZERO = Object.freeze({ n: 0n, s: 0 });
export const ONE = Object.freeze({ n: 1n, s: 0 });

// A decimal string ("65000.12", "-0.5", ".25") as a value, or null for anything else
// (empty input, exponents, thousands separators, NaN).
export function parse(text) {
  if (text === null || text === undefined) return null;
  const t = String(text).trim();
  if (!DECIMAL.test(t)) return null;
  const negative = t.startsWith("-");
  const [whole, fraction = ""] = (negative ? t.slice(1) : t).split(".");
  const n = BigInt((whole || "0") + fraction);
  return { n: negative ? -n : n, s: fraction.length };
}

// An integer count of hundredths, thousandths...: fromUnits(25, 2) is 0.25.
export const fromUnits = (units, scale = 0) => ({ n: BigInt(units), s: scale });

function aligned(a, b) {
  const s = Math.max(a.s, b.s);
  return [a.n * pow10(s - a.s), b.n * pow10(s - b.s), s];
}

export function add(a, b) {
  const [x, y, s] = aligned(a, b);
  return { n: x + y, s };
}

export function sub(a, b) {
  const [x, y, s] = aligned(a, b);
  return { n: x - y, s };
}

export const mul = (a, b) => ({ n: a.n * b.n, s: a.s + b.s });

export function cmp(a, b) {
  const [x, y] = aligned(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const sign = (a) => (a.n > 0n ? 1 : a.n < 0n ? -1 : 0);
export const isZero = (a) => a.n === 0n;

// `a` with exactly `places` decimals: "down" toward zero, "up" away from zero, "half" half-up.
export function round(a, places, mode = "half") {
  if (a.s <= places) return { n: a.n * pow10(places - a.s), s: places };
  const div = pow10(a.s - places);
  const negative = a.n < 0n;
  const abs = negative ? -a.n : a.n;
  let q = abs / div;
  const r = abs % div;
  if (mode === "up" && r > 0n) q += 1n;
  else if (mode === "half" && r * 2n >= div) q += 1n;
  return { n: negative ? -q : q, s: places };
}

// The most whole steps of `step` that `amount` buys at `price`: floor(amount / price / step) * step.
// Zero unless all three are positive. (A quantity from a budget, rounded down to the lot size.)
export function fitSteps(amount, price, step) {
  if (price.n <= 0n || step.n <= 0n || amount.n <= 0n) return { n: 0n, s: step.s };
  const k = (amount.n * pow10(price.s + step.s)) / (pow10(amount.s) * price.n * step.n);
  return { n: k * step.n, s: step.s };
}

// part / whole as a percentage in [0, 100] with one decimal, for bar widths.
export function percentOf(part, whole) {
  const [x, y] = aligned(part, whole);
  if (y <= 0n || x <= 0n) return 0;
  const tenths = (x * 1000n) / y;
  return Math.min(1000, Number(tenths)) / 10;
}

// The plain decimal string of a value, with all its places ("1.50" stays "1.50").
export function toText(a) {
  const negative = a.n < 0n;
  const digits = (negative ? -a.n : a.n).toString().padStart(a.s + 1, "0");
  const whole = digits.slice(0, digits.length - a.s);
  const fraction = a.s ? digits.slice(digits.length - a.s) : "";
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

// The shortest form of a decimal string ("65000.10" -> "65000.1", "-0.00" -> "0"): a stable
// key for book levels. Text that is not a decimal comes back as it is.
export function canonical(text) {
  const d = parse(text);
  if (!d) return String(text);
  let t = toText(d);
  if (t.includes(".")) t = t.replace(/0+$/, "").replace(/\.$/, "");
  return t === "-0" ? "0" : t;
}

// How many decimals a tick or lot size has ("0.01" -> 2, "0.00001" -> 5, "1" -> 0).
export function placesOf(step, fallback = 2) {
  const d = parse(step);
  if (!d) return fallback;
  const t = canonical(toText(d));
  const dot = t.indexOf(".");
  return dot < 0 ? 0 : t.length - dot - 1;
}
