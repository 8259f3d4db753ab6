// Join page (phone, tablet, desktop): publish a camera or a screen, see the others, chat,
// ask, and draw over the program picture. Once sending, the person sees their own picture
// and may mute their microphone or turn their camera off: the tracks themselves are
// switched off, so the others receive silence and a black picture, not a hidden one.

import { _, format } from "/static/i18n.js";
import { Telestration, roleName, session, showPlayingTiles, status, wireSession } from "./live-common.js";
import { Stage } from "./stage.js";

class JoinStage extends Stage {
  render() {
    super.render();
    showPlayingTiles(this);
  }
}

const stage = new JoinStage({
  stage: document.querySelector("[data-stage]"),
  tiles: document.querySelector("[data-tiles]"),
});
const telestration = new Telestration(document.querySelector("[data-telestration]"));
wireSession({ telestration, extra: { program: (e) => stage.setProgram(e.feed), hello: (e) => stage.setProgram(e.program_feed) } });

const controls = document.querySelector("[data-join-controls]");
const leaveButton = document.querySelector("[data-leave]");
const videoInput = document.querySelector("[data-video-input]");
const self = document.querySelector("[data-self]");
const selfPicture = document.querySelector("[data-self-picture]");
const selfView = document.querySelector("[data-self-view]");
const cameraOffNote = document.querySelector("[data-camera-off-note]");
const microphoneButton = document.querySelector("[data-toggle-microphone]");
const cameraButton = document.querySelector("[data-toggle-camera]");
const selfViewButton = document.querySelector("[data-toggle-self-view]");

// The cameras and capture devices of this machine. Browsers name them only once the page
// may use one, so the list is filled again when the person opens it.
async function listVideoInputs() {
  if (!videoInput || !navigator.mediaDevices?.enumerateDevices) return;
  const devices = (await navigator.mediaDevices.enumerateDevices())
    .filter((device) => device.kind === "videoinput" && device.deviceId);
  const chosen = videoInput.value;
  videoInput.replaceChildren(new Option(_("Default camera"), ""));
  devices.forEach((device, index) => {
    videoInput.append(new Option(device.label || format(_("Video input %(number)s"), { number: index + 1 }), device.deviceId));
  });
  videoInput.value = [...videoInput.options].some((o) => o.value === chosen) ? chosen : "";
}
listVideoInputs().catch(() => {});
videoInput?.addEventListener("focus", () => listVideoInputs().catch(() => {}));

const pressed = (button) => button.getAttribute("aria-pressed") === "true";

/** A toggle button: pressing it flips aria-pressed and calls `apply(pressed)`. */
function toggle(button, apply) {
  button.addEventListener("click", () => {
    const now = !pressed(button);
    button.setAttribute("aria-pressed", String(now));
    apply(now);
  });
}

toggle(microphoneButton, (muted) => {
  for (const track of stage.localStream?.getAudioTracks() ?? []) track.enabled = !muted;
  status(muted ? _("Your microphone is muted.") : _("Your microphone is on."));
});
toggle(cameraButton, (off) => {
  for (const track of stage.localStream?.getVideoTracks() ?? []) track.enabled = !off;
  cameraOffNote.hidden = !off;
  status(off ? _("Your camera is off.") : _("Your camera is on."));
});
toggle(selfViewButton, (shown) => {
  selfPicture.hidden = !shown;
});

/** Once sending: show the person's own picture and the toggles their stream allows. */
function showSelf(stream) {
  selfView.srcObject = stream;
  microphoneButton.hidden = stream.getAudioTracks().length === 0;
  cameraButton.hidden = stream.getVideoTracks().length === 0;
  self.hidden = false;
}

async function start(kind) {
  controls.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const grant = await stage.join();
    if (kind !== "none" && grant.may_publish) {
      const display = document.querySelector("[data-source-name]")?.value;
      const feed = await stage.publish(kind, display, videoInput?.value ?? "");
      document.body.dataset.publishedFeed = feed;
      showSelf(stage.localStream);
      status(format(_("You are live as %(role)s."), { role: roleName(grant.role) }));
    } else {
      status(format(_("Joined as %(role)s; receiving only."), { role: roleName(grant.role) }));
    }
    stage.follow();
    document.body.dataset.joined = "true";
    controls.remove();
    leaveButton.hidden = false;
  } catch (error) {
    // Janus's 432: the room already has as many senders as the session's kind allows.
    status(error.code === 432
      ? _("The room already has as many cameras as it takes: join without sending, or ask the organiser.")
      : format(_("Could not join: %(error)s"), { error: error.message }));
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
