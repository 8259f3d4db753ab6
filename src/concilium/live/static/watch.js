// Viewer page: the program picture with its telestration, approved questions, and a box to
// ask one. Interactive roles receive the program over WebRTC and follow the director's
// switches live; the mass audience of a broadcast watches the HLS output of the program.

import { Telestration, status, wireSession } from "./live-common.js";
import { playHls } from "./hls-player.js";
import { Stage } from "./stage.js";

const root = document.querySelector("[data-live-session]");
const video = document.querySelector("[data-stage]");
const telestration = new Telestration(document.querySelector("[data-telestration]"));

if (root.dataset.hlsAccess) {
  let player = null;
  wireSession({
    telestration,
    // A program switch restarts the packager: pick up the new stream shortly after.
    extra: { program: () => player?.restart() },
  });
  playHls(video, root.dataset.hlsAccess, (state) => status(`Watching the broadcast (${state}).`))
    .then((started) => { player = started; })
    .catch((error) => status(`Could not start the picture: ${error.message}`));
} else {
  const stage = new Stage({ stage: video, tiles: document.querySelector("[data-tiles]") });
  wireSession({
    telestration,
    extra: { program: (e) => stage.setProgram(e.feed), hello: (e) => stage.setProgram(e.program_feed) },
  });

  stage.join()
    .then((grant) => {
      status(`Watching as ${grant.role}.`);
      stage.follow();
    })
    .catch((error) => status(`Could not start the picture: ${error.message}`));
  addEventListener("pagehide", () => { stage.leave(); });
}
