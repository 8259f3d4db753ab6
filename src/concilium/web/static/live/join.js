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

async function start(kind) {
  controls.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const grant = await stage.join();
    if (kind !== "none" && grant.may_publish) {
      const display = document.querySelector("[data-source-name]")?.value;
      const feed = await stage.publish(kind, display);
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
    status(`Could not join: ${error.message}`);
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
