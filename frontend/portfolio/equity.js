// The equity curve (lightweight-charts, as the market page's chart) from
// GET /api/v1/portfolio/performance, with the time- and money-weighted returns of the period.
import { AreaSeries, createChart } from "lightweight-charts";
import { api } from "../lib/api.js";
import { $, $$ } from "../lib/dom.js";
import { DASH, formatRatio } from "../lib/format.js";

const THEME = {
  layout: { background: { color: "transparent" }, textColor: "#9aa4b2", fontFamily: "Inter Variable, sans-serif" },
  grid: { vertLines: { color: "rgba(255,255,255,0.04)" }, horzLines: { color: "rgba(255,255,255,0.04)" } },
  timeScale: { timeVisible: true, secondsVisible: false, borderVisible: false },
  rightPriceScale: { borderVisible: false },
};
const AREA = { lineColor: "#7b6cff", topColor: "rgba(123,108,255,0.35)", bottomColor: "rgba(123,108,255,0.02)", lineWidth: 2 };

// The chart library draws numbers: this is the one place values become floats, for pixels only.
const toPoint = (p) => ({ time: Math.floor(Date.parse(p.at) / 1000), value: +p.value_usdt });

export function startEquity(page, { period }) {
  const container = $(page, "#equity-chart");
  const returns = $(page, "#returns");
  const chart = createChart(container, { autoSize: true, ...THEME });
  const series = chart.addSeries(AreaSeries, AREA);
  let current = period;
  let latest = 0;

  async function load() {
    const request = ++latest;
    try {
      const body = await api(`/api/v1/portfolio/performance?period=${encodeURIComponent(current)}`);
      if (request !== latest) return;
      const points = [];
      for (const point of body.points.map(toPoint)) {
        // one point a moment: the live value may share its second with the last close
        if (points.length && points[points.length - 1].time >= point.time) points.pop();
        points.push(point);
      }
      series.setData(points);
      chart.timeScale().fitContent();
      container.dataset.points = String(points.length);
      returns.querySelector("[data-field=twr]").textContent = body.twr === null ? DASH : formatRatio(body.twr, 2);
      returns.querySelector("[data-field=mwr]").textContent = body.mwr === null ? DASH : formatRatio(body.mwr, 2);
    } catch (error) {
      container.dataset.error = error.message;
    }
  }

  $$(page, "[data-period-choice]").forEach((button) =>
    button.addEventListener("click", () => {
      current = button.dataset.periodChoice;
      $$(page, "[data-period-choice]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      load();
    }),
  );
  load();
  return { reload: load };
}
