// The market page's ticker strip, live from the ticker: channel.
import { countUp } from "../lib/dom.js";
import { paintTicker } from "../lib/ticker.js";

export function startTicker(page, { symbol, feed }) {
  const strip = page.querySelector(".ticker-strip") || page;
  feed.subscribe([`ticker:${symbol}`], (message) => {
    if (!message.data) return;
    paintTicker(strip, message.data);
    countUp(page, "updates");
  });
}
