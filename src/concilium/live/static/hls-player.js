// HLS playback for the mass audience: native HLS where the browser has it (Safari, iOS),
// otherwise hls.js (Media Source Extensions), loaded from Concilium on first use.
//
// The files live under a signed, expiring address that Concilium grants to those who may
// watch (`GET /api/v1/live/sessions/{id}/hls`); the player asks again before it lapses.

import { _, format, ngettext } from "/static/i18n.js";

const HLS_JS = "/live/assets/hls.min.js";
const RETRY_MS = 3000;
const CAPABILITY = /\/live\/\d+\/hls\/[^/]+\/[^/]+\//;

function loadHlsJs() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = HLS_JS;
    script.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error(_("the video player did not load"))));
    script.onerror = () => reject(new Error(_("the video player could not be fetched")));
    document.head.append(script);
  });
}

/** The current signed playlist address: `{ playlist, prefix, renewIn }` (renewIn in ms). */
async function requestAccess(accessUrl) {
  const response = await fetch(accessUrl, { credentials: "same-origin" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail ?? `HTTP ${response.status}`);
  const playlist = new URL(data.playlist, location.href).href;
  return { playlist, prefix: playlist.replace(/master\.m3u8$/, ""), renewIn: data.renew_in * 1000 };
}

/**
 * Play the live HLS stream of the session whose access is granted at `accessUrl` in `video`,
 * trying again while the broadcast is not on air (no playlist yet) or after the program
 * switched. `onState(text)` reports progress.
 */
export async function playHls(video, accessUrl, onState = () => {}) {
  video.muted = true; // autoplay rules: the viewer unmutes with the controls
  video.controls = true;
  let access = await requestAccess(accessUrl);
  let renewal = null;
  let onRenewed = () => {};
  const scheduleRenewal = (delay) => {
    clearTimeout(renewal);
    renewal = setTimeout(async () => {
      try {
        access = await requestAccess(accessUrl);
        onRenewed();
        scheduleRenewal(access.renewIn);
      } catch {
        scheduleRenewal(60_000);
      }
    }, delay);
  };
  scheduleRenewal(access.renewIn);

  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    const load = () => { video.src = access.playlist; };
    // The native player keeps the address it was given: move it to the renewed one.
    onRenewed = load;
    load();
    video.addEventListener("error", () => setTimeout(load, RETRY_MS));
    await video.play().catch(() => {});
    onState(_("played by the browser"));
    return { restart: load };
  }
  const Hls = await loadHlsJs();
  if (!Hls.isSupported()) throw new Error(_("this browser cannot play the broadcast; use a recent browser"));
  let hls = null;
  const start = () => {
    if (hls) hls.destroy();
    hls = new Hls({
      liveSyncDurationCount: 2,
      manifestLoadingMaxRetry: 0,
      enableWorker: true,
      // Every request goes out under the newest capability: a renewal changes no URL the
      // player holds, so playback carries on without a restart.
      xhrSetup: (xhr, url) => xhr.open("GET", url.replace(CAPABILITY, new URL(access.prefix).pathname), true),
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      onState(format(ngettext("%(num)s quality", "%(num)s qualities", hls.levels.length), { num: hls.levels.length }));
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      onState(_("waiting for the broadcast…"));
      // Refused: the address lapsed (a device that slept); ask for a new one first.
      if (data.response?.code === 403) scheduleRenewal(0);
      setTimeout(start, RETRY_MS);
    });
    hls.loadSource(access.playlist);
    hls.attachMedia(video);
  };
  start();
  return { restart: () => setTimeout(start, RETRY_MS) };
}
