import assert from "node:assert/strict";
import { test } from "node:test";
import { wsBase } from "../lib/socket.js";

const page = (href) => new URL(href);

test("no base: the page's own origin, wss under https", () => {
  assert.equal(wsBase("", page("http://127.0.0.1:8000/trade/")), "ws://127.0.0.1:8000");
  assert.equal(wsBase(undefined, page("https://exchange.example.com/trade/")), "wss://exchange.example.com");
});

test("a port: the page's host at that port", () => {
  assert.equal(wsBase(":8001", page("http://localhost:8000/")), "ws://localhost:8001");
  assert.equal(wsBase(":8001", page("http://127.0.0.1:8000/")), "ws://127.0.0.1:8001");
  assert.equal(wsBase(":8443", page("https://[::1]:8000/")), "wss://[::1]:8443");
});

test("a full base is used as it is (http turned into ws, no trailing slash)", () => {
  assert.equal(wsBase("wss://ws.example.com/", page("https://exchange.example.com/")), "wss://ws.example.com");
  assert.equal(wsBase("https://ws.example.com", page("https://exchange.example.com/")), "wss://ws.example.com");
  assert.equal(wsBase("ws.example.com:9000", page("http://exchange.example.com/")), "ws://ws.example.com:9000");
});
