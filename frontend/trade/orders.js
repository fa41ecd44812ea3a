// The trader's orders on this market: open orders (with edit and cancel), order history and fills.
import { api, clientOrderId } from "../lib/api.js";
import { canonical, parse } from "../lib/decimal.js";
import { formatDateTime, formatNumber } from "../lib/format.js";
import { $, escapeHtml, listItems, setVisible, timeHtml } from "../lib/dom.js";

export const LIVE = new Set(["new", "open", "partially_filled", "triggered_pending"]);
const TERMINAL = new Set(["filled", "cancelled", "rejected"]);
// What PATCH /orders/{id} can change: price and quantity of limit and stop-limit orders, the
// quantity of stops without a limit.
const AMENDABLE = new Set(["limit", "stop_limit", "stop_market", "trailing_stop"]);
const PRICED = new Set(["limit", "stop_limit"]);

const TYPE_LABEL = { limit: "Limit", market: "Market", stop_limit: "Stop-limit", stop_market: "Stop-market", trailing_stop: "Trailing" };
const STATUS = {
  new: ["badge-info", "New"],
  open: ["badge-info", "Open"],
  partially_filled: ["badge-warning", "Partially filled"],
  triggered_pending: ["badge-plain", "Waiting for trigger"],
  filled: ["badge-success", "Filled"],
  cancelled: ["badge-plain", "Cancelled"],
  rejected: ["badge-danger", "Rejected"],
};

export const statusLabel = (status) => (STATUS[status] || ["", status])[1];

// onMine({bids, asks}) hears the prices of the trader's resting orders after every change;
// onCancelled() after a cancel was answered (or refused).
export function createOrders(page, { cfg, pricePlaces, qtyPlaces, quotePlaces, showAccountError, onMine = () => {}, onCancelled = () => {} }) {
  const symbol = cfg.symbol;
  const price = (value) => formatNumber(value, { places: pricePlaces });
  const qty = (value) => formatNumber(value, { places: qtyPlaces });
  const sideCell = (side) => `<td class="${side === "buy" ? "up" : "down"}">${side === "buy" ? "Buy" : side === "sell" ? "Sell" : ""}</td>`;
  let open = [];
  // The inline edit form: which order, the values typed so far, its message.
  let editing = null;

  function typeCell(o) {
    const flags = [];
    const usual = (o.type === "limit" && o.time_in_force === "GTC") || (o.type === "market" && o.time_in_force === "IOC");
    if (o.time_in_force && o.type !== "stop_market" && o.type !== "trailing_stop" && !usual) flags.push(o.time_in_force);
    if (o.post_only) flags.push("post-only");
    if (o.display_quantity) flags.push(`iceberg ${qty(o.display_quantity)}`);
    const label = TYPE_LABEL[o.type] || escapeHtml(o.type || "");
    return `${label}${flags.length ? ` <span class="muted small">${escapeHtml(flags.join(" · "))}</span>` : ""}`;
  }

  function trigger(o) {
    if (o.stop_price) return price(o.stop_price);
    if (o.trail_amount) return `trail ${price(o.trail_amount)}`;
    if (o.trail_percent) return `trail ${canonical(o.trail_percent)}%`;
    return "—";
  }

  const amountOf = (o) =>
    o.quantity ? qty(o.quantity) : o.quote_quantity ? `${formatNumber(o.quote_quantity, { places: quotePlaces })} ${cfg.quote}` : "—";

  function badge(o) {
    const [cls, label] = STATUS[o.status] || ["", o.status];
    const reason = o.reject_reason || o.cancel_reason;
    return `<span class="badge ${cls}" data-field="status"${reason ? ` title="${escapeHtml(reason)}"` : ""}>${escapeHtml(label)}</span>`;
  }

  const ours = (o) => LIVE.has(o.status) && (!o.symbol || o.symbol === symbol);

  function paintOpen() {
    const body = $(page, "#open-orders tbody");
    const rows = open.filter(ours);
    $(page, "[data-field=open-count]").textContent = String(rows.length);
    const cancelAll = $(page, "#cancel-all");
    if (cancelAll) cancelAll.disabled = !rows.some((o) => !o.cancelling);
    // a repaint (a stream update) keeps the edit form's cursor where the trader is typing
    const active = document.activeElement;
    const typing = active && active.closest && active.closest(".amend-form") && active.name ? [active.name, active.selectionStart, active.selectionEnd] : null;
    if (!rows.length) {
      body.innerHTML = `<tr><td colspan="9" class="empty-state">No open orders.</td></tr>`;
    } else {
      body.innerHTML = rows
        .map(
          (o) => `<tr data-order="${escapeHtml(o.id)}" data-status="${escapeHtml(o.status)}" data-side="${escapeHtml(o.side)}">
            <td class="muted">${timeHtml(o.created_at, formatDateTime(o.created_at))}</td>
            <td>${typeCell(o)}</td>
            ${sideCell(o.side)}
            <td class="num mono" data-field="price">${o.price ? price(o.price) : "Market"}</td>
            <td class="num mono">${trigger(o)}</td>
            <td class="num mono" data-field="quantity">${amountOf(o)}</td>
            <td class="num mono" data-field="filled">${qty(o.filled_quantity || "0")}</td>
            <td>${badge(o)}</td>
            <td class="num nowrap">${
              AMENDABLE.has(o.type) && o.route !== "smart"
                ? `<button type="button" class="btn btn-secondary btn-sm" data-edit="${escapeHtml(o.id)}"${o.cancelling ? " disabled" : ""} aria-expanded="${editing && editing.id === o.id}">Edit</button> `
                : ""
            }<button type="button" class="btn btn-danger btn-sm" data-cancel="${escapeHtml(o.id)}"${o.cancelling ? " disabled" : ""}>Cancel</button></td>
          </tr>${editing && editing.id === o.id ? editRow(o) : ""}`,
        )
        .join("");
    }
    if (typing && editing) {
      const input = $(page, `[data-amend="${editing.id}"] input[name="${typing[0]}"]`);
      if (input) {
        input.focus();
        input.setSelectionRange(typing[1], typing[2]);
      }
    }
    // the ladder marks the levels holding a resting order of the trader's
    const mine = { bids: new Set(), asks: new Set() };
    rows.forEach((o) => {
      if (o.price && (o.type === "limit" || o.status !== "triggered_pending")) (o.side === "buy" ? mine.bids : mine.asks).add(canonical(o.price));
    });
    onMine(mine);
  }

  // One row under the order: its new price (limit types) and total quantity, prefilled.
  function editRow(o) {
    const priced = PRICED.has(o.type);
    const field = (name, label, value) => `<label class="amend-field">${label}
        <input type="text" class="mono" name="${name}" inputmode="decimal" autocomplete="off" value="${escapeHtml(value)}"></label>`;
    return `<tr class="amend-row" data-amend-for="${escapeHtml(o.id)}"><td colspan="9">
      <form class="amend-form" data-amend="${escapeHtml(o.id)}" novalidate>
        ${priced ? field("price", `Price ${escapeHtml(cfg.quote)}`, editing.price) : ""}
        ${field("quantity", `Amount ${escapeHtml(cfg.base)}`, editing.quantity)}
        <button type="submit" class="btn btn-primary btn-sm"${editing.busy ? " disabled" : ""}>Save</button>
        <button type="button" class="btn btn-secondary btn-sm" data-edit-close>Close</button>
        <span class="muted small amend-note">${
          o.filled_quantity && parse(o.filled_quantity)?.n > 0n ? `Amount includes the ${qty(o.filled_quantity)} filled. ` : ""
        }A lower amount keeps your place in the queue; a new price or a higher amount moves it to the back.</span>
        <p class="amend-message small${editing.error ? " down" : ""}" role="status" data-field="amend-message">${escapeHtml(editing.message || "")}</p>
      </form></td></tr>`;
  }

  function paintHistory(orders) {
    const body = $(page, "#order-history tbody");
    if (!orders.length) {
      body.innerHTML = `<tr><td colspan="9" class="empty-state">No finished orders yet.</td></tr>`;
      return;
    }
    body.innerHTML = orders
      .map((o) => {
        const fees = parse(o.fees_paid);
        return `<tr data-order="${escapeHtml(o.id)}" data-status="${escapeHtml(o.status)}" data-side="${escapeHtml(o.side)}">
          <td class="muted">${timeHtml(o.created_at, formatDateTime(o.created_at))}</td>
          <td>${typeCell(o)}</td>
          ${sideCell(o.side)}
          <td class="num mono">${o.price ? price(o.price) : "Market"}</td>
          <td class="num mono" data-field="average">${o.average_price ? price(o.average_price) : "—"}</td>
          <td class="num mono">${amountOf(o)}</td>
          <td class="num mono" data-field="filled">${qty(o.filled_quantity || "0")}</td>
          <td class="num mono">${fees && fees.n > 0n ? canonical(o.fees_paid) : "—"}</td>
          <td>${badge(o)}</td>
        </tr>`;
      })
      .join("");
  }

  function paintFills(fills) {
    const body = $(page, "#fills tbody");
    if (!fills.length) {
      body.innerHTML = `<tr><td colspan="7" class="empty-state">No fills yet.</td></tr>`;
      return;
    }
    body.innerHTML = fills
      .map(
        (f) => `<tr data-fill="${escapeHtml(f.trade_id ?? "")}" data-order="${escapeHtml(f.order_id ?? "")}" data-side="${escapeHtml(f.side || "")}">
          <td class="muted">${timeHtml(f.time, formatDateTime(f.time))}</td>
          ${sideCell(f.side)}
          <td class="num mono" data-field="price">${price(f.price)}</td>
          <td class="num mono" data-field="quantity">${qty(f.quantity)}</td>
          <td class="num mono">${f.quote_amount ? formatNumber(f.quote_amount, { places: quotePlaces }) : "—"}</td>
          <td class="num mono" data-field="fee">${f.fee ? `${canonical(f.fee)} ${escapeHtml(f.fee_asset || "")}` : "—"}</td>
          <td class="muted" data-field="liquidity">${f.liquidity === "maker" ? "Maker" : f.liquidity === "taker" ? "Taker" : ""}</td>
        </tr>`,
      )
      .join("");
  }

  // Edit: an inline form under the order; Save sends only what changed, with an
  // Idempotency-Key so a retried save is not a second amend.
  $(page, "#open-orders").addEventListener("click", (event) => {
    const edit = event.target.closest("[data-edit]");
    if (edit) {
      const id = Number(edit.dataset.edit);
      const o = open.find((x) => x.id === id);
      editing =
        editing && editing.id === id || !o
          ? null
          : { id, price: o.price ? canonical(o.price) : "", quantity: canonical(o.quantity || "0"), message: "", key: clientOrderId() };
      paintOpen();
      $(page, `[data-amend="${id}"] input`)?.focus();
    } else if (event.target.closest("[data-edit-close]")) {
      editing = null;
      paintOpen();
    }
  });
  $(page, "#open-orders").addEventListener("input", (event) => {
    if (editing && event.target.closest(".amend-form") && event.target.name) {
      editing[event.target.name] = event.target.value;
      editing.key = clientOrderId(); // a new change is a new request
    }
  });
  $(page, "#open-orders").addEventListener("submit", async (event) => {
    const form = event.target.closest(".amend-form");
    if (!form || !editing) return;
    event.preventDefault();
    const o = open.find((x) => x.id === editing.id);
    if (!o) return;
    const change = {};
    if (PRICED.has(o.type) && editing.price.trim() && canonical(editing.price.trim()) !== canonical(o.price || "")) change.price = editing.price.trim();
    if (editing.quantity.trim() && canonical(editing.quantity.trim()) !== canonical(o.quantity || "")) change.quantity = editing.quantity.trim();
    const state = editing;
    if (!Object.keys(change).length) {
      Object.assign(state, { message: "Nothing changed.", error: true });
      return paintOpen();
    }
    Object.assign(state, { busy: true, message: "Sending…", error: false });
    paintOpen();
    try {
      const answer = await api(`/api/v1/orders/${o.id}`, { method: "PATCH", json: change, headers: { "Idempotency-Key": state.key } });
      const { amend, ...order } = answer;
      if (editing === state) editing = amend && amend.status === "pending" ? { ...state, busy: false, message: "Sent; waiting for the engine." } : null;
      upsert(order);
    } catch (error) {
      const fields = Object.values(error.fields || {}).flat();
      Object.assign(state, { busy: false, error: true, message: fields.length ? fields.join(" ") : error.message });
      paintOpen();
    }
    onCancelled();
  });

  // Cancel: the button waits for the answer; a refusal is shown above the tables.
  $(page, "#open-orders").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-cancel]");
    if (!button) return;
    const id = Number(button.dataset.cancel);
    const order = open.find((o) => o.id === id);
    if (order) order.cancelling = true;
    button.disabled = true;
    showAccountError("");
    try {
      upsert(await api(`/api/v1/orders/${id}`, { method: "DELETE" }));
    } catch (error) {
      if (order) order.cancelling = false;
      button.disabled = false;
      showAccountError(listItems([`Order #${id}: ${error.message}`]));
    }
    onCancelled();
  });

  // Cancel all: every open order of the trader on this market, in one request; the orders
  // come back as the engine left them (the user stream tells the rest).
  $(page, "#cancel-all")?.addEventListener("click", async (event) => {
    const button = event.currentTarget;
    const mineHere = open.filter(ours);
    if (!mineHere.length) return;
    mineHere.forEach((o) => (o.cancelling = true));
    button.disabled = true;
    paintOpen();
    showAccountError("");
    try {
      const answer = await api("/api/v1/orders/cancel-all", { method: "POST", json: { symbol } });
      (answer.orders || []).forEach(upsert);
    } catch (error) {
      mineHere.forEach((o) => (o.cancelling = false));
      paintOpen();
      showAccountError(listItems([`Cancel all: ${error.message}`]));
    }
    onCancelled();
  });

  // An order as the API or the user stream gives it: merged into the open ones it belongs to.
  function upsert(order) {
    const at = open.findIndex((o) => o.id === order.id);
    if (at >= 0) open[at] = { ...open[at], ...order };
    else if (LIVE.has(order.status)) open.unshift(order);
    open = open.filter((o) => !TERMINAL.has(o.status));
    if (editing && !open.some((o) => o.id === editing.id)) editing = null;
    paintOpen();
  }

  return {
    upsert,
    find: (id) => open.find((o) => o.id === id),
    // The open orders from the API or a stream snapshot (a cancel under way stays under way).
    setOpen(list) {
      open = list.filter(ours).map((o) => ({ ...o, cancelling: open.find((p) => p.id === o.id)?.cancelling }));
      paintOpen();
    },
    paintHistory,
    paintFills,
  };
}
