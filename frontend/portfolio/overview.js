// The Portfolio page's summary, assets table and option positions: painted from
// GET /api/v1/portfolio and repainted at every tick of the prices (valuation.js redoes the
// price-dependent figures exactly); refetched on a change in the trader's account, every
// REFRESH_MS, and when the cost method changes.
import { api } from "../lib/api.js";
import { $, countUp, escapeHtml, setVisible } from "../lib/dom.js";
import { DASH, formatAmount, formatDate, formatNumber, formatRatio, formatSigned } from "../lib/format.js";
import { percentFromWeight, revalue, USDT } from "./valuation.js";

const REFRESH_MS = 15000;
const COINS = { BTC: "₿", ETH: "Ξ", USDT: "₮" };
const usdt = (value) => formatAmount(value, USDT);

function signed(node, value, { places = 2, suffix = "" } = {}) {
  const shown = formatSigned(value, { places });
  node.textContent = shown.text === DASH ? DASH : `${shown.text}${suffix}`;
  node.classList.toggle("up", shown.cls === "up");
  node.classList.toggle("down", shown.cls === "down");
}

function cell(field, value, html, cls = "") {
  return `<td class="num mono ${cls}" data-field="${field}" data-value="${escapeHtml(value ?? "")}">${html}</td>`;
}

function pnlCell(field, value, cls = "") {
  const shown = formatSigned(value, { places: 2 });
  return cell(field, value, escapeHtml(shown.text), `${shown.cls} ${cls}`);
}

// Puts the rows of `html` into `body`, keeping the rows and cells already there (matched by
// the row's data-<key>) and changing only what differs: a tick rewrites a few cells, never
// the table, so nothing the trader points at or focuses is replaced under them.
function syncRows(body, html, key) {
  const template = document.createElement("template");
  template.innerHTML = `<table><tbody>${html}</tbody></table>`;
  const fresh = [...template.content.querySelectorAll("tbody > tr")];
  const id = (row) => row.dataset[key] ?? row.dataset.empty ?? "";
  const existing = new Map([...body.children].map((row) => [id(row), row]));
  const kept = new Set();
  fresh.forEach((row, index) => {
    let current = existing.get(id(row));
    if (current && current.cells.length === row.cells.length) {
      syncAttributes(current, row);
      [...row.cells].forEach((cell, n) => {
        const target = current.cells[n];
        syncAttributes(target, cell);
        if (target.innerHTML !== cell.innerHTML) target.innerHTML = cell.innerHTML;
      });
    } else {
      if (current) current.remove();
      current = row;
    }
    if (body.children[index] !== current) body.insertBefore(current, body.children[index] || null);
    kept.add(current);
  });
  [...body.children].forEach((row) => kept.has(row) || row.remove());
}

function syncAttributes(target, source) {
  for (const { name, value } of [...source.attributes]) if (target.getAttribute(name) !== value) target.setAttribute(name, value);
  for (const { name } of [...target.attributes]) if (!source.hasAttribute(name)) target.removeAttribute(name);
}

// onView(view) hears every repaint (the allocation chart follows it); onLots(asset) a row's Lots button.
export function startOverview(page, { onView = () => {}, onLots = () => {} }) {
  const summary = $(page, "#summary");
  const assetsBody = $(page, "#assets tbody");
  const optionsBody = $(page, "#option-positions tbody");
  const errorBox = $(page, "#portfolio-error");
  let method = page.dataset.method || "fifo";
  let body = null;
  const prices = {};
  let painting = false;

  function paint() {
    painting = false;
    if (!body) return;
    const view = revalue(body, prices);
    const total = $(summary, "[data-field=total]");
    total.textContent = usdt(view.total_usdt);
    total.dataset.value = view.total_usdt;
    signed($(summary, "[data-field=pnl-today]"), view.pnl_today_usdt);
    const ratio = $(summary, "[data-field=pnl-today-pct]");
    ratio.textContent =
      view.pnl_today_ratio === null ? "" : `(${formatSigned(percentFromWeight(view.pnl_today_ratio), { places: 2 }).text} %)`;
    signed($(summary, "[data-field=unrealized]"), view.unrealized_pnl_usdt);
    signed($(summary, "[data-field=realized]"), view.realized_pnl_usdt);
    setVisible($(page, "#stale-note"), view.assets.some((a) => a.stale && !a.live) || view.options.stale);

    const assetRows = view.assets
      .map((a) => {
        const asset = escapeHtml(a.asset);
        const held = a.held && !/^0(\.0+)?$/.test(a.held);
        const coin = `<span class="coin coin-${asset.toLowerCase()}" aria-hidden="true">${COINS[a.asset] || asset[0]}</span>`;
        return `<tr data-asset="${asset}" class="${a.stale && !a.live ? "stale" : ""}">
          <td>${a.asset === USDT ? `<span class="pair">${coin}${asset}</span>` : `<button type="button" class="pair link-button" data-lots="${asset}" title="Open lots of ${asset}">${coin}${asset}</button>`}
            <div class="muted small show-sm mono">${escapeHtml(formatAmount(a.quantity, a.asset))}</div></td>
          ${cell("quantity", a.quantity, `${escapeHtml(formatAmount(a.quantity, a.asset))}${held ? `<div class="muted small">${escapeHtml(formatAmount(a.held, a.asset))} held</div>` : ""}`, "hide-sm")}
          ${cell("price", a.price_usdt, escapeHtml(a.asset === USDT ? "1.00" : usdt(a.price_usdt)), "hide-sm")}
          ${cell("value", a.value_usdt, escapeHtml(usdt(a.value_usdt)))}
          ${cell("weight", a.weight, escapeHtml(formatRatio(a.weight, 1)), "hide-sm")}
          ${cell("cost", a.cost_basis_usdt, escapeHtml(a.asset === USDT ? DASH : usdt(a.cost_basis_usdt)), "hide-sm")}
          ${a.asset === USDT ? cell("unrealized", "", DASH) : pnlCell("unrealized", a.unrealized_pnl_usdt)}
          ${a.asset === USDT ? cell("realized", "", DASH, "hide-sm") : pnlCell("realized", a.realized_pnl_usdt, "hide-sm")}
          <td class="hide-sm">${a.asset === USDT ? "" : `<button type="button" class="btn btn-ghost btn-sm" data-lots="${asset}">Lots</button>`}</td>
        </tr>`;
      })
      .join("");
    syncRows(assetsBody, assetRows, "asset");

    const options = view.options;
    const value = $(page, "[data-field=options-value]");
    value.textContent = usdt(options.value_usdt);
    value.dataset.value = options.value_usdt;
    const positions = options.positions || [];
    const optionRows = positions.length
      ? positions
          .map((p) => {
            const series = escapeHtml(p.series);
            const kind = p.option_type === "C" ? "Call" : "Put";
            return `<tr data-series="${series}" title="${series}">
              <td><div class="mono">${escapeHtml(p.underlying)} ${escapeHtml(formatNumber(p.strike, { minPlaces: 0 }))} ${kind}</div>
                <div class="muted small">${escapeHtml(formatDate(p.expiry, { year: false }))}<span class="show-sm-inline"> · ${escapeHtml(formatNumber(p.contracts, { minPlaces: 2 }))} ct</span></div></td>
              ${cell("contracts", p.contracts, escapeHtml(formatNumber(p.contracts, { minPlaces: 2 })), "hide-sm")}
              ${cell("mark", p.mark_price_usdt, escapeHtml(usdt(p.mark_price_usdt)), "hide-sm")}
              ${cell("value", p.value_usdt, escapeHtml(usdt(p.value_usdt)))}
              ${cell("cost", p.cost_usdt, escapeHtml(usdt(p.cost_usdt)), "hide-sm")}
              ${pnlCell("unrealized", p.unrealized_pnl_usdt)}
              ${pnlCell("realized", p.realized_pnl_usdt, "hide-sm")}
              ${pnlCell("session", p.session_pnl_usdt, "hide-sm")}
            </tr>`;
          })
          .join("")
      : `<tr data-empty="options"><td colspan="8" class="empty-state">No option positions this session. <a href="/options/">Trade options</a></td></tr>`;
    syncRows(optionsBody, optionRows, "series");

    page.dataset.valuedAt = body.valued_at;
    page.dataset.ready = "true";
    countUp(page, "paints");
    onView(view);
  }

  function schedule() {
    if (painting) return;
    painting = true;
    requestAnimationFrame(paint);
  }

  let latest = 0;
  async function refresh() {
    const request = ++latest;
    try {
      const fresh = await api(`/api/v1/portfolio?method=${encodeURIComponent(method)}`);
      if (request !== latest) return;
      body = fresh;
      // a price the API has just read is newer than an older tick
      for (const a of body.assets) delete prices[a.asset];
      errorBox.innerHTML = "";
      setVisible(errorBox, false);
      paint();
    } catch (error) {
      errorBox.innerHTML = `<li>Your portfolio could not be loaded: ${escapeHtml(error.message)}</li>`;
      setVisible(errorBox, true);
    }
  }

  assetsBody.addEventListener("click", (event) => {
    const button = event.target.closest("[data-lots]");
    if (button) onLots(button.dataset.lots, method);
  });

  setInterval(refresh, REFRESH_MS);
  refresh();

  return {
    refresh,
    // a ticker's last price for a base asset
    tick(asset, last) {
      if (!last || asset === USDT) return;
      prices[asset] = last;
      countUp(page, "ticks");
      schedule();
    },
    setMethod(next) {
      method = next;
      page.dataset.method = next;
      refresh();
    },
    get method() {
      return method;
    },
    get view() {
      return body ? revalue(body, prices) : null;
    },
  };
}
