// The candlestick chart of the market page, with the volume traded on our book as bars under
// it: history from the candles API, the live candle from the candles: channel, and the
// interval buttons.
import { CandlestickSeries, createChart, HistogramSeries } from "lightweight-charts";
import { api } from "../lib/api.js";
import { $$ } from "../lib/dom.js";

const THEME = {
  layout: { background: { color: "transparent" }, textColor: "#9aa4b2", fontFamily: "Inter Variable, sans-serif" },
  grid: { vertLines: { color: "rgba(255,255,255,0.04)" }, horzLines: { color: "rgba(255,255,255,0.04)" } },
  timeScale: { timeVisible: true, secondsVisible: false },
  rightPriceScale: { borderVisible: false },
};
const CANDLES = { upColor: "#16c784", downColor: "#ea3943", borderVisible: false, wickUpColor: "#16c784", wickDownColor: "#ea3943" };
const HISTORY = 500;
const VOLUME_UP = "rgba(22, 199, 132, 0.45)";
const VOLUME_DOWN = "rgba(234, 57, 67, 0.45)";

// The chart library draws numbers: this is the one place prices become floats, for pixels only.
const toBar = (c) => ({ time: Math.floor(Date.parse(c.time) / 1000), open: +c.open, high: +c.high, low: +c.low, close: +c.close });
const toVolume = (c) => ({
  time: Math.floor(Date.parse(c.time) / 1000),
  value: +(c.volume || 0),
  color: +c.close >= +c.open ? VOLUME_UP : VOLUME_DOWN,
});

export async function startChart(page, { symbol, feed }) {
  const container = page.querySelector("#chart");
  if (!container) return;
  let interval = page.dataset.interval || "1m";
  const chart = createChart(container, { autoSize: true, ...THEME });
  const series = chart.addSeries(CandlestickSeries, CANDLES);
  // volume on its own scale in the bottom fifth; the candles keep the space above it
  const volume = chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  series.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.24 } });

  let latest = 0; // only the newest request paints: a slow answer for an older interval is dropped
  async function load() {
    const request = ++latest;
    const query = new URLSearchParams({ interval, limit: String(HISTORY) });
    const candles = await api(`/api/v1/markets/${encodeURIComponent(symbol)}/candles?${query}`);
    if (request !== latest) return;
    series.setData(candles.map(toBar));
    volume.setData(candles.map(toVolume));
    chart.timeScale().fitContent();
    container.dataset.bars = String(candles.length);
    container.dataset.volumeBars = String(candles.filter((c) => +(c.volume || 0) > 0).length);
    container.dataset.lastVolume = candles.length ? candles.at(-1).volume : "";
  }

  const onCandle = (message) => {
    if (message.channel !== `candles:${symbol}:${interval}` || !message.data) return;
    series.update(toBar(message.data));
    volume.update(toVolume(message.data));
    container.dataset.lastBar = message.data.time;
    container.dataset.lastVolume = message.data.volume ?? "";
  };

  try {
    await load();
  } catch (error) {
    console.warn("chart history:", error.message);
  }
  let unsubscribe = feed.subscribe([`candles:${symbol}:${interval}`], onCandle);

  $$(page, "[data-interval-choice]").forEach((button) =>
    button.addEventListener("click", async () => {
      unsubscribe();
      interval = button.dataset.intervalChoice;
      $$(page, "[data-interval-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      try {
        await load();
      } catch (error) {
        console.warn("chart history:", error.message);
      }
      unsubscribe = feed.subscribe([`candles:${symbol}:${interval}`], onCandle);
    }),
  );
}
