// How numbers and times look on every page: the one formatter (the server's templates follow
// the same rules through trading.formatting's display_* helpers and the `display` filters).
// Numbers arrive as decimal strings and are formatted from their digits (lib/decimal.js),
// never through a float:
//   - thousands separators and a typographic minus: "−1,234.50";
//   - an amount of an asset at its display places (DISPLAY_PLACES): USDT exactly 2, BTC and
//     ETH every significant decimal up to 8, at least 2 (formatAmount);
//   - a movement of money with its sign (formatMovement), a price at its tick's places;
//   - a ratio (implied vol, a change) as a percentage with one decimal: "55.0%" (formatRatio).
// Times arrive as ISO 8601 in UTC and are shown as "06 Dec 2026 08:03:05 UTC" in the trader's
// time zone (the page's <html data-timezone>, UTC by default), the zone always named
// ("06 Dec 2026 09:03:05 UTC+1"). Expiry days (formatDate) are UTC days, as in series names.
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

// asset -> [fewest, most] decimals shown (the ledger keeps USDT to 6)
export const DISPLAY_PLACES = { USDT: [2, 2], BTC: [2, 8], ETH: [2, 8] };

// An amount of `asset` at its display places: formatAmount("24609.156647", "USDT") ->
// "24,609.16", formatAmount("8", "BTC") -> "8.00", formatAmount("0.00012345", "BTC") -> "0.00012345".
export function formatAmount(value, asset) {
  const [low, high] = DISPLAY_PLACES[String(asset || "").toUpperCase()] || [2, 8];
  if (low === high) return formatNumber(value, { places: low });
  const d = parse(value);
  if (!d) return formatNumber(value);
  return formatNumber(toText(round(d, high)), { minPlaces: low });
}

// A movement of `asset` with its sign and colour: {text: "+600.00", cls: "up"}, {text: "−0.015", cls: "down"}.
export function formatMovement(value, asset) {
  const d = parse(value);
  const text = formatAmount(value, asset);
  if (!d) return { text, cls: "" };
  const zero = !/[1-9]/.test(text);
  const s = zero ? 0 : sign(d);
  return { text: `${s > 0 ? "+" : ""}${text}`, cls: s > 0 ? "up" : s < 0 ? "down" : "" };
}

// The zone times are shown in: the page's <html data-timezone> (the trader's setting), else UTC.
let displayZone = null;
export function setDisplayZone(zone) {
  displayZone = zone || null;
}
function currentZone() {
  if (displayZone) return displayZone;
  const fromPage = typeof document !== "undefined" ? document.documentElement?.dataset?.timezone : "";
  return fromPage || "UTC";
}

// "UTC", "UTC+1", "UTC+5:30", "UTC-3": the offset from UTC in minutes, as a label.
export function zoneLabel(minutes) {
  if (!minutes) return "UTC";
  const abs = Math.abs(minutes);
  const rest = abs % 60;
  return `UTC${minutes > 0 ? "+" : "-"}${Math.floor(abs / 60)}${rest ? `:${two(rest)}` : ""}`;
}

const zoneFormats = new Map();
// The wall-clock fields of `date` in `zone` (an IANA name), and its offset from UTC in minutes.
function inZone(date, zone) {
  if (zone === "UTC") {
    return { y: date.getUTCFullYear(), mo: date.getUTCMonth(), d: date.getUTCDate(), h: date.getUTCHours(), mi: date.getUTCMinutes(), s: date.getUTCSeconds(), offset: 0 };
  }
  let format = zoneFormats.get(zone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
      });
    } catch {
      return inZone(date, "UTC"); // a zone this browser does not know: UTC, and the label says so
    }
    zoneFormats.set(zone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, Number(p.value)]));
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  const offset = Math.round((wall - Math.floor(date.getTime() / 1000) * 1000) / 60000);
  return { y: parts.year, mo: parts.month - 1, d: parts.day, h: parts.hour, mi: parts.minute, s: parts.second, offset };
}

function utc(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

const two = (n) => String(n).padStart(2, "0");

// "14:03:05": the time of day in the trader's zone, for compact columns (the trade tape)
// whose heading names the zone (zoneName()).
export function formatTime(iso, { zone = currentZone() } = {}) {
  const d = utc(iso);
  if (!d) return "";
  const t = inZone(d, zone);
  return `${two(t.h)}:${two(t.mi)}:${two(t.s)}`;
}

// The label of the trader's zone now ("UTC", "UTC+1"), for headings of time-only columns.
export function zoneName({ zone = currentZone(), at = new Date() } = {}) {
  return zoneLabel(inZone(at, zone).offset);
}

// "05 Jun 2026", or "05 Jun" without the year (UTC)
export function formatDate(iso, { year = true } = {}) {
  const d = utc(iso);
  if (!d) return "";
  const day = `${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]}`;
  return year ? `${day} ${d.getUTCFullYear()}` : day;
}

// "05 Jun 2026 14:03:05 UTC": the one way a moment is written, in the trader's zone with the
// zone named ("05 Jun 2026 16:03:05 UTC+2").
export function formatDateTime(iso, { zone = currentZone() } = {}) {
  const d = utc(iso);
  if (!d) return "";
  const t = inZone(d, zone);
  return `${two(t.d)} ${MONTHS[t.mo]} ${t.y} ${two(t.h)}:${two(t.mi)}:${two(t.s)} ${zoneLabel(t.offset)}`;
}
