import assert from "node:assert/strict";
import { test } from "node:test";
import { toText, parse } from "../lib/decimal.js";
import { limitRows, limitText, maxQuantity, usageLevel } from "../lib/limits.js";

const line = (name, scope, limit, used = null, used_percent = null, unit = "base") => ({
  name, scope, limit, used, used_percent, unit, summary: "",
});

const DATA = {
  trading_state: "active",
  limits: [
    line("buy_band_above", "BTC-USDT", "0.1", null, null, "fraction"),
    line("max_notional", "BTC-USDT", "1000000", null, null, "USDT"),
    line("max_order_quantity", "BTC-USDT", "100", null, null, "BTC"),
    line("max_market_quantity", "BTC-USDT", "20", null, null, "BTC"),
    line("max_position", "BTC", "50", "45.5", "91", "BTC"),
    line("max_open_orders", "account", "200", "3", "1.5", "orders"),
  ],
};

test("limit values as people read them", () => {
  assert.equal(limitText(DATA.limits[0]), "10%");
  assert.equal(limitText(DATA.limits[1]), "1,000,000 USDT");
  assert.equal(limitText(DATA.limits[5]), "200");
});

test("usage levels at the alert thresholds", () => {
  assert.equal(usageLevel({ used_percent: "79.9" }), "ok");
  assert.equal(usageLevel({ used_percent: "80" }), "warn");
  assert.equal(usageLevel({ used_percent: "100" }), "full");
  assert.equal(usageLevel({ used_percent: null }), "");
});

test("rows: limits with usage first", () => {
  const rows = limitRows(DATA);
  assert.deepEqual(rows.slice(0, 2).map((r) => r.name), ["max_position", "max_open_orders"]);
  assert.equal(rows[0].level, "warn");
  assert.equal(rows[1].scope, "Account");
});

test("the ticket's largest quantity: the tightest cap, in whole lots", () => {
  const lot = parse("0.00001");
  const at = (side, type, price) =>
    toText(maxQuantity(DATA, { symbol: "BTC-USDT", base: "BTC", side, type, price, held: "45.5", lot }));
  assert.equal(at("buy", "limit", "65000"), "4.50000"); // room under the largest holding
  assert.equal(at("sell", "limit", "65000"), "15.38461"); // 1,000,000 USDT / 65,000, down to the lot
  assert.equal(at("sell", "market", null), "20.00000");
  assert.equal(maxQuantity({ limits: [] }, { symbol: "X", base: "X", side: "buy", type: "limit", price: "1", held: "0", lot }), null);
});
