// The allocation donut: each asset's and the options' share of the total value, drawn as SVG
// arcs (floats here are pixels only; the shares come from the exact weights).
import { escapeHtml } from "../lib/dom.js";
import { formatNumber, formatRatio } from "../lib/format.js";

const COLOURS = { BTC: "#f7931a", ETH: "#8c8cf2", USDT: "#26a17b", Options: "#4ea8ff" };
const RADIUS = 48;
const CIRCUMFERENCE = 2 * Math.PI * RADIUS;

export function startAllocation(page) {
  const svg = page.querySelector("#allocation-chart");
  const legend = page.querySelector("#allocation-legend");
  return {
    paint(view) {
      const slices = view.assets
        .filter((a) => a.weight !== null && Number(a.weight) > 0)
        .map((a) => ({ name: a.asset, weight: a.weight, value: a.value_usdt }));
      if (view.options.weight && Number(view.options.weight) > 0) {
        slices.push({ name: "Options", weight: view.options.weight, value: view.options.value_usdt });
      }
      let offset = 0;
      const arcs = slices.map((slice) => {
        const length = Number(slice.weight) * CIRCUMFERENCE;
        const arc = `<circle r="${RADIUS}" cx="60" cy="60" fill="none" stroke="${COLOURS[slice.name] || "#95a0b8"}"
          stroke-width="18" stroke-dasharray="${length} ${CIRCUMFERENCE - length}" stroke-dashoffset="${-offset}"
          transform="rotate(-90 60 60)"><title>${escapeHtml(slice.name)} ${escapeHtml(formatRatio(slice.weight, 1))}</title></circle>`;
        offset += length;
        return arc;
      });
      svg.innerHTML = slices.length
        ? arcs.join("")
        : `<circle r="${RADIUS}" cx="60" cy="60" fill="none" stroke="#252e40" stroke-width="18"></circle>`;
      legend.innerHTML = slices.length
        ? slices
            .map(
              (s) => `<li data-slice="${escapeHtml(s.name)}"><span class="swatch" style="background:${COLOURS[s.name] || "#95a0b8"}"></span>
                <span>${escapeHtml(s.name)}</span><span class="mono">${escapeHtml(formatRatio(s.weight, 1))}</span>
                <span class="mono muted small">${escapeHtml(formatNumber(s.value, { places: 2 }))}</span></li>`,
            )
            .join("")
        : `<li class="muted small">Nothing held yet. <a href="/wallet/">Deposit</a> to start.</li>`;
    },
  };
}
