// The media side of the live pages: join the session's room through Concilium, publish a
// camera or a screen, subscribe to the other feeds and watch the session's fed sources (IP
// cameras, cine loops), and show the program feed on the stage (the picture telestration
// is drawn over) unless the person chose another view.

import { leave, publish, selectSubstream, subscribe, watch } from "./janus-room.js";
import { _, format } from "/static/i18n.js";
import { api, csrfHeaders, status } from "./live-common.js";

/** getUserMedia constraints: a participant's camera and microphone at a conference's modest
 * size, or a capture device's picture alone at its own frame rate and up to 720p (the
 * rooms' H.264 level 3.1), so that an angiography run at 15-30 fps keeps every frame. */
function captureConstraints(kind, deviceId = "") {
  const device = deviceId ? { deviceId: { exact: deviceId } } : {};
  if (kind === "capture") {
    return {
      video: { ...device, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      audio: false,
    };
  }
  return {
    video: { ...device, width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } },
    audio: true,
  };
}

export class Stage {
  constructor({ stage, tiles = null }) {
    this.stageVideo = stage;
    this.tiles = tiles;
    this.grant = null;
    this.mine = null;
    this.localStream = null;
    this.simulcast = false; // whether my camera goes in simulcast layers
    this.feeds = new Map(); // feed id -> { video, joined, display, substream }
    this.program = null;
    this.chosen = null; // a view the person picked instead of the program
    this.timer = null;
  }

  config() {
    const { api_url: apiUrl, token, room } = this.grant;
    return { apiUrl, token, room, headers: csrfHeaders() };
  }

  /** Ask Concilium for a media credential for this session's room. */
  async join() {
    this.grant = await api("/join", { method: "POST" });
    return this.grant;
  }

  /** Publish under `display` a camera, a capture device (the video output of an X-ray
   * system or an endoscope through a frame grabber) or the screen; `deviceId` picks the
   * camera or capture device, the default one when empty. */
  async publish(kind, display, deviceId = "") {
    const stream = kind === "screen"
      ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
      : await navigator.mediaDevices.getUserMedia(captureConstraints(kind, deviceId));
    if (kind === "capture") {
      // Dynamic images: under congestion the encoder lowers the resolution, never the
      // frame rate ("motion" maps to the maintain-framerate degradation preference).
      for (const track of stream.getVideoTracks()) track.contentHint = "motion";
    }
    this.localStream = stream;
    // In a meeting a camera goes in simulcast layers, each viewer taking the one it shows.
    this.simulcast = Boolean(this.grant.simulcast) && kind === "camera";
    this.mine = await publish({
      ...this.config(),
      stream,
      display: display || this.grant.display,
      simulcast: this.simulcast,
    });
    this.mine.session.onLost(() => this.republish(this.mine));
    this.render();
    return this.mine.publisherId;
  }

  /** The media server restarted: publish the same stream again under the same feed id, so
   * whoever showed it (the program, the HLS of a broadcast) finds it again. */
  async republish(previous) {
    previous.pc.close();
    status(_("Media server restarted: publishing again…"));
    for (let attempt = 0; this.mine === previous && this.localStream; attempt += 1) {
      try {
        const again = await publish({
          ...this.config(),
          stream: this.localStream,
          display: previous.display,
          simulcast: this.simulcast,
          id: previous.publisherId,
        });
        if (this.mine !== previous) {
          leave(again).catch(() => {});
          return;
        }
        this.mine = again;
        again.session.onLost(() => this.republish(again));
        status(_("Publishing again after a media server restart."));
        this.render();
        return;
      } catch (error) {
        // Janus is still starting, or the room is not back yet: try again, less and less often.
        await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 5000)));
      }
    }
  }

  /** Keep the subscriptions in step with the room's publishers, every two seconds. */
  follow() {
    const tick = () => this.refresh().catch((error) => status(format(_("Media: %(error)s"), { error: error.message })));
    tick();
    this.timer = setInterval(tick, 2000);
  }

  async refresh() {
    const [feeds, sources] = await Promise.all([api("/feeds"), api("/sources").catch(() => [])]);
    const wanted = feeds
      .filter((feed) => feed.id !== this.mine?.publisherId)
      .map((feed) => ({ id: feed.id, display: feed.display, open: (video) => subscribe({ ...this.config(), feed: feed.id, video }) }));
    for (const source of sources) {
      if (source.state !== "live" || source.mountpoint === null) continue;
      wanted.push({
        id: `source-${source.id}`,
        display: source.name,
        open: (video) => watch({ ...this.config(), mountpoint: source.mountpoint, video }),
      });
    }
    const present = new Set([...wanted.map((feed) => feed.id), this.mine?.publisherId]);
    for (const feed of wanted) {
      if (this.feeds.has(feed.id)) continue;
      const video = document.createElement("video");
      Object.assign(video, { autoplay: true, playsInline: true, muted: false, controls: true });
      video.dataset.feed = feed.id;
      const entry = { video, joined: null, display: feed.display };
      this.feeds.set(feed.id, entry);
      feed.open(video)
        .then((joined) => {
          entry.joined = joined;
          // After a media server restart the feed is subscribed to again at the next refresh.
          joined.session.onLost(() => {
            joined.pc.close();
            if (this.feeds.get(feed.id) === entry) this.feeds.delete(feed.id);
          });
          this.render();
        })
        .catch((error) => {
          this.feeds.delete(feed.id);
          status(format(_("Could not receive %(feed)s: %(error)s"), { feed: feed.display, error: error.message }));
        });
    }
    for (const [id, entry] of this.feeds) {
      if (!present.has(id)) {
        this.feeds.delete(id);
        if (entry.joined) leave(entry.joined).catch(() => {});
      }
    }
    this.render();
  }

  setProgram(feed) {
    this.program = feed;
    this.render();
  }

  /** Put a camera or source of the person's choice on the stage; `null` for the program. */
  choose(feed) {
    this.chosen = feed;
    this.render();
  }

  /** The chosen view, else the program feed, goes on the stage; the others are tiles. */
  render() {
    const ids = [...this.feeds.keys()];
    const mineId = this.mine?.publisherId ?? null;
    if (this.chosen !== null && !this.feeds.has(this.chosen)) this.chosen = null;
    const chosen = this.chosen ?? this.program ?? ids[0] ?? mineId;
    if (chosen !== null && chosen === mineId && this.localStream) {
      if (this.stageVideo.srcObject !== this.localStream) this.stageVideo.srcObject = this.localStream;
      this.stageVideo.muted = true;
      this.stageVideo.dataset.feed = mineId;
    } else if (this.feeds.get(chosen)?.video.srcObject) {
      const source = this.feeds.get(chosen).video.srcObject;
      if (this.stageVideo.srcObject !== source) this.stageVideo.srcObject = source;
      this.stageVideo.dataset.feed = chosen;
    }
    if (this.grant?.simulcast) this.pickLayers(chosen);
    if (!this.tiles) return;
    const shown = [...this.feeds.entries()].filter(([id]) => id !== chosen);
    const tiles = shown.map(([id, entry]) => {
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      const pick = document.createElement("button");
      pick.type = "button";
      pick.textContent = format(_("Watch %(feed)s"), { feed: entry.display });
      pick.addEventListener("click", () => this.choose(id));
      caption.append(pick);
      figure.append(entry.video, caption);
      return figure;
    });
    if (this.chosen !== null) {
      const back = document.createElement("button");
      back.type = "button";
      back.textContent = _("Back to the program");
      back.dataset.program = "";
      back.addEventListener("click", () => this.choose(null));
      tiles.unshift(back);
    }
    this.tiles.replaceChildren(...tiles);
  }

  /** In a simulcast room, ask Janus for the highest layer of the feed on the stage and the
   * lowest of every tile; a camera sending one layer only keeps it. */
  pickLayers(onStage) {
    for (const [id, entry] of this.feeds) {
      const wanted = id === onStage ? 2 : 0;
      if (!entry.joined?.videoMid || entry.substream === wanted) continue;
      entry.substream = wanted;
      selectSubstream(entry.joined, wanted).catch(() => { entry.substream = undefined; });
    }
  }

  /** Hang up everything and tell Concilium (credentials are revoked). */
  async leave() {
    clearInterval(this.timer);
    const all = [...this.feeds.values()].map((e) => e.joined).filter(Boolean);
    if (this.mine) all.push(this.mine);
    await Promise.allSettled(all.map((joined) => leave(joined)));
    this.localStream?.getTracks().forEach((track) => track.stop());
    this.feeds.clear();
    this.mine = null;
    await api("/leave", { method: "POST" }).catch(() => {});
  }
}
