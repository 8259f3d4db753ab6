// HLS playback for the mass audience: native HLS where the browser has it (Safari, iOS),
// otherwise hls.js (Media Source Extensions), loaded from Concilium on first use.

const HLS_JS = "/live/assets/hls.min.js";
const RETRY_MS = 3000;

function loadHlsJs() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = HLS_JS;
    script.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error("hls.js did not load")));
    script.onerror = () => reject(new Error("hls.js could not be fetched"));
    document.head.append(script);
  });
}

/**
 * Play the live HLS stream at `url` in `video`, trying again while the broadcast is not on
 * air (no playlist yet) or after the program switched. `onState(text)` reports progress.
 */
export async function playHls(video, url, onState = () => {}) {
  video.muted = true; // autoplay rules: the viewer unmutes with the controls
  video.controls = true;
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    video.addEventListener("error", () => setTimeout(() => { video.src = url; }, RETRY_MS));
    await video.play().catch(() => {});
    onState("native");
    return { restart() { video.src = url; } };
  }
  const Hls = await loadHlsJs();
  if (!Hls.isSupported()) throw new Error("this browser plays neither HLS nor Media Source");
  let hls = null;
  const start = () => {
    if (hls) hls.destroy();
    hls = new Hls({ liveSyncDurationCount: 2, manifestLoadingMaxRetry: 0, enableWorker: true });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      onState(`hls.js, ${hls.levels.length} renditions`);
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      onState("waiting for the broadcast…");
      setTimeout(start, RETRY_MS);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  };
  start();
  return { restart: () => setTimeout(start, RETRY_MS) };
}
