// The order ticket (#spot-ticket): the form follows the side and the order type, estimates
// cost or proceeds from the live book, fills a share of the balance, and places the order
// (waiting briefly for the engine's answer); refusals are shown next to their fields.
import { api, clientOrderId } from "../lib/api.js";
import { add, canonical, cmp, fitSteps, fromUnits, isZero, mul, ONE, parse, round, sub, toText, ZERO } from "../lib/decimal.js";
import { formatAmount, formatNumber } from "../lib/format.js";
import { maxQuantity } from "../lib/limits.js";
import { $, $$, listItems, setVisible } from "../lib/dom.js";
import { statusLabel } from "./orders.js";

// What a marketable quantity (or, for a buy by amount, a budget) takes from the visible
// book's levels, best first: {filled, spent, complete}.
export function walkBook(levels, { quantity = null, amount = null, lot }) {
  let filled = ZERO;
  let spent = ZERO;
  for (const [price, size] of levels) {
    const p = parse(price);
    let q = parse(size);
    if (quantity) {
      const left = sub(quantity, filled);
      if (cmp(q, left) > 0) q = left;
    } else {
      const fits = fitSteps(sub(amount, spent), p, lot);
      if (cmp(q, fits) > 0) q = fits;
    }
    if (q.n <= 0n) break;
    filled = add(filled, q);
    spent = add(spent, mul(p, q));
  }
  return { filled, spent, complete: quantity ? cmp(filled, quantity) >= 0 : true };
}

// market: {book, lastPrice} of the page; balances: the store; onPlaced(order) after an answer.
export function createTicket(page, { cfg, market, balances, places, onPlaced = () => {} }) {
  const ticket = $(page, "#spot-ticket");
  const form = $(ticket, "#order-form");
  const typeSelect = $(form, "#order-type");
  const tifSelect = $(form, "#order-tif");
  const inputs = {
    price: $(form, "#order-price"),
    stop: $(form, "#order-stop"),
    trail: $(form, "#order-trail"),
    trailMode: $(form, "#order-trail-mode"),
    quantity: $(form, "#order-quantity"),
    quote: $(form, "#order-quote"),
    postOnly: $(form, "#order-post-only"),
    iceberg: $(form, "#order-iceberg"),
    display: $(form, "#order-display"),
  };
  const submit = $(form, "#order-submit");
  const errorBox = $(form, "#order-error");
  const doneBox = $(form, "#order-done");
  const lot = parse(cfg.lot_size);
  const takerFee = parse(cfg.taker_fee || "0") || ZERO;
  const band = parse(cfg.market_band || "0") || ZERO;
  const price = (value) => formatNumber(value, { places: places.price });
  const qty = (value) => formatNumber(value, { places: places.quantity });
  const quoteAmount = (value) => formatNumber(value, { places: places.quote });

  let side = "buy";
  let marketIn = "base"; // a market buy by BTC quantity or by USDT amount
  let busy = false;
  let limits = null; // GET /api/v1/risk/limits: the ticket shows the largest quantity they allow

  const type = () => typeSelect.value;
  const byQuote = () => type() === "market" && side === "buy" && marketIn === "quote";
  const visible = (element) => element && !element.closest("[hidden]") && element.offsetParent !== null;

  // --- the form follows the side and the type ---------------------------------------------------
  function layout() {
    const t = type();
    ticket.dataset.side = side;
    ticket.dataset.type = t;
    $$(form, "[data-side-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.sideChoice === side)));
    $$(form, "[data-market-in]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.marketIn === marketIn)));
    $$(form, "[data-types]").forEach((box) => {
      const types = box.dataset.types.split(" ");
      const sides = box.dataset.sides ? box.dataset.sides.split(" ") : ["buy", "sell"];
      setVisible(box, types.includes(t) && sides.includes(side));
    });
    setVisible($(form, "[data-qty=base]"), !byQuote());
    setVisible($(form, "[data-qty=quote]"), byQuote());
    // time in force: a market order is IOC or FOK (FOK cannot spend an amount); stops become market orders
    const allowed = t === "market" ? (byQuote() ? ["IOC"] : ["IOC", "FOK"]) : ["GTC", "IOC", "FOK"];
    [...tifSelect.options].forEach((o) => {
      o.disabled = !allowed.includes(o.value);
      o.hidden = o.disabled;
    });
    if (!allowed.includes(tifSelect.value)) tifSelect.value = allowed[0];
    const gtcLimit = t === "limit" && tifSelect.value === "GTC";
    setVisible($(form, "[data-option=post-only]"), gtcLimit);
    setVisible($(form, "[data-option=iceberg]"), gtcLimit && !inputs.postOnly.checked);
    setVisible($(form, "[data-iceberg]"), gtcLimit && !inputs.postOnly.checked && inputs.iceberg.checked);
    $(form, "[data-help=stop]").textContent =
      side === "buy" ? "Triggers when a trade prints at or above it." : "Triggers when a trade prints at or below it.";
    submit.textContent = `${side === "buy" ? "Buy" : "Sell"} ${cfg.base}`;
    submit.classList.toggle("btn-buy", side === "buy");
    submit.classList.toggle("btn-sell", side === "sell");
    estimate();
  }

  // The order as the API takes it: only the fields this type uses, as typed.
  function body() {
    const t = type();
    const data = { symbol: cfg.symbol, side, type: t, client_order_id: clientOrderId() };
    const put = (key, input) => {
      const value = input.value.trim();
      if (value) data[key] = value;
    };
    if (byQuote()) put("quote_quantity", inputs.quote);
    else put("quantity", inputs.quantity);
    if (t === "limit" || t === "stop_limit") put("price", inputs.price);
    if (t === "stop_market" || t === "stop_limit") put("stop_price", inputs.stop);
    if (t === "trailing_stop") put(inputs.trailMode.value === "percent" ? "trail_percent" : "trail_amount", inputs.trail);
    if (t === "limit" || t === "stop_limit" || t === "market") data.time_in_force = tifSelect.value;
    if (visible(inputs.postOnly) && inputs.postOnly.checked) data.post_only = true;
    if (visible(inputs.display) && inputs.iceberg.checked) put("display_quantity", inputs.display);
    return data;
  }

  // --- errors next to their fields ------------------------------------------------------------------
  function clearErrors() {
    $$(form, "[data-errors-for]").forEach((list) => {
      list.innerHTML = "";
      list.closest(".field")?.classList.remove("field-invalid");
    });
    errorBox.innerHTML = "";
    setVisible(errorBox, false);
  }

  function showErrors(error) {
    clearErrors();
    const messagesOf = (messages) => (Array.isArray(messages) ? messages : [messages]).map(String);
    const placed = new Set();
    for (const [field, messages] of Object.entries(error.fields || {})) {
      const list = $$(form, "[data-errors-for]").find((l) => l.dataset.errorsFor.split(" ").includes(field) && visible(l.parentElement));
      if (!list) continue;
      const texts = messagesOf(messages);
      list.innerHTML = listItems(texts);
      list.closest(".field")?.classList.add("field-invalid");
      texts.forEach((m) => placed.add(m));
      placed.add(field);
    }
    // what has no field of its own on the form goes in the box under it
    const general = placed.has(error.message) ? [] : [error.message];
    for (const [field, messages] of Object.entries(error.fields || {})) {
      if (!placed.has(field)) general.push(...messagesOf(messages));
    }
    errorBox.innerHTML = listItems(general);
    setVisible(errorBox, general.length > 0);
    ticket.dataset.error = error.code || "error";
  }

  // --- estimate -------------------------------------------------------------------------------------
  function referencePrice() {
    const t = type();
    if (t === "limit" || t === "stop_limit") return parse(inputs.price.value);
    if (t === "stop_market") return parse(inputs.stop.value);
    const best = market.book.best(side === "buy" ? "asks" : "bids");
    return best ? parse(best[0]) : market.lastPrice ? parse(market.lastPrice) : null;
  }

  function showMaxQuantity() {
    const cell = $(form, "[data-field=max-quantity]");
    if (!cell) return;
    const reference = referencePrice();
    const most = limits
      ? maxQuantity(limits, {
          symbol: cfg.symbol,
          base: cfg.base,
          side,
          type: type(),
          price: reference ? toText(reference) : null,
          held: balances.get(cfg.base)?.total || "0",
          lot,
        })
      : null;
    cell.textContent = most ? `Max ${qty(toText(most))} ${cfg.base} per order` : "";
  }

  function estimate() {
    showMaxQuantity();
    const availableAsset = side === "buy" ? cfg.quote : cfg.base;
    const balance = balances.get(availableAsset);
    const available = balance ? parse(balance.available) : null;
    $(form, "[data-field=available]").textContent = balance
      ? `${formatAmount(balance.available, availableAsset)} ${availableAsset}`
      : "—";
    $(form, "[data-field=estimate-label]").textContent = side === "buy" ? "Est. cost" : "Est. proceeds";
    const estimateCell = $(form, "[data-field=estimate]");
    const feeCell = $(form, "[data-field=fee]");
    let notional = null;
    let quantity = parse(inputs.quantity.value);
    let note = "";
    if (type() === "market") {
      const levels = market.book.sorted(side === "buy" ? "asks" : "bids");
      if (byQuote()) {
        const amount = parse(inputs.quote.value);
        if (amount) {
          notional = amount;
          quantity = walkBook(levels, { amount, lot }).filled;
        }
      } else if (quantity) {
        const result = walkBook(levels, { quantity, lot });
        notional = result.spent;
        if (!result.complete) note = " (more than the book shows)";
      }
    } else if (quantity) {
      const reference = referencePrice();
      if (reference) notional = mul(reference, quantity);
    }
    if (!notional || isZero(notional)) {
      estimateCell.textContent = "—";
      feeCell.textContent = "—";
      estimateCell.classList.remove("down");
      return;
    }
    estimateCell.textContent = `≈ ${quoteAmount(toText(notional))} ${cfg.quote}${note}`;
    const short = available && cmp(side === "buy" ? notional : quantity || ZERO, available) > 0;
    estimateCell.classList.toggle("down", Boolean(short));
    estimateCell.title = short ? `More than your available ${availableAsset}` : "";
    // fees are taken from what you receive: the base on a buy, the quote on a sell (taker rate: at most)
    if (side === "buy") feeCell.textContent = quantity ? `≤ ${canonical(toText(mul(quantity, takerFee)))} ${cfg.base}` : "—";
    else feeCell.textContent = `≤ ${quoteAmount(toText(mul(notional, takerFee)))} ${cfg.quote}`;
  }

  // 25 % / 50 % / 75 % / Max of the available balance, in whole lots.
  function fillShare(percent) {
    const share = fromUnits(percent, 2);
    if (side === "sell") {
      const available = parse(balances.get(cfg.base)?.available || "0") || ZERO;
      inputs.quantity.value = toText(fitSteps(mul(available, share), ONE, lot));
    } else {
      const available = mul(parse(balances.get(cfg.quote)?.available || "0") || ZERO, share);
      if (byQuote()) {
        inputs.quote.value = toText(round(available, places.quote, "down"));
      } else {
        let reference = referencePrice();
        if (!reference) return;
        // orders without a limit price hold at a protection price above the market
        if (!["limit", "stop_limit"].includes(type())) reference = mul(reference, add(ONE, band));
        inputs.quantity.value = toText(fitSteps(available, reference, lot));
      }
    }
    estimate();
  }

  // --- submit ---------------------------------------------------------------------------------------
  async function place(event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    submit.disabled = true;
    clearErrors();
    setVisible(doneBox, false);
    delete ticket.dataset.error;
    try {
      const order = await api("/api/v1/orders?wait=1", { method: "POST", json: body() });
      const what = `${order.side === "buy" ? "Buy" : "Sell"} ${
        order.quantity ? `${qty(order.quantity)} ${cfg.base}` : `${quoteAmount(order.quote_quantity)} ${cfg.quote}`
      }`;
      const at = order.price ? ` at ${price(order.price)}` : "";
      const filledQty = parse(order.filled_quantity);
      const filled =
        filledQty && filledQty.n > 0n ? ` · filled ${qty(order.filled_quantity)}${order.average_price ? ` @ ${price(order.average_price)}` : ""}` : "";
      const refused = order.status === "rejected" || order.status === "cancelled";
      doneBox.textContent = `Order #${order.id} ${statusLabel(order.status).toLowerCase()}: ${what}${at}${filled}.`;
      doneBox.classList.toggle("alert-warning", refused);
      doneBox.classList.toggle("alert-success", !refused);
      setVisible(doneBox, true);
      ticket.dataset.placed = String(order.id);
      onPlaced(order);
    } catch (error) {
      showErrors(error);
    } finally {
      busy = false;
      submit.disabled = false;
    }
  }

  // --- wiring ---------------------------------------------------------------------------------------
  $$(form, "[data-side-choice]").forEach((b) =>
    b.addEventListener("click", () => {
      side = b.dataset.sideChoice;
      clearErrors();
      layout();
    }),
  );
  $$(form, "[data-market-in]").forEach((b) =>
    b.addEventListener("click", () => {
      marketIn = b.dataset.marketIn;
      layout();
    }),
  );
  $$(form, "[data-pct]").forEach((b) => b.addEventListener("click", () => fillShare(Number(b.dataset.pct))));
  typeSelect.addEventListener("change", () => {
    tifSelect.value = type() === "market" ? "IOC" : "GTC"; // each type starts from its usual time in force
    clearErrors();
    layout();
  });
  [tifSelect, inputs.postOnly, inputs.iceberg].forEach((el) => el.addEventListener("change", layout));
  form.addEventListener("input", estimate);
  form.addEventListener("submit", place);
  layout();
  api("/api/v1/risk/limits")
    .then((data) => {
      limits = data;
      showMaxQuantity();
    })
    .catch(() => {}); // signed out, or the API is away: the ticket works without the hint

  return {
    estimate,
    ready() {
      ticket.dataset.ready = "true";
    },
    // A price clicked in the ladder: a limit order at that price.
    usePrice(value) {
      if (!["limit", "stop_limit"].includes(type())) {
        typeSelect.value = "limit";
        layout();
      }
      inputs.price.value = value;
      estimate();
      inputs.quantity.focus();
    },
  };
}
