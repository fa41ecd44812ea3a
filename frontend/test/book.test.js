import assert from "node:assert/strict";
import { test } from "node:test";
import { OrderBook } from "../trade/book.js";
import { walkBook } from "../trade/ticket.js";
import { parse, toText } from "../lib/decimal.js";

const snapshot = { type: "snapshot", sequence: 10, bids: [["64900", "0.05"], ["64800.50", "1"]], asks: [["65200", "0.1"], ["65100", "0.05"]] };

test("a snapshot, then deltas in sequence", () => {
  const book = new OrderBook();
  assert.equal(book.delta({ sequence: 3, bids: [["1", "1"]] }), true); // before a snapshot: dropped
  assert.equal(book.bids.size, 0);
  book.snapshot(snapshot);
  assert.deepEqual(book.sorted("asks").map(([p]) => p), ["65100", "65200"]);
  assert.deepEqual(book.sorted("bids").map(([p]) => p), ["64900", "64800.5"]);
  assert.equal(book.delta({ sequence: 9, asks: [["65100", "0"]] }), true); // already in the snapshot
  assert.equal(book.asks.size, 2);
  assert.equal(book.delta({ sequence: 11, previous: 10, asks: [["65100.00", "0.03"]] }), true);
  assert.deepEqual(book.best("asks"), ["65100", "0.03"]);
  assert.equal(book.delta({ sequence: 12, previous: 11, asks: [["65100", "0"]] }), true);
  assert.deepEqual(book.best("asks"), ["65200", "0.1"]);
  assert.equal(book.sequence, 12);
});

test("a gap or a crossed book asks for a new snapshot", () => {
  const book = new OrderBook();
  book.snapshot(snapshot);
  assert.equal(book.delta({ sequence: 13, previous: 12, bids: [["64950", "1"]] }), false);
  book.snapshot(snapshot);
  assert.equal(book.delta({ sequence: 11, bids: [["66000", "1"]] }), false);
});

test("walking the book for a market order's estimate", () => {
  const book = new OrderBook();
  book.snapshot(snapshot);
  const lot = parse("0.00001");
  const asks = book.sorted("asks");
  let walk = walkBook(asks, { quantity: parse("0.02"), lot });
  assert.equal(toText(walk.spent), "1302.00");
  assert.equal(walk.complete, true);
  walk = walkBook(asks, { quantity: parse("0.2"), lot });
  assert.equal(walk.complete, false);
  assert.equal(toText(walk.filled), "0.15");
  walk = walkBook(asks, { amount: parse("100"), lot });
  assert.equal(toText(walk.filled), "0.00153");
});
