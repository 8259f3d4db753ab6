// Director console: program switch between the room's feeds, control of the cameras, PTZ pad
// and presets. Every move goes through Concilium, which checks the director lock and audits.

import { _, format } from "/static/i18n.js";
import { Telestration, api, status, wireSession } from "./live-common.js";
import { Stage } from "./stage.js";

const stage = new Stage({ stage: document.querySelector("[data-stage]") });
const telestration = new Telestration(document.querySelector("[data-telestration]"));
const feedList = document.querySelector("[data-feeds]");
const controlLine = document.querySelector("[data-control]");
const cameraSelect = document.querySelector("[data-camera]");
const ptzResult = document.querySelector("[data-ptz-result]");

function showFeeds(feeds) {
  feedList.replaceChildren(...feeds.map((feed) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = feed.display || format(_("Feed %(feed)s"), { feed: feed.id });
    button.dataset.feed = feed.id;
    button.setAttribute("aria-pressed", String(feed.id === stage.program));
    button.addEventListener("click", async () => {
      await api("/program", { method: "POST", body: { feed: feed.id } });
      status(format(_("On program: %(feed)s"), { feed: button.textContent }));
    });
    return button;
  }));
}

wireSession({
  telestration,
  extra: {
    hello: (e) => stage.setProgram(e.program_feed),
    program: (e) => {
      stage.setProgram(e.feed);
      for (const b of feedList.querySelectorAll("button")) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.feed) === e.feed));
      }
    },
  },
});

stage.join()
  .then(() => {
    stage.follow();
    const refresh = () => api("/feeds").then(showFeeds).catch(() => {});
    refresh();
    setInterval(refresh, 2000);
  })
  .catch((error) => status(format(_("Media: %(error)s"), { error: error.message })));

function showControl(control) {
  controlLine.textContent = control.director
    ? format(_("Cameras directed by %(director)s"), { director: control.director })
    : _("Nobody directs the cameras.");
}

document.querySelector("[data-take]").addEventListener("click", async () => {
  try {
    showControl(await api("/control", { method: "POST" }));
  } catch (error) {
    status(error.message);
  }
});
document.querySelector("[data-release]").addEventListener("click", async () => {
  try {
    showControl(await api("/control", { method: "DELETE" }));
  } catch (error) {
    status(error.message);
  }
});

/** A camera move as the director reads it. */
function moveLabel(name) {
  const labels = {
    up: _("Tilt up"), down: _("Tilt down"), left: _("Pan left"), right: _("Pan right"),
    stop: _("Stop"), home: _("Home position"), zoom_in: _("Zoom in"), zoom_out: _("Zoom out"),
    zoom_stop: _("Zoom stop"), preset_recall: _("Recall preset"), preset_set: _("Store preset"),
  };
  return labels[name] ?? name;
}

/** What the camera answered, as the director reads it. */
function outcomeLabel(outcome) {
  const labels = {
    completed: _("done"), timeout: _("no answer from the camera"), error: _("refused by the camera"),
  };
  return labels[outcome] ?? outcome;
}

async function move(name, extra = {}) {
  if (!cameraSelect?.value) {
    status(_("Add a PTZ camera to the session first."));
    return;
  }
  const speed = Number(document.querySelector("[data-speed]")?.value ?? 8);
  try {
    const result = await api("/ptz", {
      method: "POST",
      body: { camera_id: Number(cameraSelect.value), move: name, speed, ...extra },
    });
    ptzResult.textContent = format(_("%(move)s: %(outcome)s"), { move: moveLabel(name), outcome: outcomeLabel(result.outcome) });
  } catch (error) {
    ptzResult.textContent = format(_("%(move)s: %(outcome)s"), { move: moveLabel(name), outcome: error.message });
  }
}

// Direction and zoom buttons move while held and stop on release, like a joystick.
for (const button of document.querySelectorAll("[data-move]")) {
  const name = button.dataset.move;
  const stop = button.dataset.stop;
  if (stop) {
    let held = false;
    const press = () => {
      if (held) return;
      held = true;
      move(name);
    };
    const release = () => {
      if (!held) return;
      held = false;
      move(stop);
    };
    button.addEventListener("pointerdown", press);
    button.addEventListener("pointerup", release);
    button.addEventListener("pointerleave", release);
    button.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") press(); });
    button.addEventListener("keyup", (e) => { if (e.key === "Enter" || e.key === " ") release(); });
  } else {
    button.addEventListener("click", () => move(name));
  }
}
for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", (e) => {
    const preset = Number(button.dataset.preset);
    move(e.shiftKey || button.dataset.store ? "preset_set" : "preset_recall", { preset });
  });
}
document.querySelector("[data-store]")?.addEventListener("click", () => {
  const preset = Number(document.querySelector("[data-preset-number]").value);
  move("preset_set", { preset });
});
