// The surgeon's picture: the procedure's live session, received through the live service's
// player (credential from Concilium, Janus through the /janus proxy). The first camera goes
// under the state and latency badge; other cameras (a stereo pair's second eye) are tiles.

import { status } from "../live/live-common.js";
import { Stage } from "../live/stage.js";

const video = document.querySelector("[data-stage]");
if (video) {
  const stage = new Stage({ stage: video, tiles: document.querySelector("[data-tiles]") });
  stage.join()
    .then(() => {
      status("Receiving the operating room's video.");
      stage.follow();
    })
    .catch((error) => status(`No video: ${error.message}`));
  addEventListener("pagehide", () => { stage.leave(); });
}
