// Library page: a chapter button seeks the recording to its time and plays from there.

const video = document.querySelector("[data-recording]");
for (const button of document.querySelectorAll("[data-seek]")) {
  button.addEventListener("click", () => {
    video.currentTime = Number(button.dataset.seek);
    video.play().catch(() => {});  // autoplay rules may refuse; the seek stands
  });
}
