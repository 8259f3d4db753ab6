// Small progressive enhancements; every page works without them.

import { _ } from "/static/i18n.js";

// Ask before destructive actions marked with data-confirm.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const message = button?.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Click a secret (token, authenticator key) to copy it.
for (const element of document.querySelectorAll("[data-copy]")) {
  element.setAttribute("role", "button");
  element.setAttribute("tabindex", "0");
  element.title = _("Copy");
  const copy = async () => {
    await navigator.clipboard?.writeText(element.textContent.trim());
    element.dataset.copied = "true";
  };
  element.addEventListener("click", copy);
  element.addEventListener("keydown", (e) => { if (e.key === "Enter") copy(); });
}
