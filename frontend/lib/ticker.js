// Paints a ticker (the API's and the ticker: channel's shape) into [data-field] cells under
// root: last, 24 h change, high, low, volume and the index, prices with two decimals.
import { formatNumber, formatSigned, DASH } from "./format.js";
import { setText } from "./dom.js";

const price = (value) => formatNumber(value, { places: 2 });

export function paintTicker(root, ticker) {
  setText(root, "[data-field=last]", price(ticker.last));
  setText(root, "[data-field=index]", price(ticker.index_price));
  setText(root, "[data-field=high]", price(ticker.high_24h));
  setText(root, "[data-field=low]", price(ticker.low_24h));
  setText(root, "[data-field=volume]", formatNumber(ticker.volume_24h, { places: 4 }));
  const change = formatSigned(ticker.change_24h_percent, { places: 2 });
  root.querySelectorAll("[data-field=change]").forEach((node) => {
    node.textContent = change.text === DASH ? DASH : `${change.text}%`;
    node.classList.toggle("up", change.cls === "up");
    node.classList.toggle("down", change.cls === "down");
  });
}
