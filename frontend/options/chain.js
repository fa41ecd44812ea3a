// The option chain on /options/: calls and puts per strike for the chosen underlying and
// expiry (refreshed every 5 s from the chain API), the index live from the index: channel.
import { api } from "../lib/api.js";
import { formatAmount, formatDate, formatNumber, formatRatio } from "../lib/format.js";
import { $, $$, countUp, escapeHtml, setText } from "../lib/dom.js";

const REFRESH_MS = 5000;
const COLUMNS = 19; // nine per side and the strike
const LEGS = ["bid_usdt", "mark_usdt", "ask_usdt", "iv", "delta"];
// How each column is written (lib/format.js): prices in USDT, IV as a percentage as in the
// header's ATM vol and the quote.
const SHOW = {
  bid_usdt: (v) => formatAmount(v, "USDT"),
  mark_usdt: (v) => formatAmount(v, "USDT"),
  ask_usdt: (v) => formatAmount(v, "USDT"),
  iv: (v) => formatRatio(v, 1),
  delta: (v) => formatNumber(v, { places: 2 }),
};

// Calls on the left of the strike, puts on the right.
function legCells(leg) {
  return LEGS.map((field) => {
    const value = leg && leg[field] != null ? escapeHtml(SHOW[field](leg[field])) : "—";
    return `<td class="num mono${field === "mark_usdt" ? " mark" : ""}" data-field="${field}">${value}</td>`;
  }).join("");
}

// Returns {underlying(), expiry(), block(), onBlock(listener)}: listener({underlying, expiry,
// block, indexPrice}) hears every chain painted.
export function startChain(page, { feed }) {
  const table = $(page, "#chain tbody");
  const select = $(page, "#expiry");
  const strip = $(page, ".ticker-strip") || page;
  const listeners = new Set();
  let underlying = page.dataset.underlying || "BTC";
  let expiry = "";
  let current = null;

  const showIndex = (price) => setText(strip, "[data-field=index]", formatNumber(price, { places: 2 }));
  const message = (text) => `<tr><td colspan="${COLUMNS}" class="empty-state">${escapeHtml(text)}</td></tr>`;

  let latest = 0; // only the newest request paints: a slow answer for the old underlying is dropped
  async function refresh() {
    const request = ++latest;
    const query = new URLSearchParams({ underlying });
    if (expiry) query.set("expiry", expiry);
    let body;
    try {
      body = await api(`/api/v1/options/chain?${query}`);
    } catch (error) {
      if (request !== latest) return;
      if (error.status === 404 && expiry) {
        expiry = ""; // the selected expiry has just expired: start again from the live ones
        return refresh();
      }
      if (error.status) table.innerHTML = message(error.message); // no answer at all: keep what is shown
      return;
    }
    if (request !== latest) return;
    showIndex(body.index_price);
    if (!expiry && body.expiries.length) {
      select.innerHTML = body.expiries
        .map((e) => `<option value="${escapeHtml(e.expiry)}">${escapeHtml(formatDate(e.expiry))}</option>`)
        .join("");
      expiry = body.expiries[0].expiry;
      return refresh();
    }
    const block = body.expiries.find((e) => e.expiry === expiry) || body.expiries[0];
    if (!block) {
      select.innerHTML = "";
      current = null;
      table.innerHTML = message(`No ${underlying} series are listed yet.`);
      return;
    }
    current = block;
    setText(strip, "[data-field=atm-vol]", formatRatio(block.atm_vol, 1));
    table.innerHTML = block.rows
      .map(
        (row) => `<tr data-strike="${escapeHtml(row.strike)}">${greekCells(row.call, "call")}${legCells(row.call)}
          <th class="num strike">${formatNumber(row.strike, { places: 0 })}</th>${legCells(row.put)}${greekCells(row.put, "put")}</tr>`,
      )
      .join("");
    countUp(page, "refreshes");
    listeners.forEach((listener) => listener({ underlying, expiry: block.expiry, block, indexPrice: body.index_price }));
  }

  const onIndex = (msg) => {
    if (msg.channel === `index:${underlying}` && msg.data && msg.data.price) showIndex(msg.data.price);
  };
  let unsubscribe = feed.subscribe([`index:${underlying}`], onIndex);

  $$(page, "[data-underlying-choice]").forEach((button) =>
    button.addEventListener("click", () => {
      unsubscribe();
      underlying = button.dataset.underlyingChoice;
      expiry = "";
      $$(page, "[data-underlying-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      unsubscribe = feed.subscribe([`index:${underlying}`], onIndex);
      refresh();
    }),
  );
  select.addEventListener("change", () => {
    expiry = select.value;
    refresh();
  });

  refresh();
  setInterval(refresh, REFRESH_MS);

  return {
    underlying: () => underlying,
    expiry: () => expiry,
    block: () => current,
    onBlock(listener) {
      listeners.add(listener);
    },
  };
}

// Gamma, vega, theta and open interest beside the prices, one contract's greeks: the calls'
// mirrored on the far left (open interest outermost), the puts' on the far right. On a phone
// their columns collapse with IV and delta (app.css, .chain col.greek).
const GREEKS = [
  ["gamma", (v) => formatNumber(v, { places: 6 })],
  ["vega", (v) => formatNumber(v, { places: 2 })],
  ["theta", (v) => formatNumber(v, { places: 2 })],
  ["open_interest", (v) => formatNumber(v, { minPlaces: 2 })],
];

function greekCells(leg, side) {
  const cells = GREEKS.map(([field, show]) => {
    const value = leg && leg[field] != null ? escapeHtml(show(leg[field])) : "—";
    return `<td class="num mono greek" data-field="${field}">${value}</td>`;
  });
  return (side === "call" ? cells.reverse() : cells).join("");
}
