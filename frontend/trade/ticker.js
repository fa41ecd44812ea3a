// The market page's ticker strip, live from the ticker: channel.
import { countUp } from "../lib/dom.js";
import { paintTicker } from "../lib/ticker.js";

// onTicker(ticker) hears each one (the order book shows its last price).
export function startTicker(page, { symbol, feed, onTicker = () => {} }) {
  const strip = page.querySelector(".ticker-strip") || page;
  feed.subscribe([`ticker:${symbol}`], (message) => {
    if (!message.data) return;
    paintTicker(strip, message.data);
    onTicker(message.data);
    countUp(page, "updates");
  });
}
