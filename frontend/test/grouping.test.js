import assert from "node:assert/strict";
import { test } from "node:test";
import { groupLevels, groupPrice, groupSteps } from "../trade/book.js";

test("the groupings of a market: its tick, then ten, a hundred and a thousand ticks", () => {
  assert.deepEqual(groupSteps("0.01"), ["0.01", "0.1", "1", "10"]);
  assert.deepEqual(groupSteps("0.01000000"), ["0.01", "0.1", "1", "10"]);
  assert.deepEqual(groupSteps("0.5"), ["0.5", "5", "50", "500"]);
  assert.deepEqual(groupSteps("nope"), []);
});

test("bids group down and asks up, so a level never looks better than its orders", () => {
  assert.equal(groupPrice("65104.20", "10", "bids"), "65100");
  assert.equal(groupPrice("65104.20", "10", "asks"), "65110");
  assert.equal(groupPrice("65110", "10", "asks"), "65110");
  assert.equal(groupPrice("65100.55", "0.1", "asks"), "65100.6");
  assert.equal(groupPrice("65100.55", "0.1", "bids"), "65100.5");
  assert.equal(groupPrice("65100.55", "0.01", "bids"), "65100.55");
});

test("grouped levels add up their quantities exactly and stay best first", () => {
  const asks = [["65100", "0.03"], ["65100.55", "0.01"], ["65104.2", "0.03"], ["65200", "0.1"]];
  assert.deepEqual(groupLevels(asks, "10", "asks"), [["65100", "0.03"], ["65110", "0.04"], ["65200", "0.1"]]);
  const bids = [["64900", "0.05"], ["64000", "0.01"], ["63000.5", "0.1"], ["63009.99", "0.2"]];
  assert.deepEqual(groupLevels(bids, "10", "bids"), [["64900", "0.05"], ["64000", "0.01"], ["63000", "0.3"]]);
});
