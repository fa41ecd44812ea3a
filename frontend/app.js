// Every page: copy-to-clipboard buttons, the mobile navigation toggle and, for a signed-in
// trader, the live unread count of the navigation's bell (lib/bell.js).
import { startBell } from "./lib/bell.js";

// <button data-copy="text">: copies the text and says so for a moment.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  navigator.clipboard?.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1200);
  });
});

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-nav-toggle]");
  if (!toggle) return;
  document.body.classList.toggle("nav-open");
});

document.addEventListener("DOMContentLoaded", () => {
  const badge = document.querySelector("[data-bell] [data-unread]");
  if (badge) startBell(badge);
});
