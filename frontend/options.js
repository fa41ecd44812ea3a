// The USDT-mode options ticket on /options/: pick a series from the chain, get a firm quote
// (with its countdown), buy; positions with their live mark and PnL, sell to close; order
// history with the back office's settlement state. Everything goes through the options API
// with the session cookie and the CSRF token.

const REFRESH_MS = 3000;

const $ = (root, selector) => root.querySelector(selector);

function csrfToken() {
  const input = document.querySelector("#ticket-form input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const match = document.cookie.match(/csrftoken=([^;]+)/);
  return match ? match[1] : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken(), ...(options.headers || {}) },
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `Request failed (${response.status}).`;
    const error = new Error(message);
    error.code = body && body.error ? body.error.code : "error";
    throw error;
  }
  return body;
}

// Decimal strings as they are, grouped, trailing zeros trimmed to at least `min` places:
// no float rounding between the ledger and the screen.
function amount(text, min = 2) {
  if (text === null || text === undefined) return "—";
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  let digits = fraction.replace(/0+$/, "");
  while (digits.length < min) digits += "0";
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "−" : ""}${grouped}${digits ? `.${digits}` : ""}`;
}

function signed(text) {
  if (text === null || text === undefined) return { text: "—", cls: "" };
  const value = Number(text);
  return { text: `${value > 0 ? "+" : ""}${amount(text)}`, cls: value > 0 ? "up" : value < 0 ? "down" : "" };
}

// The site's styles give some boxes a display of their own, which beats the hidden attribute.
function show(element, visible) {
  element.hidden = !visible;
  element.style.display = visible ? "" : "none";
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function clientOrderId() {
  if (window.crypto && crypto.randomUUID) return `web-${crypto.randomUUID()}`;
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

const SETTLEMENT = {
  pending: ["badge-warning", "Pending"],
  settling: ["badge-info", "Settling"],
  settled: ["badge-success", "Settled"],
  manual_review: ["badge-danger", "Manual review"],
};

function optionsTrading(root) {
  const page = document.querySelector("[data-page=options]");
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
  const ttlMs = Number(root.dataset.quoteTtl || 10) * 1000;

  let side = "buy";
  let quote = null;
  let deadline = 0;
  let busy = false;
  let chainKey = "";

  // --- the series list follows the chain's underlying and expiry --------------------------------
  const underlying = () => document.querySelector("[data-underlying-choice][aria-pressed=true]")?.dataset.underlyingChoice || "BTC";
  const expiry = () => document.querySelector("#expiry")?.value || "";

  async function syncSeries(force = false) {
    const key = `${underlying()}|${expiry()}`;
    if (!expiry() || (key === chainKey && !force)) return;
    chainKey = key;
    const query = new URLSearchParams({ underlying: underlying(), expiry: expiry() });
    let body;
    try {
      body = await api(`/api/v1/options/chain?${query}`);
    } catch (error) {
      return; // the chain above shows the reason (e.g. a stale index)
    }
    if (key !== chainKey) return;
    const block = body.expiries[0];
    if (!block) return;
    const keep = seriesSelect.value;
    const index = Number(body.index_price);
    const atm = block.rows.reduce((best, row) => (Math.abs(row.strike - index) < Math.abs(best.strike - index) ? row : best), block.rows[0]);
    const options = (leg, label) =>
      block.rows
        .filter((row) => row[leg])
        .map((row) => `<option value="${row[leg].series}">${amount(row.strike, 0)} ${label}</option>`)
        .join("");
    const day = new Date(block.expiry).toUTCString().slice(5, 16);
    seriesSelect.innerHTML =
      `<optgroup label="${underlying()} calls · ${day}">${options("call", "Call")}</optgroup>` +
      `<optgroup label="${underlying()} puts · ${day}">${options("put", "Put")}</optgroup>`;
    const wanted = [...seriesSelect.options].some((o) => o.value === keep) ? keep : atm && atm.call ? atm.call.series : "";
    if (wanted) seriesSelect.value = wanted;
    root.dataset.series = String(seriesSelect.options.length);
  }

  function chooseSeries(series) {
    if (![...seriesSelect.options].some((o) => o.value === series)) {
      const option = document.createElement("option");
      option.value = series;
      option.textContent = series;
      seriesSelect.prepend(option);
    }
    seriesSelect.value = series;
  }

  // Clicking a price in the chain picks that series (calls on the left of the strike, puts on the right).
  document.querySelector("#chain")?.addEventListener("click", (event) => {
    const cell = event.target.closest("td");
    const row = event.target.closest("tr[data-strike]");
    if (!cell || !row) return;
    const column = [...row.children].indexOf(cell);
    const type = column < 5 ? "C" : "P";
    const day = expiry().slice(0, 10).replaceAll("-", "");
    setSide("buy");
    chooseSeries(`${underlying()}-${day}-${row.dataset.strike}-${type}`);
    clearQuote();
    form.scrollIntoView({ behavior: "smooth", block: "nearest" });
  });
  new MutationObserver(() => syncSeries()).observe(document.querySelector("#expiry"), { childList: true });
  document.querySelector("#expiry")?.addEventListener("change", () => syncSeries());

  // --- the ticket ------------------------------------------------------------------------------------
  function setSide(next) {
    side = next;
    ticket.dataset.side = side;
    $(ticket, "#ticket-heading").textContent = side === "buy" ? "Buy to open" : "Sell to close";
    executeButton.textContent = side === "buy" ? "Buy" : "Sell to close";
    executeButton.classList.toggle("btn-danger", side === "sell");
    executeButton.classList.toggle("btn-primary", side === "buy");
    show(resetButton, side !== "buy");
  }

  function showError(message) {
    errorBox.innerHTML = message ? `<li>${escapeHtml(message)}</li>` : "";
    show(errorBox, Boolean(message));
  }

  function clearQuote() {
    quote = null;
    deadline = 0;
    show(quoteBox, false);
    executeButton.disabled = true;
    delete ticket.dataset.quote;
  }

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
    show(doneBox, false);
    clearQuote();
    if (!seriesSelect.value) return showError("Choose a series.");
    busy = true;
    quoteButton.disabled = true;
    const asked = performance.now();
    try {
      quote = await api("/api/v1/options/quotes", {
        method: "POST",
        body: JSON.stringify({ series: seriesSelect.value, side, contracts: contractsInput.value.trim() }),
      });
      deadline = asked + ttlMs; // from when we asked: never later than the server's expiry
      $(quoteBox, "[data-field=quote-price]").textContent = `${amount(quote.price_usdt)} USDT`;
      $(quoteBox, "[data-field=quote-total]").textContent = `${amount(quote.total_usdt)} USDT`;
      $(quoteBox, "[data-field=quote-iv]").textContent = `${(Number(quote.iv) * 100).toFixed(1)}% · ${amount(quote.index_price)}`;
      show(quoteBox, true);
      ticket.dataset.quote = quote.quote_id;
    } catch (error) {
      showError(error.message);
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
        body: JSON.stringify({ quote_id: quote.quote_id, client_order_id: clientOrderId() }),
      });
      const verb = order.side === "buy" ? "Bought" : "Sold";
      doneBox.textContent = `${verb} ${order.contracts} ${order.series} for ${amount(order.total_usdt)} USDT.`;
      show(doneBox, true);
      clearQuote();
      if (order.side === "sell") setSide("buy");
      await refresh();
    } catch (error) {
      showError(error.message);
      if (["quote_expired", "quote_index_moved", "quote_used"].includes(error.code)) clearQuote();
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

  // --- positions, orders and the USDT balance --------------------------------------------------
  const positionsBody = $(root, "#option-positions tbody");
  const ordersBody = document.querySelector("#option-orders tbody");

  function paintPositions(positions) {
    if (!positions.length) {
      positionsBody.innerHTML = `<tr><td colspan="6" class="empty-state">No open positions.</td></tr>`;
      return;
    }
    positionsBody.innerHTML = positions
      .map((p) => {
        const pnl = signed(p.unrealized_pnl_usdt);
        const day = new Date(p.expiry).toUTCString().slice(5, 11);
        return `<tr data-position="${escapeHtml(p.series)}" title="${escapeHtml(p.series)}">
          <td><div class="mono">${p.underlying} ${amount(p.strike, 0)} ${p.option_type === "call" ? "Call" : "Put"}</div>
            <div class="muted small">${day} · <span class="mono" data-field="contracts">${p.contracts}</span> ct</div></td>
          <td class="num mono" data-field="average">${amount(p.average_price_usdt)}</td>
          <td class="num mono" data-field="mark">${amount(p.mark_price_usdt)}</td>
          <td class="num mono" data-field="value">${amount(p.mark_value_usdt)}</td>
          <td class="num mono ${pnl.cls}" data-field="pnl">${pnl.text}</td>
          <td><button type="button" class="btn btn-ghost btn-sm" data-close="${escapeHtml(p.series)}" data-contracts="${p.contracts}">Close</button></td>
        </tr>`;
      })
      .join("");
  }

  function paintOrders(orders) {
    if (!orders.length) {
      ordersBody.innerHTML = `<tr><td colspan="8" class="empty-state">No option orders yet.</td></tr>`;
      return;
    }
    ordersBody.innerHTML = orders
      .map((o) => {
        const [badge, label] = SETTLEMENT[o.settlement_state] || ["", o.settlement_state];
        const pnl = signed(o.realized_pnl_usdt);
        return `<tr data-order="${o.id}" data-side="${o.side}" data-settlement="${escapeHtml(o.settlement_state)}">
          <td>${new Date(o.created_at).toLocaleString()}</td>
          <td class="mono small">${escapeHtml(o.series)}</td>
          <td class="${o.side === "buy" ? "up" : "down"}">${o.side === "buy" ? "Buy" : "Sell"}</td>
          <td class="num mono">${o.contracts}</td>
          <td class="num mono">${amount(o.price_usdt)}</td>
          <td class="num mono" data-field="total">${amount(o.total_usdt)}</td>
          <td class="num mono ${pnl.cls}">${o.realized_pnl_usdt === null ? "—" : pnl.text}</td>
          <td><span class="badge ${badge}" data-field="settlement">${escapeHtml(label)}</span></td>
        </tr>`;
      })
      .join("");
  }

  positionsBody.addEventListener("click", (event) => {
    const button = event.target.closest("[data-close]");
    if (!button) return;
    setSide("sell");
    chooseSeries(button.dataset.close);
    contractsInput.value = button.dataset.contracts;
    show(doneBox, false);
    form.scrollIntoView({ behavior: "smooth", block: "nearest" });
    getQuote();
  });

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const [positions, orders, balances] = await Promise.all([
        api("/api/v1/options/positions"),
        api("/api/v1/options/orders"),
        api("/api/v1/balances"),
      ]);
      paintPositions(positions);
      paintOrders(orders.results);
      const usdt = balances.find((b) => b.asset === "USDT");
      $(form, "[data-field=usdt-available]").textContent = usdt ? amount(usdt.available) : "—";
      root.dataset.refreshes = String(Number(root.dataset.refreshes || 0) + 1);
    } catch (error) {
      // a blip: the next round repaints
    } finally {
      refreshing = false;
    }
  }

  refresh();
  syncSeries();
  setInterval(() => {
    refresh();
    syncSeries();
  }, REFRESH_MS);
  if (page) page.dataset.trading = "ready";
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.querySelector("#options-trading");
  if (root) optionsTrading(root);
});
