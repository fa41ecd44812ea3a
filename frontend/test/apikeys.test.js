import assert from "node:assert/strict";
import { test } from "node:test";
import { allowlistOf, keyRow } from "../account/apikeys.js";

const key = (extra) => ({
  id: 7,
  label: "grid bot",
  key: "0123456789abcdef0123456789abcdef01234567",
  scopes: ["read", "trade"],
  ip_allowlist: [],
  last_used_at: null,
  last_used_ip: null,
  status: "active",
  ...extra,
});

test("an allowlist is read from commas, spaces or lines", () => {
  assert.deepEqual(allowlistOf(" 203.0.113.7, 198.51.100.0/24\n2001:db8::/32 "), [
    "203.0.113.7",
    "198.51.100.0/24",
    "2001:db8::/32",
  ]);
  assert.deepEqual(allowlistOf(""), []);
});

test("a key's row shows its scopes, where it may be used from and a revoke for an active key", () => {
  const row = keyRow(key());
  assert.match(row, /data-status="active"/);
  assert.match(row, /0123456789…/);
  assert.match(row, /<span class="badge">read<\/span> <span class="badge">trade<\/span>/);
  assert.match(row, />any</);
  assert.match(row, />never</);
  assert.match(row, /Revoke/);
  assert.doesNotMatch(keyRow(key({ status: "revoked" })), /Revoke<\/button>/);
});

test("a label is escaped", () => {
  assert.match(keyRow(key({ label: "<b>x</b>" })), /&lt;b&gt;x&lt;\/b&gt;/);
});
