// Statement and export links for the chosen period: the API's downloads, with the dates the
// trader picked (the end day included: the API's end is excluded, so it gets the next day).
import { $, $$, escapeHtml, setVisible } from "../lib/dom.js";

const nextDay = (iso) => {
  const date = new Date(`${iso}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
};

const TARGETS = {
  "statement-pdf": ["/api/v1/statements", "pdf"],
  "statement-csv": ["/api/v1/statements", "csv"],
  "export-csv": ["/api/v1/exports/transactions", "csv"],
  "export-koinly": ["/api/v1/exports/transactions", "koinly"],
  "export-cointracker": ["/api/v1/exports/transactions", "cointracker"],
};

export function startDownloads(page) {
  const form = $(page, "#downloads-form");
  const start = $(form, "[name=start]");
  const end = $(form, "[name=end]");
  const errors = $(form, "#downloads-error");
  const links = $$(form, "[data-download]");

  function update() {
    const problem =
      start.value && end.value && start.value > end.value ? "The start of the period is after its end." : "";
    errors.innerHTML = problem ? `<li>${escapeHtml(problem)}</li>` : "";
    setVisible(errors, Boolean(problem));
    for (const link of links) {
      const [path, format] = TARGETS[link.dataset.download];
      const query = new URLSearchParams({ format });
      if (start.value) query.set("start", start.value);
      if (end.value) query.set("end", nextDay(end.value));
      link.href = `${path}?${query}`;
      link.setAttribute("aria-disabled", String(Boolean(problem)));
      link.classList.toggle("disabled", Boolean(problem));
    }
  }

  form.addEventListener("click", (event) => {
    const link = event.target.closest("[data-download]");
    if (link && link.getAttribute("aria-disabled") === "true") event.preventDefault();
  });
  start.addEventListener("change", update);
  end.addEventListener("change", update);
  update();
}
