// How numbers and times look on every page. Numbers arrive as decimal strings and are
// formatted from their digits (lib/decimal.js), never through a float; times arrive as ISO
// 8601 in UTC and are shown in UTC, the time the API, the expiries and statements use.
import { parse, round, sign, toText } from "./decimal.js";

export const DASH = "—";
const MINUS = "−";
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const group = (whole) => whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");

// A decimal string for the screen, with thousands separators and a typographic minus.
//   {places: 2}     exactly two decimals, rounded half-up ("65000.125" -> "65,000.13")
//   {minPlaces: 2}  every significant decimal, at least two ("9400.5025" -> "9,400.5025",
//                   "10000" -> "10,000.00"): for amounts that must be shown exactly
// null, undefined and "" are a dash; text that is not a decimal is shown as it is.
export function formatNumber(value, { places, minPlaces = 0 } = {}) {
  if (value === null || value === undefined || value === "") return DASH;
  let d = parse(value);
  if (!d) return String(value);
  if (places !== undefined) d = round(d, places);
  const text = toText(d);
  const negative = text.startsWith("-");
  let [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  if (places === undefined) {
    fraction = fraction.replace(/0+$/, "");
    fraction = fraction.padEnd(minPlaces, "0");
  }
  return `${negative ? MINUS : ""}${group(whole)}${fraction ? `.${fraction}` : ""}`;
}

// A change or a profit with its sign and the class that colours it: {text: "+1.50", cls: "up"}.
export function formatSigned(value, options = { minPlaces: 2 }) {
  const d = parse(value);
  if (!d) return { text: value === null || value === undefined ? DASH : String(value), cls: "" };
  const s = sign(d);
  return { text: `${s > 0 ? "+" : ""}${formatNumber(value, options)}`, cls: s > 0 ? "up" : s < 0 ? "down" : "" };
}

// A ratio as a percentage: formatRatio("0.5312", 1) -> "53.1%" (implied vols, shares).
export function formatRatio(value, places = 1) {
  const d = parse(value);
  if (!d) return DASH;
  return `${formatNumber(toText({ n: d.n * 100n, s: d.s }), { places })}%`;
}

function utc(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

const two = (n) => String(n).padStart(2, "0");

// "14:03:05" (UTC)
export function formatTime(iso) {
  const d = utc(iso);
  return d ? `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}` : "";
}

// "05 Jun 2026", or "05 Jun" without the year (UTC)
export function formatDate(iso, { year = true } = {}) {
  const d = utc(iso);
  if (!d) return "";
  const day = `${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]}`;
  return year ? `${day} ${d.getUTCFullYear()}` : day;
}

// "05 Jun 14:03:05", or "05 Jun 2026 14:03:05" with the year (UTC)
export function formatDateTime(iso, { year = false } = {}) {
  const d = utc(iso);
  return d ? `${formatDate(iso, { year })} ${formatTime(iso)}` : "";
}
