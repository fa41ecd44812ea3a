// The spot market page (/markets/<SYMBOL>/): chart, ticker, order book and recent trades for
// everyone, all on the page's one /ws/market/ connection; for a signed-in trader also the
// order ticket, open orders, history, fills and balances (trade/account.js, over /ws/user/),
// and the bell beside the last price that sets a price alert (trade/alert.js).
import { placesOf } from "./lib/decimal.js";
import { readJson } from "./lib/dom.js";
import { marketFeed } from "./lib/socket.js";
import { startAccount } from "./trade/account.js";
import { startPriceAlert } from "./trade/alert.js";
import { startBook } from "./trade/book.js";
import { startChart } from "./trade/chart.js";
import { startTape } from "./trade/tape.js";
import { startTicker } from "./trade/ticker.js";

const QUOTE_PLACES = 2; // amounts of the quote asset (USDT) are shown to the cent

function setConnection(state) {
  const node = document.getElementById("conn-market");
  if (!node) return;
  const text = { connecting: "Market: connecting", live: "Market: live", offline: "Market: reconnecting" };
  node.dataset.state = state;
  node.textContent = text[state];
}

function marketPage(page, cfg) {
  const symbol = cfg.symbol;
  const places = {
    price: placesOf(cfg.tick_size),
    quantity: placesOf(cfg.lot_size),
    quote: QUOTE_PLACES,
    of: (asset) => (asset === cfg.quote ? QUOTE_PLACES : placesOf(cfg.lot_size)),
  };
  const feed = marketFeed();
  feed.onState(setConnection);
  let account = null;

  startChart(page, { symbol, feed });
  const ladder = startBook(page, {
    symbol,
    feed,
    pricePlaces: places.price,
    qtyPlaces: places.quantity,
    tickSize: cfg.tick_size,
    lastPrice: cfg.last, // what the header shows: the last trade, or the index before any
    onChange: () => account?.estimate(),
    onPick: (price) => account?.usePrice(price),
  });
  // the book's middle row follows the header's last price (signed in or not)
  startTicker(page, { symbol, feed, onTicker: (ticker) => ladder.setLast(ticker.last) });
  startTape(page, {
    symbol,
    feed,
    pricePlaces: places.price,
    qtyPlaces: places.quantity,
    onTrade: (price, { snapshot }) => {
      ladder.setLast(price);
      if (!snapshot) account?.publicTrade();
    },
  });
  if (cfg.signed_in && page.querySelector("#spot-ticket")) {
    const market = {
      book: ladder.book,
      get lastPrice() {
        return ladder.lastPrice;
      },
      setMine: (levels) => ladder.setMine(levels),
    };
    account = startAccount(page, { cfg, market, places });
  }
  // the bell beside the last price: the tape's last trade, else the price the page was drawn with
  startPriceAlert(page, {
    symbol,
    currentPrice: () => ladder.lastPrice || (page.querySelector("#last-price")?.textContent || "").replace(/[,\s—]/g, ""),
  });
  page.dataset.trade = "ready";
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-page=market]");
  const cfg = readJson("trade-config");
  if (page && cfg) marketPage(page, cfg);
});
