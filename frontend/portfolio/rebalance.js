// The rebalancing form: target percentages per asset, a preview of the orders
// (POST /api/v1/portfolio/rebalance/preview), then placing them as one batch
// (POST /api/v1/portfolio/rebalance). The batch's client_id is chosen with the preview, so a
// retried "Place orders" (a lost answer, a double click) returns the same batch, never a second.
import { api, clientOrderId } from "../lib/api.js";
import { $, $$, escapeHtml, listItems, setVisible } from "../lib/dom.js";
import { formatNumber, formatRatio } from "../lib/format.js";
import { percentFromWeight, percentsFromWeights, weightsFromPercents } from "./valuation.js";

const STATES = { placed: "Placed", refused: "Refused", skipped: "Not placed", pending: "Pending" };
const ORDER_STATES = {
  new: "Entered",
  open: "Open",
  partially_filled: "Partly filled",
  filled: "Filled",
  cancelled: "Cancelled",
  rejected: "Rejected",
};

export function startRebalance(page, { assets, tolerance, onPlaced = () => {} }) {
  const card = $(page, "#rebalance");
  const form = $(card, "#rebalance-form");
  const inputs = Object.fromEntries(assets.map((a) => [a, $(form, `#target-${a}`)]));
  const toleranceInput = $(form, "#target-tolerance");
  const sumNode = $(form, "[data-field=target-sum]");
  const errorBox = $(card, "#rebalance-error");
  const preview = $(card, "#rebalance-preview");
  const ordersBody = $(card, "#rebalance-orders tbody");
  const resultHead = $(card, "[data-field=result-head]");
  const done = $(card, "#rebalance-done");
  const previewButton = $(form, "[data-action=preview]");
  const placeButton = $(form, "[data-action=place]");
  const saveButton = $(form, "[data-action=save-targets]");
  let pending = null; // {payload, clientId} of the preview shown
  let touched = false; // the trader has typed: nothing overwrites the form
  let prefilled = false;
  toleranceInput.value = percentFromWeight(tolerance);

  function showErrors(error) {
    $$(form, "[data-errors]").forEach((list) => {
      list.innerHTML = "";
      setVisible(list, false);
    });
    if (!error) {
      errorBox.innerHTML = "";
      setVisible(errorBox, false);
      return;
    }
    const general = [];
    const fields = error.fields || {};
    const targets = fields.targets;
    if (Array.isArray(targets)) general.push(...targets);
    else if (targets && typeof targets === "object") {
      for (const [asset, messages] of Object.entries(targets)) {
        const list = $(form, `[data-errors="${CSS.escape(asset.toUpperCase())}"]`);
        if (list) {
          list.innerHTML = listItems(messages);
          setVisible(list, true);
        } else general.push(`${asset}: ${messages.join(" ")}`);
      }
    }
    if (fields.tolerance) {
      const list = $(form, `[data-errors="tolerance"]`);
      list.innerHTML = listItems(fields.tolerance);
      setVisible(list, true);
    }
    for (const [name, messages] of Object.entries(fields)) {
      if (name !== "targets" && name !== "tolerance" && Array.isArray(messages)) general.push(`${name}: ${messages.join(" ")}`);
    }
    const headline = error.limit ? `${error.message} (limit: ${error.limit})` : error.message;
    errorBox.innerHTML = listItems([headline, ...general.filter((m) => m !== headline)]);
    setVisible(errorBox, true);
  }

  function read() {
    const percents = Object.fromEntries(assets.map((a) => [a, inputs[a].value]));
    const result = weightsFromPercents(percents);
    const tol = weightsFromPercents({ tolerance: toleranceInput.value });
    return { ...result, tolerance: toleranceInput.value.trim() === "" ? null : tol.weights.tolerance ?? toleranceInput.value };
  }

  function onInput() {
    touched = true;
    const { sum, complete } = read();
    sumNode.textContent = formatNumber(sum, { minPlaces: 0 });
    sumNode.classList.toggle("down", !complete);
    // a preview is for the targets it was made with
    pending = null;
    placeButton.disabled = true;
    setVisible(preview, false);
  }
  form.addEventListener("input", onInput);

  function setTargets(weights, tol) {
    const percents = weights ? Object.fromEntries(assets.map((a) => [a, percentFromWeight(weights[a] || "0")])) : null;
    if (percents) assets.forEach((a) => (inputs[a].value = percents[a]));
    if (tol) toleranceInput.value = percentFromWeight(tol);
    onInput();
    touched = false;
    prefilled = true;
  }

  function paintOrders(orders, batch = null) {
    setVisible(resultHead, Boolean(batch));
    ordersBody.innerHTML = orders.length
      ? orders
          .map((o) => {
            const base = o.symbol.split("-")[0];
            const result = batch
              ? `<td data-field="result" data-state="${escapeHtml(o.state)}">${escapeHtml(STATES[o.state] || o.state)}${
                  o.order ? ` · ${escapeHtml(ORDER_STATES[o.order.status] || o.order.status)} ${escapeHtml(formatNumber(o.order.filled_quantity, { minPlaces: 0 }))}` : ""
                }${o.error ? `<div class="small down">${escapeHtml(o.error.message)}</div>` : ""}</td>`
              : "";
            return `<tr data-order-side="${escapeHtml(o.side)}" data-symbol="${escapeHtml(o.symbol)}">
              <td class="${o.side === "buy" ? "up" : "down"}">${o.side === "buy" ? "Buy" : "Sell"} ${escapeHtml(base)}</td>
              <td class="num mono" data-field="quantity">${escapeHtml(formatNumber(o.quantity, { minPlaces: 0 }))}</td>
              <td class="num mono hide-sm">${escapeHtml(formatNumber(o.est_price, { places: 2 }))}</td>
              <td class="num mono">${escapeHtml(formatNumber(o.est_notional, { places: 2 }))}</td>
              <td class="num mono hide-sm">${escapeHtml(formatNumber(o.est_fee, { minPlaces: 2 }))} ${escapeHtml(o.fee_asset)}</td>
              ${result}
            </tr>`;
          })
          .join("")
      : `<tr><td colspan="6" class="empty-state">No order needed.</td></tr>`;
  }

  async function doPreview() {
    showErrors(null);
    setVisible(done, false);
    const { weights, tolerance: tol } = read();
    const payload = { targets: weights, ...(tol === null ? {} : { tolerance: tol }) };
    previewButton.disabled = true;
    try {
      const body = await api("/api/v1/portfolio/rebalance/preview", { method: "POST", json: payload });
      const drift = $(preview, "[data-field=drift]");
      drift.textContent = body.orders.length
        ? `Drift from your targets: ${formatRatio(body.drift_before, 2)} now, ${formatRatio(body.drift_after, 2)} after these orders (tolerance ${formatRatio(body.tolerance, 2)}). Estimated at the best bid and ask; the taker fee comes out of what each order receives.`
        : `Drift from your targets: ${formatRatio(body.drift_before, 2)}, within your tolerance of ${formatRatio(body.tolerance, 2)} (or no order can bring it closer). Nothing to place.`;
      paintOrders(body.orders);
      setVisible(preview, true);
      pending = body.orders.length ? { payload, clientId: clientOrderId().replace(/^web-/, "rebalance-") } : null;
      placeButton.disabled = !pending;
      card.dataset.previewed = String(body.orders.length);
    } catch (error) {
      showErrors(error);
    } finally {
      previewButton.disabled = false;
    }
  }

  async function doPlace() {
    if (!pending) return;
    showErrors(null);
    placeButton.disabled = true;
    previewButton.disabled = true;
    const { payload, clientId } = pending;
    try {
      const batch = await api("/api/v1/portfolio/rebalance", { method: "POST", json: { ...payload, client_id: clientId } });
      paintOrders(batch.orders, batch);
      const placed = batch.orders.filter((o) => o.state === "placed").length;
      done.className = `alert ${batch.status === "placed" ? "alert-success" : "alert-warning"}`;
      done.textContent =
        batch.status === "placed"
          ? `Rebalance placed: ${placed} order${placed === 1 ? "" : "s"} entered.`
          : batch.status === "nothing_to_do"
            ? "Nothing to place: your portfolio is within your tolerance."
            : `Rebalance partly placed (${placed} of ${batch.orders.length} orders): ${batch.error ? batch.error.message : ""}`;
      setVisible(done, true);
      card.dataset.batch = String(batch.id);
      card.dataset.status = batch.status;
      pending = null; // that client_id is spent: a new preview makes a new batch
      onPlaced(batch);
    } catch (error) {
      showErrors(error);
      // a lost answer keeps the same client_id: placing again returns the batch if it was made;
      // after a refusal nothing was placed, and a new preview starts over
      placeButton.disabled = error.code !== "network";
    } finally {
      previewButton.disabled = false;
    }
  }

  async function doSave() {
    showErrors(null);
    const { weights, tolerance: tol } = read();
    try {
      await api("/api/v1/portfolio/targets", {
        method: "PUT",
        json: { targets: weights, ...(tol === null ? {} : { tolerance: tol }) },
      });
      done.className = "alert alert-success";
      done.textContent = "Saved as your targets: the page tells you when your portfolio drifts from them.";
      setVisible(done, true);
      onPlaced(null);
    } catch (error) {
      showErrors(error);
    }
  }

  previewButton.addEventListener("click", doPreview);
  placeButton.addEventListener("click", doPlace);
  saveButton.addEventListener("click", doSave);

  return {
    setTargets,
    // the current weights, as a starting point, until the trader types or has saved targets
    suggestFrom(view, saved) {
      if (touched || prefilled) return;
      if (saved?.targets) return setTargets(saved.targets, saved.tolerance);
      const weights = Object.fromEntries(view.assets.map((a) => [a.asset, a.weight || "0"]));
      const percents = percentsFromWeights(weights, assets);
      assets.forEach((a) => (inputs[a].value = percents[a]));
      onInput();
      touched = false;
      prefilled = true;
    },
    showNow(view) {
      for (const a of view.assets) {
        const node = $(form, `[data-target="${CSS.escape(a.asset)}"] [data-field=now]`);
        if (node) node.textContent = `now ${formatRatio(a.weight, 1)}`;
      }
    },
  };
}
