// Live market pages: the websocket client, the markets table and the market page
// (candlestick chart, ladder, recent trades), all fed by /ws/market/.
import { CandlestickSeries, createChart } from "lightweight-charts";

export class MarketSocket {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.channels = new Set();
    this.backoff = 500;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws/market/`);
    this.ws.addEventListener("open", () => {
      this.backoff = 500;
      document.body.dataset.stream = "live";
      if (this.channels.size) this.send({ op: "subscribe", channels: [...this.channels] });
    });
    this.ws.addEventListener("message", (event) => this.onMessage(JSON.parse(event.data)));
    this.ws.addEventListener("close", () => {
      document.body.dataset.stream = "reconnecting";
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    });
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  subscribe(channels) {
    channels.forEach((channel) => this.channels.add(channel));
    this.send({ op: "subscribe", channels });
  }
}

const fmt = (value, digits = 2) =>
  value === null || value === undefined
    ? "—"
    : Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function setText(root, selector, text) {
  root.querySelectorAll(selector).forEach((node) => (node.textContent = text));
}

function paintTicker(root, ticker) {
  setText(root, "[data-field=last]", fmt(ticker.last));
  setText(root, "[data-field=index]", fmt(ticker.index_price));
  setText(root, "[data-field=high]", fmt(ticker.high_24h));
  setText(root, "[data-field=low]", fmt(ticker.low_24h));
  const change = ticker.change_24h_percent;
  root.querySelectorAll("[data-field=change]").forEach((node) => {
    node.textContent = change === null ? "—" : `${Number(change) > 0 ? "+" : ""}${change}%`;
    node.classList.toggle("up", Number(change) > 0);
    node.classList.toggle("down", Number(change) < 0);
  });
}

function csrfToken() {
  const match = document.cookie.match(/csrftoken=([^;]+)/);
  return match ? match[1] : "";
}

function marketsPage(page) {
  const rows = [...page.querySelectorAll("[data-market]")];
  const socket = new MarketSocket((message) => {
    if (!message.channel || !message.channel.startsWith("ticker:")) return;
    const symbol = message.channel.slice(7);
    rows.filter((row) => row.dataset.market === symbol).forEach((row) => paintTicker(row, message.data));
  });
  socket.subscribe(rows.map((row) => `ticker:${row.dataset.market}`));

  page.addEventListener("click", async (event) => {
    const star = event.target.closest("[data-watch]");
    if (!star) return;
    const symbol = star.dataset.watch;
    const watching = star.getAttribute("aria-pressed") === "true";
    const response = await fetch(watching ? `/api/v1/watchlist/${symbol}` : "/api/v1/watchlist", {
      method: watching ? "DELETE" : "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: watching ? undefined : JSON.stringify({ symbol }),
      credentials: "same-origin",
    });
    if (response.ok) star.setAttribute("aria-pressed", watching ? "false" : "true");
  });
}

async function marketPage(page) {
  const symbol = page.dataset.symbol;
  let interval = page.dataset.interval || "1m";
  const container = page.querySelector("#chart");
  const chart = createChart(container, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: "#9aa4b2", fontFamily: "Inter Variable, sans-serif" },
    grid: { vertLines: { color: "rgba(255,255,255,0.04)" }, horzLines: { color: "rgba(255,255,255,0.04)" } },
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { borderVisible: false },
  });
  const series = chart.addSeries(CandlestickSeries, {
    upColor: "#16c784", downColor: "#ea3943", borderVisible: false, wickUpColor: "#16c784", wickDownColor: "#ea3943",
  });
  const toBar = (c) => ({
    time: Math.floor(Date.parse(c.time) / 1000), open: +c.open, high: +c.high, low: +c.low, close: +c.close,
  });

  async function load() {
    const response = await fetch(`/api/v1/markets/${symbol}/candles?interval=${interval}&limit=500`);
    const candles = await response.json();
    series.setData(candles.map(toBar));
    chart.timeScale().fitContent();
    container.dataset.bars = String(candles.length);
  }
  await load();

  const socket = new MarketSocket((message) => {
    const channel = message.channel || "";
    if (channel === `ticker:${symbol}`) {
      paintTicker(page, message.data);
      page.dataset.updates = String(Number(page.dataset.updates || 0) + 1);
    } else if (channel === `candles:${symbol}:${interval}`) {
      series.update(toBar(message.data));
      container.dataset.lastBar = message.data.time;
    }
  });
  // the book and recent trades are trade.js's (snapshot, sequenced deltas, gap recovery)
  socket.subscribe([`ticker:${symbol}`, `candles:${symbol}:${interval}`]);

  page.querySelectorAll("[data-interval-choice]").forEach((button) =>
    button.addEventListener("click", async () => {
      socket.send({ op: "unsubscribe", channels: [`candles:${symbol}:${interval}`] });
      interval = button.dataset.intervalChoice;
      page.querySelectorAll("[data-interval-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      await load();
      socket.subscribe([`candles:${symbol}:${interval}`]);
    }),
  );
}

document.addEventListener("DOMContentLoaded", () => {
  const markets = document.querySelector("[data-page=markets]");
  if (markets) marketsPage(markets);
  const market = document.querySelector("[data-page=market]");
  if (market) marketPage(market);
});

// --- options chain page ---------------------------------------------------------------
function optionsPage(page) {
  let underlying = page.dataset.underlying || "BTC";
  let expiry = "";
  const table = page.querySelector("#chain tbody");
  const select = page.querySelector("#expiry");

  const cell = (leg, field, cls = "") => `<td class="num mono ${cls}">${leg ? leg[field] : "—"}</td>`;
  let latest = 0; // only the newest request paints: a slow answer for the old underlying is dropped
  async function refresh() {
    const request = ++latest;
    const query = new URLSearchParams({ underlying });
    if (expiry) query.set("expiry", expiry);
    const response = await fetch(`/api/v1/options/chain?${query}`);
    const body = await response.json();
    if (request !== latest) return;
    if (response.status === 404 && expiry) {
      expiry = ""; // the selected expiry has just expired: start again from the live ones
      return refresh();
    }
    if (!response.ok) {
      table.innerHTML = `<tr><td colspan="11" class="empty-state">${body.error.message}</td></tr>`;
      return;
    }
    setText(page, "[data-field=index]", fmt(body.index_price));
    if (!expiry && body.expiries.length) {
      select.innerHTML = body.expiries
        .map((e) => `<option value="${e.expiry}">${new Date(e.expiry).toUTCString().slice(5, 16)}</option>`)
        .join("");
      expiry = body.expiries[0].expiry;
      return refresh();
    }
    const block = body.expiries.find((e) => e.expiry === expiry) || body.expiries[0];
    if (!block) {
      select.innerHTML = "";
      table.innerHTML = `<tr><td colspan="11" class="empty-state">No ${underlying} series are listed yet.</td></tr>`;
      return;
    }
    setText(page, "[data-field=atm-vol]", `${(Number(block.atm_vol) * 100).toFixed(1)}%`);
    table.innerHTML = block.rows
      .map(
        (row) => `<tr data-strike="${row.strike}">
          ${cell(row.call, "bid_usdt")}${cell(row.call, "mark_usdt", "mark")}${cell(row.call, "ask_usdt")}${cell(row.call, "iv")}${cell(row.call, "delta")}
          <th class="num strike">${fmt(row.strike, 0)}</th>
          ${cell(row.put, "bid_usdt")}${cell(row.put, "mark_usdt", "mark")}${cell(row.put, "ask_usdt")}${cell(row.put, "iv")}${cell(row.put, "delta")}
        </tr>`,
      )
      .join("");
    page.dataset.refreshes = String(Number(page.dataset.refreshes || 0) + 1);
  }

  page.querySelectorAll("[data-underlying-choice]").forEach((button) =>
    button.addEventListener("click", () => {
      underlying = button.dataset.underlyingChoice;
      expiry = "";
      page.querySelectorAll("[data-underlying-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      socket.subscribe([`index:${underlying}`]);
      refresh();
    }),
  );
  select.addEventListener("change", () => {
    expiry = select.value;
    refresh();
  });

  const socket = new MarketSocket((message) => {
    if (message.channel === `index:${underlying}` && message.data.price) {
      setText(page, "[data-field=index]", fmt(message.data.price));
    }
  });
  socket.subscribe([`index:${underlying}`]);
  refresh();
  setInterval(refresh, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const options = document.querySelector("[data-page=options]");
  if (options) optionsPage(options);
});
