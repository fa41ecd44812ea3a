import assert from "node:assert/strict";
import { test } from "node:test";
import { alertPayload, describeAlert, firedText, symbolLabel } from "../lib/alerts.js";

const alert = (extra) => ({ symbol: "BTC-USDT", condition: "price_above", value: "70000", window: null, ...extra });

test("an alert reads as what it waits for", () => {
  assert.equal(describeAlert(alert()), "BTC-USDT at or above 70,000.00");
  assert.equal(describeAlert(alert({ condition: "price_below", value: "64900.5" })), "BTC-USDT at or below 64,900.50");
  assert.equal(
    describeAlert(alert({ symbol: "index:ETH", condition: "change_pct", value: "-12.5", window: "24h" })),
    "ETH index falls 12.5% in 24 hours",
  );
  assert.equal(describeAlert(alert({ condition: "change_pct", value: "3", window: "5m" })), "BTC-USDT rises 3% in 5 minutes");
  assert.equal(symbolLabel("index:BTC"), "BTC index");
});

test("how often and when it fired", () => {
  assert.equal(firedText({ fire_count: 0 }), "Not fired yet");
  assert.equal(
    firedText({ fire_count: 1, last_fired_at: "2026-12-06T08:03:05Z", last_fired_price: "65100" }),
    "Fired once, last 06 Dec 2026 08:03:05 UTC at 65,100.00",
  );
  assert.match(firedText({ fire_count: 3, last_fired_at: null, last_fired_price: null }), /^Fired 3 times$/);
});

test("the request carries a window only for a move, and the value as typed", () => {
  assert.deepEqual(alertPayload({ symbol: "BTC-USDT", condition: "price_above", value: " 70000 ", window: "1h", frequency: "once" }), {
    symbol: "BTC-USDT",
    condition: "price_above",
    value: "70000",
    frequency: "once",
  });
  assert.deepEqual(alertPayload({ symbol: "index:BTC", condition: "change_pct", value: "-5", window: "1h", frequency: "every_time" }), {
    symbol: "index:BTC",
    condition: "change_pct",
    value: "-5",
    window: "1h",
    frequency: "every_time",
  });
});
