// The USDT-mode ticket on /options/: pick a series (from the chain's expiry, or by clicking a
// price in the chain), get a firm quote with its countdown, then buy to open or sell to close.
import { api, clientOrderId } from "../lib/api.js";
import { cmp, parse, sub } from "../lib/decimal.js";
import { formatAmount, formatDate, formatNumber, formatRatio } from "../lib/format.js";
import { $, escapeHtml, listItems, setVisible } from "../lib/dom.js";
import { payoffView } from "./payoff.js";

const usdt = (value) => formatAmount(value, "USDT");
const STALE_QUOTE = ["quote_expired", "quote_index_moved", "quote_used"];

// The row whose strike is nearest the index (the at-the-money one).
function atTheMoney(rows, indexPrice) {
  const index = parse(indexPrice);
  if (!index || !rows.length) return rows[0];
  const distance = (row) => {
    const d = sub(parse(row.strike) || index, index);
    return d.n < 0n ? { n: -d.n, s: d.s } : d;
  };
  return rows.reduce((best, row) => (cmp(distance(row), distance(best)) < 0 ? row : best), rows[0]);
}

// onTraded(order) runs after a buy or a sale went through.
export function startTicket(root, { chain, onTraded = () => {} }) {
  const ticket = $(root, "#ticket");
  const form = $(root, "#ticket-form");
  const seriesSelect = $(form, "#ticket-series");
  const contractsInput = $(form, "#ticket-contracts");
  const quoteBox = $(form, "#ticket-quote");
  const errorBox = $(form, "#ticket-error");
  const doneBox = $(form, "#ticket-done");
  const quoteButton = $(form, "[data-action=quote]");
  const executeButton = $(form, "[data-action=execute]");
  const resetButton = $(form, "[data-action=reset]");
  const payoffBox = $(form, "#ticket-payoff");
  const ttlMs = Number(root.dataset.quoteTtl || 10) * 1000;

  let side = "buy";
  let quote = null;
  let deadline = 0;
  let busy = false;
  let listed = ""; // the underlying and expiry the series list was built for

  // --- the series list follows the chain's underlying and expiry ----------------------------------
  chain.onBlock(({ underlying, expiry, block, indexPrice }) => {
    const key = `${underlying}|${expiry}`;
    if (key === listed) return;
    listed = key;
    const keep = seriesSelect.value;
    const atm = atTheMoney(block.rows, indexPrice);
    const options = (leg, label) =>
      block.rows
        .filter((row) => row[leg])
        .map((row) => `<option value="${escapeHtml(row[leg].series)}">${formatNumber(row.strike, { minPlaces: 0 })} ${label}</option>`)
        .join("");
    const day = formatDate(block.expiry);
    seriesSelect.innerHTML =
      `<optgroup label="${escapeHtml(underlying)} calls · ${day}">${options("call", "Call")}</optgroup>` +
      `<optgroup label="${escapeHtml(underlying)} puts · ${day}">${options("put", "Put")}</optgroup>`;
    const wanted = [...seriesSelect.options].some((o) => o.value === keep) ? keep : atm && atm.call ? atm.call.series : "";
    if (wanted) seriesSelect.value = wanted;
    root.dataset.series = String(seriesSelect.options.length);
  });

  function chooseSeries(series) {
    if (![...seriesSelect.options].some((o) => o.value === series)) {
      const option = document.createElement("option");
      option.value = series;
      option.textContent = series;
      seriesSelect.prepend(option);
    }
    seriesSelect.value = series;
  }

  // Clicking a price in the chain picks that series (calls left of the strike, puts right of it).
  document.querySelector("#chain")?.addEventListener("click", (event) => {
    const cell = event.target.closest("td");
    const row = event.target.closest("tr[data-strike]");
    if (!cell || !row) return;
    const strikeCell = row.querySelector("th.strike");
    const leg = strikeCell && cell.compareDocumentPosition(strikeCell) & Node.DOCUMENT_POSITION_FOLLOWING ? "call" : "put";
    const listedRow = chain.block()?.rows.find((r) => String(r.strike) === row.dataset.strike);
    const day = chain.expiry().slice(0, 10).replaceAll("-", "");
    const series = listedRow?.[leg]?.series || `${chain.underlying()}-${day}-${row.dataset.strike}-${leg === "call" ? "C" : "P"}`;
    setSide("buy");
    chooseSeries(series);
    clearQuote();
    form.scrollIntoView({ behavior: "smooth", block: "nearest" });
  });

  // --- the ticket -----------------------------------------------------------------------------------
  function setSide(next) {
    side = next;
    ticket.dataset.side = side;
    $(ticket, "#ticket-heading").textContent = side === "buy" ? "Buy to open" : "Sell to close";
    executeButton.textContent = side === "buy" ? "Buy" : "Sell to close";
    executeButton.classList.toggle("btn-danger", side === "sell");
    executeButton.classList.toggle("btn-primary", side === "buy");
    setVisible(resetButton, side !== "buy");
  }

  // the refusal's message, then what it says about each field ("At most 0.04 contracts at this price.")
  function showError(message, fields = {}) {
    const lines = message ? [message, ...Object.values(fields || {}).flat()] : [];
    errorBox.innerHTML = listItems(lines);
    setVisible(errorBox, lines.length > 0);
  }

  function clearQuote() {
    quote = null;
    deadline = 0;
    setVisible(quoteBox, false);
    setVisible(payoffBox, false);
    executeButton.disabled = true;
    delete ticket.dataset.quote;
  }

  // The quoted contracts' profit or loss at expiry across underlying prices (options/payoff.js).
  function showPayoff(quoted) {
    const view = payoffBox && payoffView(quoted);
    if (!view) return;
    $(payoffBox, "[data-field=payoff-chart]").innerHTML = view.svg;
    $(payoffBox, "[data-field=payoff-summary]").textContent = view.summary;
    payoffBox.dataset.breakeven = view.breakeven;
    setVisible(payoffBox, true);
  }

  // The countdown: a quote is good until its deadline, counted from when it was asked for.
  function tick() {
    if (!quote) return;
    const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
    const countdown = $(quoteBox, "[data-field=quote-countdown]");
    if (left > 0) {
      countdown.textContent = `${left} s`;
      executeButton.disabled = busy;
    } else {
      countdown.textContent = "expired — get a new quote";
      executeButton.disabled = true;
      ticket.dataset.quote = "expired";
    }
  }
  setInterval(tick, 250);

  async function getQuote() {
    if (busy) return;
    showError("");
    setVisible(doneBox, false);
    clearQuote();
    if (!seriesSelect.value) return showError("Choose a series.");
    busy = true;
    quoteButton.disabled = true;
    const asked = performance.now();
    try {
      quote = await api("/api/v1/options/quotes", {
        method: "POST",
        json: { series: seriesSelect.value, side, contracts: contractsInput.value.trim() },
      });
      deadline = asked + ttlMs; // from when we asked: never later than the server's expiry
      $(quoteBox, "[data-field=quote-price]").textContent = `${usdt(quote.price_usdt)} USDT`;
      $(quoteBox, "[data-field=quote-total]").textContent = `${usdt(quote.total_usdt)} USDT`;
      $(quoteBox, "[data-field=quote-iv]").textContent = `${formatRatio(quote.iv, 1)} · ${usdt(quote.index_price)}`;
      setVisible(quoteBox, true);
      showPayoff(quote);
      ticket.dataset.quote = quote.quote_id;
    } catch (error) {
      setVisible(quoteBox, false);
      delete ticket.dataset.quote;
      showError(error.message, error.fields);
    } finally {
      busy = false;
      quoteButton.disabled = false;
      tick();
    }
  }

  async function execute() {
    if (!quote || busy || performance.now() >= deadline) return;
    busy = true;
    executeButton.disabled = true;
    showError("");
    try {
      const order = await api("/api/v1/options/orders", {
        method: "POST",
        json: { quote_id: quote.quote_id, client_order_id: clientOrderId() },
      });
      const verb = order.side === "buy" ? "Bought" : "Sold";
      // the amount the trader agreed to: the quote's total, as its box showed it
      doneBox.innerHTML = `${verb} ${escapeHtml(formatNumber(order.contracts, { minPlaces: 2 }))} ${escapeHtml(order.series)} for <span class="mono" data-field="done-total">${escapeHtml(usdt(order.total_usdt))}</span> USDT.`;
      setVisible(doneBox, true);
      clearQuote();
      if (order.side === "sell") setSide("buy");
      await onTraded(order);
    } catch (error) {
      showError(error.message);
      if (STALE_QUOTE.includes(error.code)) clearQuote();
    } finally {
      busy = false;
      tick();
    }
  }

  quoteButton.addEventListener("click", getQuote);
  executeButton.addEventListener("click", execute);
  resetButton.addEventListener("click", () => {
    setSide("buy");
    clearQuote();
    showError("");
  });
  seriesSelect.addEventListener("change", () => {
    setSide("buy");
    clearQuote();
  });
  contractsInput.addEventListener("input", clearQuote);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    getQuote();
  });

  return {
    // Sell to close a position: its series and contracts, quoted at once.
    close(series, contracts) {
      setSide("sell");
      chooseSeries(series);
      contractsInput.value = contracts;
      setVisible(doneBox, false);
      form.scrollIntoView({ behavior: "smooth", block: "nearest" });
      getQuote();
    },
  };
}
