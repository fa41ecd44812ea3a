// The account page's API keys panel (#api-keys-panel): the trader's keys, a form to make one
// (the secret is shown once, then never again) and a revoke with a fresh 2FA code per key.
import { api } from "../lib/api.js";
import { $, escapeHtml, setVisible } from "../lib/dom.js";
import { DASH, formatDateTime } from "../lib/format.js";

// "203.0.113.7, 198.51.100.0/24" or one per line -> ["203.0.113.7", "198.51.100.0/24"]
export const allowlistOf = (text) =>
  String(text || "")
    .split(/[\s,]+/)
    .map((entry) => entry.trim())
    .filter(Boolean);

export function keyRow(key) {
  const active = key.status === "active";
  const used = key.last_used_at
    ? `${escapeHtml(formatDateTime(key.last_used_at, { year: true }))}<br><span class="muted small">${escapeHtml(key.last_used_ip || "")}</span>`
    : `<span class="muted">never</span>`;
  return `<tr data-key-id="${key.id}" data-status="${escapeHtml(key.status)}">
    <td>${escapeHtml(key.label)}<br><code class="muted small">${escapeHtml(key.key.slice(0, 10))}…</code></td>
    <td>${key.scopes.map((scope) => `<span class="badge">${escapeHtml(scope)}</span>`).join(" ")}</td>
    <td class="small hide-sm">${key.ip_allowlist.length ? key.ip_allowlist.map(escapeHtml).join("<br>") : '<span class="muted">any</span>'}</td>
    <td class="small hide-sm">${used}</td>
    <td>${
      active
        ? `<form class="revoke-form inline-form" novalidate>
             <input type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" maxlength="6" placeholder="2FA code"
                    aria-label="2FA code to revoke ${escapeHtml(key.label)}" required size="7">
             <button type="submit" class="btn btn-danger btn-sm">Revoke</button>
           </form>`
        : `<span class="badge badge-danger">Revoked</span>`
    }</td>
  </tr>`;
}

function fieldErrors(form, error) {
  const box = $(form, "[data-field=error]");
  const named = Object.entries(error.fields || {}).map(([name, messages]) => `${name}: ${[].concat(messages).join(" ")}`);
  box.textContent = [error.message, ...named].join(" ");
  setVisible(box, true);
}

async function refresh(panel) {
  const body = $(panel, "tbody");
  try {
    const keys = await api("/api/v1/api-keys");
    body.innerHTML = keys.length
      ? keys.map(keyRow).join("")
      : `<tr><td colspan="5" class="muted">No keys yet. ${DASH} make one below for a bot.</td></tr>`;
  } catch (error) {
    body.innerHTML = `<tr><td colspan="5" class="down">Keys are unavailable right now: ${escapeHtml(error.message)}</td></tr>`;
  }
}

export function mountApiKeys(panel) {
  const form = $(panel, "#api-key-form");
  const created = $(panel, "#api-key-created");
  refresh(panel);
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      setVisible($(form, "[data-field=error]"), false);
      const data = new FormData(form);
      try {
        const key = await api("/api/v1/api-keys", {
          method: "POST",
          json: {
            label: data.get("label"),
            scopes: data.getAll("scopes"),
            ip_allowlist: allowlistOf(data.get("ip_allowlist")),
            otp: data.get("otp"),
          },
        });
        $(created, "[data-field=key]").textContent = key.key;
        $(created, "[data-field=secret]").textContent = key.secret;
        setVisible(created, true);
        form.reset();
        refresh(panel);
      } catch (error) {
        fieldErrors(form, error);
      }
    });
  }
  panel.addEventListener("submit", async (event) => {
    const revoke = event.target.closest(".revoke-form");
    if (!revoke) return;
    event.preventDefault();
    const row = revoke.closest("tr");
    try {
      await api(`/api/v1/api-keys/${row.dataset.keyId}/revoke`, {
        method: "POST",
        json: { otp: new FormData(revoke).get("otp") },
      });
      refresh(panel);
    } catch (error) {
      revoke.querySelector("input").setCustomValidity(error.message);
      revoke.querySelector("input").reportValidity();
      revoke.querySelector("input").addEventListener("input", (e) => e.target.setCustomValidity(""), { once: true });
    }
  });
  const copy = $(panel, "[data-action=copy-secret]");
  if (copy) {
    copy.addEventListener("click", () => {
      const secret = $(created, "[data-field=secret]").textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(secret).catch(() => {});
      copy.textContent = "Copied";
    });
  }
}
