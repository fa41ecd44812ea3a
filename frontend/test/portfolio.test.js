import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "../lib/decimal.js";
import {
  divide,
  percentFromWeight,
  percentsFromWeights,
  revalue,
  weightsFromPercents,
} from "../portfolio/valuation.js";

const body = {
  total_usdt: "75000.120000",
  value_at_day_start_usdt: "70000.000000",
  net_flows_today_usdt: "1000.000000",
  pnl_today_usdt: "4000.120000",
  realized_pnl_usdt: "12.000000",
  unrealized_pnl_usdt: "0",
  assets: [
    { asset: "USDT", quantity: "10000.000000", price_usdt: "1", cost_basis_usdt: "10000.000000" },
    { asset: "BTC", quantity: "1.00000000", price_usdt: "65000.12", cost_basis_usdt: "60000.000000" },
    { asset: "ETH", quantity: "0.00000000", price_usdt: "3400.55", cost_basis_usdt: "0.000000" },
  ],
  options: { value_usdt: "0.000000", unrealized_pnl_usdt: "0.000000" },
};

test("revalued at the API's own prices, the figures are the API's", () => {
  const view = revalue(body);
  assert.equal(view.total_usdt, "75000.120000");
  assert.equal(view.pnl_today_usdt, "4000.120000");
  const btc = view.assets.find((a) => a.asset === "BTC");
  assert.equal(btc.value_usdt, "65000.120000");
  assert.equal(btc.unrealized_pnl_usdt, "5000.120000");
  assert.equal(btc.weight, "0.866667"); // 65000.12 / 75000.12 = 0.8666668...
  assert.equal(view.assets.find((a) => a.asset === "USDT").weight, "0.133333");
});

test("a tick moves the value, the weights, today's PnL and the unrealized PnL, exactly", () => {
  const view = revalue(
    { ...body, assets: body.assets.map((a) => (a.asset === "BTC" ? { ...a, quantity: "0.12345678" } : a)) },
    { BTC: "65100.55", USDT: "2" },
  );
  const btc = view.assets.find((a) => a.asset === "BTC");
  assert.equal(btc.price_usdt, "65100.55");
  assert.equal(btc.live, true);
  // 0.12345678 × 65100.55 = 8037.1042789... at 6 places, half-up: no float ever
  assert.equal(btc.value_usdt, "8037.104279");
  assert.equal(view.assets.find((a) => a.asset === "USDT").price_usdt, "1"); // USDT is always 1
  assert.equal(view.total_usdt, "18037.104279");
  assert.equal(view.pnl_today_usdt, "-52962.895721");
  assert.equal(btc.unrealized_pnl_usdt, "-51962.895721");
});

test("options at mark count in the total and the weights", () => {
  const view = revalue({ ...body, options: { value_usdt: "24999.880000", unrealized_pnl_usdt: "-5.5" } });
  assert.equal(view.total_usdt, "100000.000000");
  assert.equal(view.options.weight, "0.249999"); // 0.2499988
  assert.equal(view.unrealized_pnl_usdt, "4994.620000"); // 5000.12 on BTC, -5.5 on options
});

test("an asset without a price has no value and does not break the total", () => {
  const view = revalue({ ...body, assets: [...body.assets.slice(0, 2), { ...body.assets[2], price_usdt: null }] });
  assert.equal(view.assets[2].value_usdt, null);
  assert.equal(view.assets[2].weight, null);
  assert.equal(view.total_usdt, "75000.120000");
});

test("today's PnL ratio is against the day's opening value plus its deposits", () => {
  assert.equal(revalue(body).pnl_today_ratio, "0.056340"); // 4000.12 / 71000
  assert.equal(revalue({ ...body, value_at_day_start_usdt: "0", net_flows_today_usdt: "0" }).pnl_today_ratio, null);
});

test("division rounds half-up at the places asked, signs kept", () => {
  assert.deepEqual(divide(parse("1"), parse("3"), 4), { n: 3333n, s: 4 });
  assert.deepEqual(divide(parse("2"), parse("3"), 4), { n: 6667n, s: 4 });
  assert.deepEqual(divide(parse("-1"), parse("8"), 2), { n: -13n, s: 2 });
  assert.equal(divide(parse("1"), parse("0"), 2), null);
});

test("percentages become weights that add up exactly", () => {
  const { weights, sum, complete, invalid } = weightsFromPercents({ USDT: "33.3334", BTC: "33.3333", ETH: "33.3333" });
  assert.deepEqual(weights, { USDT: "0.333334", BTC: "0.333333", ETH: "0.333333" });
  assert.equal(sum, "100");
  assert.equal(complete, true);
  assert.deepEqual(invalid, []);
  const partial = weightsFromPercents({ USDT: "", BTC: "50", ETH: "1e2" });
  assert.deepEqual(partial.weights, { USDT: "0", BTC: "0.5" });
  assert.equal(partial.complete, false);
  assert.deepEqual(partial.invalid, ["ETH"]);
  assert.equal(weightsFromPercents({ BTC: "60", USDT: "30" }).complete, false);
});

test("weights back to percentages, and a starting point that adds up to 100", () => {
  assert.equal(percentFromWeight("0.5"), "50");
  assert.equal(percentFromWeight("0.333334"), "33.3334");
  assert.equal(percentFromWeight("1"), "100");
  assert.deepEqual(percentsFromWeights({ BTC: "0.634200", ETH: "0.195", USDT: "0.1708" }, ["USDT", "BTC", "ETH"]), {
    BTC: "63",
    ETH: "20",
    USDT: "17",
  });
});
