// The page's plain-language suggestion (GET /api/v1/portfolio/suggestions): drift from the
// trader's targets beyond their tolerance, and an asset above the concentration threshold.
import { api } from "../lib/api.js";
import { escapeHtml } from "../lib/dom.js";

export function startSuggestions(page, { onUseTargets = () => {} } = {}) {
  const box = page.querySelector("#suggestions");
  let advice = null;

  box.addEventListener("click", (event) => {
    if (event.target.closest("[data-action=review-rebalance]") && advice?.targets) onUseTargets(advice.targets, advice.tolerance);
  });

  async function refresh() {
    try {
      advice = await api("/api/v1/portfolio/suggestions");
    } catch {
      return; // a suggestion is a nicety: the page works without it
    }
    box.innerHTML = advice.suggestions
      .map(
        (s) => `<div class="alert ${s.kind === "drift" ? "alert-warning" : "alert-info"} suggestion" data-suggestion="${escapeHtml(s.kind)}" data-asset="${escapeHtml(s.asset)}">
          <span>${escapeHtml(s.message)}</span>
          ${s.kind === "drift" ? `<button type="button" class="btn btn-secondary btn-sm" data-action="review-rebalance">Review the rebalance</button>` : ""}
        </div>`,
      )
      .join("");
    box.dataset.count = String(advice.suggestions.length);
  }

  refresh();
  return { refresh, get advice() { return advice; } };
}
