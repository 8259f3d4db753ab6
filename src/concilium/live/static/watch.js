// Viewer page: the program picture with its telestration, approved questions, and a box to
// ask one. Interactive roles receive the program over WebRTC and follow the director's
// switches live; the mass audience of a broadcast watches the HLS output of the program.
// Only feeds whose picture plays are shown; until one does, the page says nothing is live.

import { _, format } from "/static/i18n.js";
import { Telestration, roleName, showPlayingTiles, status, wireSession } from "./live-common.js";
import { playHls } from "./hls-player.js";
import { Stage } from "./stage.js";

const root = document.querySelector("[data-live-session]");
const video = document.querySelector("[data-stage]");
const nothingLive = document.querySelector("[data-nothing-live]");
const telestration = new Telestration(document.querySelector("[data-telestration]"));

class WatchStage extends Stage {
  render() {
    super.render();
    showPlayingTiles(this, nothingLive);
  }
}

if (root.dataset.hlsAccess) {
  let player = null;
  const stage = new WatchStage({ stage: video });
  showPlayingTiles(stage, nothingLive);
  wireSession({
    telestration,
    // A program switch restarts the packager: pick up the new stream shortly after.
    extra: { program: () => player?.restart() },
  });
  playHls(video, root.dataset.hlsAccess, (state) => status(format(_("Watching the broadcast (%(state)s)."), { state })))
    .then((started) => { player = started; })
    .catch((error) => status(format(_("Could not start the picture: %(error)s"), { error: error.message })));
} else {
  const stage = new WatchStage({ stage: video, tiles: document.querySelector("[data-tiles]") });
  showPlayingTiles(stage, nothingLive);
  wireSession({
    telestration,
    extra: { program: (e) => stage.setProgram(e.feed), hello: (e) => stage.setProgram(e.program_feed) },
  });

  stage.join()
    .then((grant) => {
      status(format(_("Watching as %(role)s."), { role: roleName(grant.role) }));
      stage.follow();
    })
    .catch((error) => status(format(_("Could not start the picture: %(error)s"), { error: error.message })));
  addEventListener("pagehide", () => { stage.leave(); });
}
