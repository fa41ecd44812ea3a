import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DASH,
  formatAmount,
  formatDate,
  formatDateTime,
  formatMovement,
  formatNumber,
  formatRatio,
  formatSigned,
  formatTime,
  setDisplayZone,
  zoneLabel,
  zoneName,
} from "../lib/format.js";

test("fixed places: grouped and rounded half-up from the digits", () => {
  assert.equal(formatNumber("65000.12", { places: 2 }), "65,000.12");
  assert.equal(formatNumber("65100", { places: 2 }), "65,100.00");
  assert.equal(formatNumber("1302.005", { places: 2 }), "1,302.01");
  assert.equal(formatNumber("1.005", { places: 2 }), "1.01"); // (1.005).toFixed(2) is "1.00"
  assert.equal(formatNumber("0.02", { places: 5 }), "0.02000");
  assert.equal(formatNumber("1234567.891", { places: 0 }), "1,234,568");
  assert.equal(formatNumber("999.999", { places: 2 }), "1,000.00");
  assert.equal(formatNumber("-1234.5", { places: 2 }), "−1,234.50");
  assert.equal(formatNumber("123456789012345678.12345678", { places: 8 }), "123,456,789,012,345,678.12345678");
});

test("minimum places: every significant decimal, at least the minimum", () => {
  assert.equal(formatNumber("10000", { minPlaces: 2 }), "10,000.00");
  assert.equal(formatNumber("9400.502500", { minPlaces: 2 }), "9,400.5025");
  assert.equal(formatNumber("0.10", { minPlaces: 2 }), "0.10");
  assert.equal(formatNumber("65000.000", { minPlaces: 0 }), "65,000");
  assert.equal(formatNumber("-12.5", { minPlaces: 2 }), "−12.50");
  assert.equal(formatNumber("0.00000001"), "0.00000001");
});

test("missing and odd values", () => {
  for (const missing of [null, undefined, ""]) assert.equal(formatNumber(missing, { places: 2 }), DASH);
  assert.equal(formatNumber("n/a", { places: 2 }), "n/a");
  assert.equal(formatNumber("-0.001", { places: 2 }), "0.00");
});

test("signed values carry their colour", () => {
  assert.deepEqual(formatSigned("12.5"), { text: "+12.50", cls: "up" });
  assert.deepEqual(formatSigned("-3.25"), { text: "−3.25", cls: "down" });
  assert.deepEqual(formatSigned("0"), { text: "0.00", cls: "" });
  assert.deepEqual(formatSigned("1.5", { places: 2 }), { text: "+1.50", cls: "up" });
  assert.deepEqual(formatSigned(null), { text: DASH, cls: "" });
});

test("ratios as percentages", () => {
  assert.equal(formatRatio("0.5312"), "53.1%");
  assert.equal(formatRatio("0.51250"), "51.3%");
  assert.equal(formatRatio("1.2", 0), "120%");
  assert.equal(formatRatio(null), DASH);
});

test("times are the API's UTC, whatever the machine's zone", () => {
  const iso = "2026-06-05T08:03:09.123456Z";
  assert.equal(formatTime(iso), "08:03:09");
  assert.equal(formatDate(iso), "05 Jun 2026");
  assert.equal(formatDate(iso, { year: false }), "05 Jun");
  assert.equal(formatDateTime(iso), "05 Jun 2026 08:03:09 UTC");
  assert.equal(formatDate("2026-12-31T23:59:59Z"), "31 Dec 2026");
  assert.equal(formatTime("2026-01-01T00:00:00+02:00"), "22:00:00");
  for (const bad of [null, "", "not a date"]) assert.equal(formatDateTime(bad), "");
});

test("an amount has its asset's display places: USDT 2, BTC and ETH up to 8, at least 2", () => {
  // the wallet showed 24609.15664700, 0 and 8
  assert.equal(formatAmount("24609.156647", "USDT"), "24,609.16");
  assert.equal(formatAmount("0", "USDT"), "0.00");
  assert.equal(formatAmount("8", "BTC"), "8.00");
  assert.equal(formatAmount("0.50000000", "ETH"), "0.50");
  assert.equal(formatAmount("0.00012345", "BTC"), "0.00012345");
  assert.equal(formatAmount("1234.123456789", "BTC"), "1,234.12345679");
  assert.equal(formatAmount("24673.652647", "usdt"), "24,673.65"); // the options page showed 24,673.652647
  assert.equal(formatAmount(null, "USDT"), DASH);
});

test("a movement carries its sign and colour; what rounds to zero has none", () => {
  assert.deepEqual(formatMovement("600", "USDT"), { text: "+600.00", cls: "up" });
  assert.deepEqual(formatMovement("-0.015", "ETH"), { text: "−0.015", cls: "down" });
  assert.deepEqual(formatMovement("-5.555", "USDT"), { text: "−5.56", cls: "down" });
  assert.deepEqual(formatMovement("0.001", "USDT"), { text: "0.00", cls: "" });
});

test("one date format everywhere, in the trader's zone with the zone named", () => {
  const iso = "2026-12-06T08:03:05.5Z";
  assert.equal(formatDateTime(iso), "06 Dec 2026 08:03:05 UTC");
  assert.equal(formatDateTime(iso, { zone: "Europe/Paris" }), "06 Dec 2026 09:03:05 UTC+1");
  assert.equal(formatDateTime("2026-06-05T08:03:09Z", { zone: "Europe/London" }), "05 Jun 2026 09:03:09 UTC+1");
  assert.equal(formatDateTime(iso, { zone: "Asia/Kolkata" }), "06 Dec 2026 13:33:05 UTC+5:30");
  assert.equal(formatDateTime(iso, { zone: "America/New_York" }), "06 Dec 2026 03:03:05 UTC-5");
  assert.equal(formatDateTime("2026-12-06T02:00:00Z", { zone: "America/Los_Angeles" }), "05 Dec 2026 18:00:00 UTC-8");
  assert.equal(formatDateTime(iso, { zone: "Not/AZone" }), "06 Dec 2026 08:03:05 UTC"); // unknown: UTC, said so
  assert.equal(formatTime(iso, { zone: "Asia/Tokyo" }), "17:03:05");
  assert.equal(zoneLabel(0), "UTC");
  assert.equal(zoneLabel(-210), "UTC-3:30");
  setDisplayZone("Asia/Tokyo"); // what <html data-timezone> sets on a page
  try {
    assert.equal(formatDateTime(iso), "06 Dec 2026 17:03:05 UTC+9");
    assert.equal(zoneName(), "UTC+9");
    assert.equal(formatDate(iso), "06 Dec 2026"); // expiry days stay UTC days
  } finally {
    setDisplayZone(null);
  }
});
