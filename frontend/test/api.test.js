import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError } from "../lib/api.js";

test("a risk refusal's limit name is kept apart from the fields", () => {
  const error = new ApiError("At most 0.5 more.", {
    code: "risk_limit",
    fields: { limit: ["max_position"], quantity: ["At most 0.5 more."] },
    status: 422,
  });
  assert.equal(error.limit, "max_position");
  assert.deepEqual(error.fields, { quantity: ["At most 0.5 more."] });
  assert.equal(new ApiError("x").limit, null);
});
