import assert from "node:assert/strict";
import { test } from "node:test";
import {
  add, canonical, cmp, fitSteps, fromUnits, mul, ONE, parse, percentOf, placesOf, round, sign, sub, toText, ZERO,
} from "../lib/decimal.js";

const d = (text) => parse(text);
const t = (value) => toText(value);

test("parse takes plain decimal strings only", () => {
  assert.deepEqual(parse("65000.12"), { n: 6500012n, s: 2 });
  assert.deepEqual(parse("-0.5"), { n: -5n, s: 1 });
  assert.deepEqual(parse(".25"), { n: 25n, s: 2 });
  assert.deepEqual(parse("7."), { n: 7n, s: 0 });
  for (const bad of [null, undefined, "", " ", "1e3", "1,000", "NaN", "0x10", "1.2.3", "--1", "１"]) {
    assert.equal(parse(bad), null, String(bad));
  }
});

test("sums and products are exact where floats are not", () => {
  assert.equal(t(add(d("0.1"), d("0.2"))), "0.3");
  assert.equal(0.1 + 0.2 === 0.3, false); // the reason this module exists
  assert.equal(t(sub(d("65100"), d("64900.5"))), "199.5");
  assert.equal(t(mul(d("65100"), d("0.02"))), "1302.00");
  assert.equal(t(mul(d("1.005"), d("1000"))), "1005.000");
  assert.equal(t(add(d("99999999.99999999"), d("0.00000001"))), "100000000.00000000");
  assert.equal(t(mul(d("-2.5"), d("0.4"))), "-1.00");
});

test("compare and sign across scales", () => {
  assert.equal(cmp(d("1.10"), d("1.1")), 0);
  assert.equal(cmp(d("0.09"), d("0.1")), -1);
  assert.equal(cmp(d("-1"), d("-2")), 1);
  assert.equal(sign(d("-0.001")), -1);
  assert.equal(sign(ZERO), 0);
});

test("round: half-up, down and up, negatives mirrored", () => {
  assert.equal(t(round(d("1.005"), 2)), "1.01");
  assert.equal(t(round(d("1.004"), 2)), "1.00");
  assert.equal(t(round(d("-1.005"), 2)), "-1.01");
  assert.equal(t(round(d("9999.999"), 2)), "10000.00");
  assert.equal(t(round(d("1.239"), 2, "down")), "1.23");
  assert.equal(t(round(d("1.231"), 2, "up")), "1.24");
  assert.equal(t(round(d("1.5"), 3)), "1.500");
  assert.equal(t(round(d("-0.001"), 2)), "0.00");
});

test("fitSteps: whole lots a budget buys at a price", () => {
  // 600 USDT at 60,000 with a 0.00001 lot: exactly 0.01
  assert.equal(t(fitSteps(d("600"), d("60000"), d("0.00001"))), "0.01000");
  // 100 USDT at 65,100: 0.00153609... rounds down to 0.00153
  assert.equal(t(fitSteps(d("100"), d("65100"), d("0.00001"))), "0.00153");
  assert.equal(t(fitSteps(d("0.5"), ONE, d("0.01"))), "0.50");
  assert.equal(t(fitSteps(d("0"), d("1"), d("0.01"))), "0.00");
  assert.equal(t(fitSteps(d("10"), d("0"), d("0.01"))), "0.00");
  // 75 % of 0.333 BTC in 0.001 lots
  assert.equal(t(fitSteps(mul(d("0.333"), fromUnits(75, 2)), ONE, d("0.001"))), "0.249");
});

test("canonical: one key per price", () => {
  assert.equal(canonical("65000.10"), "65000.1");
  assert.equal(canonical("65000.00"), "65000");
  assert.equal(canonical("65000"), "65000");
  assert.equal(canonical("-0.00"), "0");
  assert.equal(canonical("0.05"), "0.05");
  assert.equal(canonical("n/a"), "n/a");
});

test("placesOf tick and lot sizes", () => {
  assert.equal(placesOf("0.01"), 2);
  assert.equal(placesOf("0.00001"), 5);
  assert.equal(placesOf("0.0100"), 2);
  assert.equal(placesOf("1"), 0);
  assert.equal(placesOf("10"), 0);
  assert.equal(placesOf(undefined), 2);
});

test("percentOf for depth bars", () => {
  assert.equal(percentOf(d("0.05"), d("0.2")), 25);
  assert.equal(percentOf(d("1"), d("3")), 33.3);
  assert.equal(percentOf(d("5"), d("1")), 100);
  assert.equal(percentOf(d("1"), ZERO), 0);
});
