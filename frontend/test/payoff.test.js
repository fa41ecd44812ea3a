import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSeries, payoffAt, payoffCurve, payoffSummary, payoffSvg, payoffView, priceRange } from "../options/payoff.js";

const call = { kind: "call", strike: "65000", premium: "1234.56", contracts: "0.50" };
const put = { kind: "put", strike: "3400", premium: "120.10", contracts: "2" };

test("a series name gives the underlying, strike and kind", () => {
  assert.deepEqual(parseSeries("BTC-20261225-100000-C"), {
    underlying: "BTC",
    expiry: "20261225",
    strike: "100000",
    kind: "call",
  });
  assert.equal(parseSeries("ETH-20261225-3400-P").kind, "put");
  assert.equal(parseSeries("BTC-USDT"), null);
  assert.equal(parseSeries(undefined), null);
});

test("at expiry a call pays what it is in the money less the premium, times the contracts", () => {
  assert.equal(payoffAt(call, "60000"), "-617.2800"); // expires worthless: the premium is lost
  assert.equal(payoffAt(call, "65000"), "-617.2800");
  assert.equal(payoffAt(call, "66234.56"), "0.0000"); // the breakeven
  assert.equal(payoffAt(call, "70000"), "1882.7200"); // (5000 - 1234.56) x 0.5
});

test("a put's payoff mirrors it below the strike", () => {
  assert.equal(payoffAt(put, "3500"), "-240.20");
  assert.equal(payoffAt(put, "3279.90"), "0.00");
  assert.equal(payoffAt(put, "3000"), "559.80");
});

test("the summary: breakeven, the most it can lose and make", () => {
  assert.deepEqual(payoffSummary(call), { breakeven: "66234.56", maxLoss: "617.2800", maxProfit: null });
  assert.deepEqual(payoffSummary(put), { breakeven: "3279.90", maxLoss: "240.20", maxProfit: "6559.80" });
  // a put dearer than its strike never breaks even above zero
  assert.equal(payoffSummary({ kind: "put", strike: "100", premium: "150", contracts: "1" }).breakeven, "0");
});

test("the chart spans the strike, the breakeven and the index with room either side", () => {
  const [low, high] = priceRange({ strike: "65000", index: "64000.12", breakeven: "66234.56" });
  assert.ok(low > 0 && low < 64000 && high > 66234.56);
  const [low2] = priceRange({ strike: "10", index: "10", breakeven: "11" });
  assert.ok(low2 >= 0);
});

test("the curve is flat at the premium below the strike and rises one for one above it", () => {
  const points = payoffCurve(call, [55000, 75000], 20);
  const prices = points.map((p) => p.price);
  assert.deepEqual(prices, [...prices].sort((a, b) => a - b));
  assert.ok(prices.includes(65000) && prices.includes(66234.56)); // the kink and the breakeven, exactly
  for (const p of points) {
    const expected = (Math.max(p.price - 65000, 0) - 1234.56) * 0.5;
    assert.ok(Math.abs(p.pnl - expected) < 1e-6, `${p.price}: ${p.pnl} vs ${expected}`);
  }
  assert.equal(points.find((p) => p.price === 66234.56).pnl, 0);
  assert.ok(points.every((p) => p.pnl >= -617.28));
});

test("the SVG draws the line through every point, the zero line, the index and the breakeven", () => {
  const points = payoffCurve(call, [55000, 75000], 20);
  const svg = payoffSvg(points, {
    width: 300,
    height: 150,
    index: "64000",
    breakeven: "66234.56",
    labels: { low: "55,000", high: "75,000", maxLoss: "−617.28 USDT", top: "+4,382.72" },
  });
  assert.match(svg, /^<svg [^>]*viewBox="0 0 300 150"/);
  const line = /<polyline class="payoff-line"[^>]* points="([^"]+)"/.exec(svg);
  assert.ok(line);
  const coords = line[1].split(" ").map((pair) => pair.split(",").map(Number));
  assert.equal(coords.length, points.length);
  for (const [x, y] of coords) assert.ok(x >= 0 && x <= 300 && y >= 0 && y <= 150, `${x},${y}`);
  // left of the strike the line is flat (the premium lost), right of it it rises
  assert.equal(coords[0][1], coords[5][1]);
  assert.ok(coords[coords.length - 1][1] < coords[0][1]);
  assert.match(svg, /class="payoff-zero"/);
  assert.match(svg, /class="payoff-index"/);
  assert.match(svg, /class="payoff-breakeven"/);
  assert.match(svg, />−617.28 USDT</);
  assert.equal(payoffSvg([]), "");
});

test("labels are escaped", () => {
  const svg = payoffSvg(payoffCurve(call, [55000, 75000], 4), { labels: { low: "<b>" } });
  assert.ok(!svg.includes("<b>") && svg.includes("&lt;b&gt;"));
});

test("the ticket's view of a quote: the chart, the summary in the site's formats", () => {
  const view = payoffView({
    series: "BTC-20261225-65000-C",
    side: "buy",
    contracts: "0.50",
    price_usdt: "1234.56",
    index_price: "64000.12",
  });
  assert.equal(view.breakeven, "66234.56");
  assert.match(view.svg, /^<svg /);
  assert.equal(
    view.summary,
    "At expiry: breakeven 66,234.56 · max loss 617.28 USDT · max profit unlimited",
  );
  const sell = payoffView({ series: "ETH-20261225-3400-P", side: "sell", contracts: "2", price_usdt: "120.10", index_price: "3400.55" });
  assert.equal(sell.summary, "Holding to expiry instead of selling now: breakeven 3,279.90 · max loss 240.20 USDT · max profit 6,559.80 USDT");
  assert.equal(payoffView({ series: "BTC-USDT" }), null);
});
