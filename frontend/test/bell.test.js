import assert from "node:assert/strict";
import { test } from "node:test";
import { UnreadCounter } from "../lib/bell.js";

const note = (id, extra = {}) => ({ id, kind: "order_partially_filled", title: "t", read_at: null, ...extra });

test("each new unread message counts once; a coalesced one coming again does not", () => {
  const counter = new UnreadCounter("3");
  assert.equal(counter.arrive(note(10)), true);
  assert.equal(counter.arrive(note(10, { title: "filled 0.2 of 1" })), false);
  assert.equal(counter.arrive(note(11, { read_at: "2026-12-06T08:00:00Z" })), false);
  assert.equal(counter.count, 4);
});

test("the API's unread list is the truth, and what it already lists is not counted again", () => {
  const counter = new UnreadCounter(0);
  counter.startSync();
  counter.sync({ count: 2, ids: [7, 5] });
  assert.equal(counter.count, 2);
  assert.equal(counter.arrive(note(7, { title: "newer text" })), false);
  assert.equal(counter.count, 2);
});

test("a message that arrives while the list is read counts when the read missed it", () => {
  const counter = new UnreadCounter(0);
  counter.startSync();
  counter.arrive(note(9)); // committed after the read: not in its answer
  counter.arrive(note(8)); // committed before it: listed
  counter.sync({ count: 1, ids: [8] });
  assert.equal(counter.count, 2);
  assert.equal(counter.arrive(note(9)), false);
});

test("a count that is not a number starts at zero", () => {
  assert.equal(new UnreadCounter("").count, 0);
  assert.equal(new UnreadCounter(undefined).count, 0);
});
