// The procedure page follows a link qualification under way: its progress, then its
// verdict and the link to its report.
import { _, format } from "/static/i18n.js";

const box = document.getElementById("qualification-run");

function show(run) {
  const bar = box.querySelector("progress");
  const text = box.querySelector("[data-run-text]");
  bar.value = run.progress ?? 0;
  bar.textContent = `${Math.round((run.progress ?? 0) * 100)} %`;
  box.dataset.state = run.state;
  if (run.state === "running") {
    text.textContent = _("Measuring…");
    return;
  }
  if (run.state === "failed") {
    text.textContent = format(_("The qualification failed: %(error)s"), { error: run.error });
  } else {
    text.textContent = run.passed ? _("GO") : _("NO-GO");
  }
  if (run.report_url) {
    const link = document.createElement("a");
    link.href = run.report_url;
    link.textContent = _("Report");
    text.append(" · ", link);
  }
  const button = document.querySelector("#qualify-form button[type=submit]");
  if (button) button.disabled = false;
}

async function poll() {
  try {
    const response = await fetch(box.dataset.url, { headers: { accept: "application/json" } });
    if (response.ok) {
      const run = await response.json();
      if (run.state !== "none") show(run);
      if (run.state === "running") {
        setTimeout(poll, 500);
        return;
      }
      if (run.state === "done") {
        // The new qualification changes what blocks START: the page tells it again.
        setTimeout(() => window.location.reload(), 1500);
      }
      return;
    }
  } catch {
    // The network hiccupped: try again.
  }
  setTimeout(poll, 2000);
}

if (box && box.dataset.state === "running") poll();
