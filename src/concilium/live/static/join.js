// Join page (phone, tablet, desktop): publish a camera or a screen, see the others, chat,
// ask, and draw over the program picture.

import { Telestration, session, status, wireSession } from "./live-common.js";
import { Stage } from "./stage.js";

const stage = new Stage({
  stage: document.querySelector("[data-stage]"),
  tiles: document.querySelector("[data-tiles]"),
});
const telestration = new Telestration(document.querySelector("[data-telestration]"));
wireSession({ telestration, extra: { program: (e) => stage.setProgram(e.feed), hello: (e) => stage.setProgram(e.program_feed) } });

const controls = document.querySelector("[data-join-controls]");
const leaveButton = document.querySelector("[data-leave]");
const videoInput = document.querySelector("[data-video-input]");

// The cameras and capture devices of this machine. Browsers name them only once the page
// may use one, so the list is filled again when the person opens it.
async function listVideoInputs() {
  if (!videoInput || !navigator.mediaDevices?.enumerateDevices) return;
  const devices = (await navigator.mediaDevices.enumerateDevices())
    .filter((device) => device.kind === "videoinput" && device.deviceId);
  const chosen = videoInput.value;
  videoInput.replaceChildren(new Option("Default camera", ""));
  devices.forEach((device, index) => {
    videoInput.append(new Option(device.label || `Video input ${index + 1}`, device.deviceId));
  });
  videoInput.value = [...videoInput.options].some((o) => o.value === chosen) ? chosen : "";
}
listVideoInputs().catch(() => {});
videoInput?.addEventListener("focus", () => listVideoInputs().catch(() => {}));

async function start(kind) {
  controls.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const grant = await stage.join();
    if (kind !== "none" && grant.may_publish) {
      const display = document.querySelector("[data-source-name]")?.value;
      const feed = await stage.publish(kind, display, videoInput?.value ?? "");
      document.body.dataset.publishedFeed = feed;
      status(`You are live as ${grant.role}.`);
    } else {
      status(`Joined as ${grant.role}; receiving only.`);
    }
    stage.follow();
    document.body.dataset.joined = "true";
    controls.remove();
    leaveButton.hidden = false;
  } catch (error) {
    // Janus's 432: the room already has as many senders as the session's kind allows.
    status(error.code === 432
      ? "The room already has as many cameras as it takes: join without sending, or ask the organiser."
      : `Could not join: ${error.message}`);
    controls.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }
}

for (const button of controls.querySelectorAll("button[data-kind]")) {
  button.addEventListener("click", () => start(button.dataset.kind));
}
leaveButton.addEventListener("click", async () => {
  await stage.leave();
  location.href = `/live/${session.id}`;
});
