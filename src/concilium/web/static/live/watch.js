// Viewer page: the program picture with its telestration, approved questions, and a box to
// ask one. Starts receiving at once; the director's program switches are followed live.

import { Telestration, status, wireSession } from "./live-common.js";
import { Stage } from "./stage.js";

const stage = new Stage({ stage: document.querySelector("[data-stage]") });
const telestration = new Telestration(document.querySelector("[data-telestration]"));
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
