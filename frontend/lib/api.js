// The one client of the platform's JSON API from the browser: same-origin session cookie,
// Django's CSRF token on every request, and the API's error shape
// {"error": {"code", "message", "fields"}} turned into an ApiError.

export class ApiError extends Error {
  // A risk refusal names its limit in fields.limit (["max_position"]): a name for programs,
  // not a message for a field, so it is kept apart as `limit`.
  constructor(message, { code = "error", fields = {}, status = 0 } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    const { limit, ...rest } = fields || {};
    this.fields = rest;
    this.limit = Array.isArray(limit) ? limit[0] : limit || null;
    this.status = status;
  }
}

// The CSRF token: from a form the page rendered ({% csrf_token %}, e.g. the header's log-out
// form), else from Django's csrftoken cookie.
export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input && input.value) return input.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// api(path) GETs; api(path, {method: "POST", json: {...}}) sends a JSON body. Resolves to the
// parsed body (null when there is none), rejects with an ApiError (status 0: no connection).
export async function api(path, { method = "GET", json, headers = {} } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken(), ...headers },
  };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("The server cannot be reached; check your connection.", { code: "network" });
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(error.message || `Request failed (${response.status}).`, {
      code: error.code || "error",
      fields: error.fields,
      status: response.status,
    });
  }
  return body;
}

// A list endpoint's rows, paginated ({count, next, previous, results}) or a bare array.
export const rows = (body) => (Array.isArray(body) ? body : (body && body.results) || []);

// The client-chosen id of a new order: the API answers a replayed id with the original order,
// so a retried submit never places twice.
export function clientOrderId() {
  if (window.crypto && crypto.randomUUID) return `web-${crypto.randomUUID()}`;
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
