// Publish a camera to a Janus VideoRoom and subscribe to a publisher, with the browser's
// native WebRTC API and the Janus API over HTTP (Janus 1.x "RESTful, HTTP/HTTPS" transport
// and "VideoRoom plugin" chapters). No build step: import this file as an ES module.
//
// Every request carries the per-user, per-room credential Concilium minted: Janus checks it
// when the session is created (stored token) and when the room is joined (allowed list).
// ICE uses half-trickle: the SDP is sent once candidate gathering is complete, which is quick
// on the hospital LAN and keeps the exchange to one request per step.

import { _, format } from "/static/i18n.js";

const VIDEOROOM = "janus.plugin.videoroom";
const STREAMING = "janus.plugin.streaming";

function transaction() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Error answered by Janus or one of its plugins; `code` is Janus's numeric code. */
export class JanusError extends Error {
  constructor(code, reason) {
    super(format(_("Media server error %(code)s: %(reason)s"), { code, reason }));
    this.name = "JanusError";
    this.code = code;
  }
}

function checkReply(reply) {
  if (reply.janus === "error") {
    throw new JanusError(reply.error?.code ?? 0, reply.error?.reason ?? _("unknown error"));
  }
  const data = reply.plugindata?.data;
  if (data && (data.error_code !== undefined || data.error !== undefined)) {
    throw new JanusError(data.error_code ?? 0, data.error ?? _("plugin error"));
  }
  return reply;
}

/** One Janus API session: requests, the event long poll and keepalives. */
export class JanusSession {
  constructor(apiUrl, token, { keepaliveMs = 25000, headers = {} } = {}) {
    this.apiUrl = apiUrl.replace(/\/$/, "");
    this.token = token;
    // Extra request headers, e.g. the CSRF token when Janus is reached through Concilium.
    this.headers = headers;
    this.keepaliveMs = keepaliveMs;
    this.id = null;
    this.pending = new Map();
    this.listeners = new Set();
    this.lostListeners = new Set();
    this.closed = false;
  }

  /** Call `listener` once if Janus forgets this session (it restarted, or the session
   * timed out): its handles and peer connections are gone and must be made again. */
  onLost(listener) {
    this.lostListeners.add(listener);
  }

  lost() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const listener of this.lostListeners) listener();
  }

  async post(path, body) {
    // A text body keeps the request "simple" for CORS, so no preflight round trip is needed.
    const response = await fetch(this.apiUrl + path, {
      method: "POST",
      headers: this.headers,
      body: JSON.stringify({ transaction: transaction(), token: this.token, ...body }),
    });
    if (!response.ok) throw new JanusError(response.status, `HTTP ${response.status}`);
    return checkReply(await response.json());
  }

  async create() {
    const reply = await this.post("", { janus: "create" });
    this.id = reply.data.id;
    this.poll();
    this.keepalive = setInterval(() => {
      this.post(`/${this.id}`, { janus: "keepalive" }).catch(() => {});
    }, this.keepaliveMs);
    return this;
  }

  async poll() {
    while (!this.closed) {
      let messages;
      try {
        const url = `${this.apiUrl}/${this.id}?maxev=10&token=${encodeURIComponent(this.token)}`;
        const response = await fetch(url);
        // Janus answers 404 for a session it does not know: it restarted (or timed us out).
        if (response.status === 404) {
          this.lost();
          return;
        }
        messages = await response.json();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const message of Array.isArray(messages) ? messages : [messages]) {
        // 458 "no such session", the same said in a message.
        if (message?.janus === "error" && message.error?.code === 458) {
          this.lost();
          return;
        }
        this.dispatch(message);
      }
    }
  }

  dispatch(message) {
    const waiter = this.pending.get(message.transaction);
    if (waiter && message.janus === "event") {
      this.pending.delete(message.transaction);
      try {
        waiter.resolve(checkReply(message));
      } catch (error) {
        waiter.reject(error);
      }
      return;
    }
    for (const listener of this.listeners) listener(message);
  }

  /** Send a plugin message; resolves with the `success` reply or the matching `event`. */
  async message(handleId, body, jsep) {
    const id = transaction();
    const answer = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const request = { janus: "message", transaction: id, token: this.token, body };
    if (jsep) request.jsep = jsep;
    let reply;
    try {
      const response = await fetch(`${this.apiUrl}/${this.id}/${handleId}`, {
        method: "POST",
        headers: this.headers,
        body: JSON.stringify(request),
      });
      reply = checkReply(await response.json());
    } catch (error) {
      this.pending.delete(id);
      throw error;
    }
    if (reply.janus === "success") {
      this.pending.delete(id);
      return reply;
    }
    return answer;
  }

  async attach(plugin) {
    const reply = await this.post(`/${this.id}`, { janus: "attach", plugin });
    return reply.data.id;
  }

  async destroy() {
    this.closed = true;
    clearInterval(this.keepalive);
    if (this.id !== null) {
      await this.post(`/${this.id}`, { janus: "destroy" }).catch(() => {});
    }
  }
}

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

function connected(pc, timeoutMs = 15000) {
  if (pc.connectionState === "connected") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(_("the video connection took too long to open"))), timeoutMs);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") {
        clearTimeout(timer);
        resolve();
      } else if (pc.connectionState === "failed") {
        clearTimeout(timer);
        reject(new Error(_("the video connection failed")));
      }
    });
  });
}

function newPeerConnection() {
  // No STUN/TURN: Janus runs next to Concilium and offers host candidates only.
  return new RTCPeerConnection({ iceServers: [] });
}

// Simulcast layers by RTP stream id, highest first; Janus numbers them 2 (h), 1 (m), 0 (l).
const SIMULCAST_ENCODINGS = [
  { rid: "h", maxBitrate: 1_500_000 },
  { rid: "m", maxBitrate: 500_000, scaleResolutionDownBy: 2 },
  { rid: "l", maxBitrate: 150_000, scaleResolutionDownBy: 4 },
];

/** What `stream` is, in the words the server understands: "screen" for a shared screen,
 * "capture" for a capture device (its picture is hinted as "motion"), else "camera". */
export function sourceKind(stream) {
  const video = stream.getVideoTracks()[0];
  if (!video) return "camera";
  if (video.getSettings().displaySurface !== undefined) return "screen";
  return video.contentHint === "motion" ? "capture" : "camera";
}

/**
 * Join `room` as a publisher and send `stream`. With `simulcast`, the video is sent in
 * three resolutions so each subscriber can get the one its link and screen can take.
 * With `id`, the feed claims that publisher id: a publisher coming back after a Janus
 * restart keeps its feed id, so the program (and its HLS) find it again. `source` says what
 * is sent ("camera", "screen" or "capture"; by default what `sourceKind` sees): each
 * stream is described so, and the server notes it beside the recording (anything else
 * counts as a camera there; the name is the account's, set by the server).
 * Resolves with { session, handleId, pc, publisherId, display, source }.
 */
export async function publish({
  apiUrl,
  token,
  room,
  stream,
  display = "",
  simulcast = false,
  id = null,
  headers = {},
  source = sourceKind(stream),
}) {
  const session = await new JanusSession(apiUrl, token, { headers }).create();
  let pc = null;
  try {
    const handleId = await session.attach(VIDEOROOM);
    const join = { request: "join", ptype: "publisher", room, display, token };
    if (id !== null) join.id = id;
    const joined = await session.message(handleId, join);
    const publisherId = joined.plugindata.data.id;
    pc = newPeerConnection();
    for (const track of stream.getTracks()) {
      if (simulcast && track.kind === "video") {
        pc.addTransceiver(track, {
          direction: "sendonly",
          streams: [stream],
          sendEncodings: SIMULCAST_ENCODINGS.map((encoding) => ({ ...encoding })),
        });
      } else {
        pc.addTrack(track, stream);
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc);
    const descriptions = pc.getTransceivers()
      .filter((transceiver) => transceiver.mid !== null)
      .map((transceiver) => ({ mid: transceiver.mid, description: source }));
    const configured = await session.message(
      handleId,
      { request: "configure", audio: true, video: true, descriptions },
      { type: "offer", sdp: pc.localDescription.sdp },
    );
    await pc.setRemoteDescription(configured.jsep);
    // Subscribers can only attach to a feed whose media path is up.
    await connected(pc);
    return { session, handleId, pc, publisherId, display, source };
  } catch (error) {
    // A failed attempt leaves nothing behind on Janus (a retry may claim the same id).
    pc?.close();
    await session.destroy();
    throw error;
  }
}

/**
 * Subscribe to publisher `feed` in `room` and play it in `video`.
 * Resolves with { session, handleId, pc, videoMid }.
 */
export async function subscribe({ apiUrl, token, room, feed, video, headers = {} }) {
  const session = await new JanusSession(apiUrl, token, { headers }).create();
  const handleId = await session.attach(VIDEOROOM);
  const join = { request: "join", ptype: "subscriber", room, streams: [{ feed }], token };
  let attached;
  for (let attempt = 1; ; attempt += 1) {
    try {
      attached = await session.message(handleId, join);
      break;
    } catch (error) {
      // 428 "no such feed": the publisher is still setting up its media; it appears soon.
      if (!(error instanceof JanusError) || error.code !== 428 || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  const pc = newPeerConnection();
  const remote = new MediaStream();
  pc.addEventListener("track", (event) => {
    remote.addTrack(event.track);
    video.srcObject = remote;
  });
  await pc.setRemoteDescription(attached.jsep);
  await pc.setLocalDescription(await pc.createAnswer());
  await gatheringComplete(pc);
  await session.message(
    handleId,
    { request: "start", room },
    { type: "answer", sdp: pc.localDescription.sdp },
  );
  const streams = attached.plugindata.data.streams ?? [];
  const videoMid = streams.find((stream) => stream.type === "video")?.mid ?? null;
  return { session, handleId, pc, videoMid };
}

/**
 * Ask Janus for another simulcast layer of a subscribed video: 0 (lowest) to 2 (highest).
 * Janus switches at the next keyframe.
 */
export async function selectSubstream({ session, handleId, videoMid }, substream) {
  if (![0, 1, 2].includes(substream)) throw new RangeError("substream must be 0, 1 or 2");
  if (videoMid === null) throw new Error(_("this feed has no picture"));
  await session.message(handleId, {
    request: "configure",
    streams: [{ mid: videoMid, substream }],
  });
}

/**
 * Watch a Streaming mountpoint (an IP camera or a cine loop fed into the session) in
 * `video`. Resolves with { session, handleId, pc }.
 */
export async function watch({ apiUrl, token, mountpoint, video, headers = {} }) {
  const session = await new JanusSession(apiUrl, token, { headers }).create();
  const handleId = await session.attach(STREAMING);
  const offered = await session.message(handleId, { request: "watch", id: mountpoint });
  const pc = newPeerConnection();
  const remote = new MediaStream();
  pc.addEventListener("track", (event) => {
    remote.addTrack(event.track);
    video.srcObject = remote;
  });
  await pc.setRemoteDescription(offered.jsep);
  await pc.setLocalDescription(await pc.createAnswer());
  await gatheringComplete(pc);
  await session.message(
    handleId,
    { request: "start" },
    { type: "answer", sdp: pc.localDescription.sdp },
  );
  return { session, handleId, pc };
}

/** Hang up and leave: closes the peer connection and destroys the Janus session. */
export async function leave({ session, pc }) {
  pc.close();
  await session.destroy();
}
