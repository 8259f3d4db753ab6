// Library page: a chapter button seeks the recording to its time and plays from there; the
// drawings made during the session come back over the picture at the times they were made.

import { Telestration } from "./live-common.js";

const video = document.querySelector("[data-recording]");
for (const button of document.querySelectorAll("[data-seek]")) {
  button.addEventListener("click", () => {
    video.currentTime = Number(button.dataset.seek);
    video.play().catch(() => {});  // autoplay rules may refuse; the seek stands
  });
}

// Strokes in time order; an empty one is a clear. At each moment the layer shows what was
// drawn since the last clear, as the session's participants saw it.
const strokes = JSON.parse(document.querySelector("[data-strokes]").textContent);
const layer = new Telestration(document.querySelector("[data-telestration]"));
let shown = -1;
function drawUpTo(time) {
  let last = -1;
  while (last + 1 < strokes.length && strokes[last + 1].at <= time) last += 1;
  if (last === shown) return;
  shown = last;
  let from = last;
  while (from >= 0 && strokes[from].points.length > 0) from -= 1;
  layer.strokes = strokes.slice(from + 1, last + 1);
  layer.redraw();
  document.body.dataset.strokesShown = String(layer.strokes.length);
}
for (const event of ["timeupdate", "seeked", "loadedmetadata"]) {
  video.addEventListener(event, () => drawUpTo(video.currentTime));
}
if ("requestVideoFrameCallback" in video) {
  // Frame by frame while playing: timeupdate alone comes only four times a second.
  const onFrame = (_, frame) => {
    drawUpTo(frame.mediaTime);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}
drawUpTo(0);
