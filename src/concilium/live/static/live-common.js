// Shared by the live pages: the JSON API with the CSRF token, the session websocket, the
// chat and question lists, and the telestration layer drawn over a video.

import { _, format } from "/static/i18n.js";

const page = document.querySelector("[data-live-session]");

/** Facts the server put on the page: session id, CSRF token, who I am. */
export const session = {
  id: Number(page?.dataset.liveSession),
  csrf: page?.dataset.csrf ?? "",
  me: Number(page?.dataset.me),
};

/** Headers every state-changing request to Concilium carries (Janus proxy included). */
export const csrfHeaders = () => ({ "X-CSRF-Token": session.csrf });

/** Call the live JSON API; resolves with the decoded body or throws with the problem detail. */
export async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(`/api/v1/live/sessions/${session.id}${path}`, {
    method,
    headers: { ...csrfHeaders(), ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail ?? `HTTP ${response.status}`);
  return data;
}

/** Show a message in the page's status line (announced to screen readers). */
export function status(text) {
  const line = document.querySelector("[data-status]");
  if (line) line.textContent = text;
}

/**
 * Open the session websocket; `handlers[type](event)` is called for each event. Reconnects
 * after a drop (a laptop going to sleep, a phone changing network).
 */
export function connect(handlers) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let socket;
  const open = () => {
    socket = new WebSocket(`${scheme}://${location.host}/live/${session.id}/ws`);
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      handlers[event.type]?.(event);
      handlers.any?.(event);
    });
    socket.addEventListener("close", (closing) => {
      if (closing.code === 1008) {
        status(format(_("Refused: %(reason)s"), { reason: closing.reason || _("not allowed") }));
        return;
      }
      setTimeout(open, 2000);
    });
  };
  open();
  return { send: (event) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(event)) };
}

function item(id, text, meta) {
  const li = document.createElement("li");
  li.dataset.id = id;
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = text;
  const small = document.createElement("small");
  small.textContent = meta;
  li.append(small, " ", body);
  return li;
}

/** Append a chat line to `list`. */
export function showChat(list, event) {
  list.append(item(event.id, event.body, `${event.author}:`));
  list.scrollTop = list.scrollHeight;
}

/** What a question's state is called, in the reader's language. */
export function questionState(state) {
  const names = {
    submitted: _("awaiting moderation"),
    approved: _("approved"),
    answered: _("answered"),
    rejected: _("rejected"),
    merged: _("merged"),
  };
  return names[state] ?? state;
}

/** Insert or update a question in `list`; `actions(li, event)` may add buttons. */
export function showQuestion(list, event, actions) {
  const existing = list.querySelector(`li[data-id="${event.id}"]`);
  const hidden = !["approved", "answered"].includes(event.status) && !actions
    && event.author_id !== session.me;
  if (hidden) {
    existing?.remove();
    return;
  }
  const li = item(event.id, event.body, `${event.author} · ${questionState(event.status)}`);
  li.dataset.status = event.status;
  if (event.answer) {
    const answer = document.createElement("p");
    answer.className = "answer";
    answer.textContent = format(_("Answer: %(answer)s"), { answer: event.answer });
    li.append(answer);
  }
  if (event.merged_into) {
    const merged = document.createElement("p");
    merged.textContent = format(_("Merged into question %(number)s"), { number: event.merged_into });
    li.append(merged);
  }
  actions?.(li, event);
  if (existing) existing.replaceWith(li);
  else list.append(li);
}

/** Wire a form with one text field to send `{type, body}` over the socket. */
export function sendForm(form, socket, type) {
  form?.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const input = form.querySelector("input, textarea");
    if (input.value.trim()) socket.send({ type, body: input.value });
    input.value = "";
  });
}

/**
 * A canvas over a video: draws every stroke, and when `enabled`, lets the pointer draw one
 * (sent with `onStroke(points)` in picture-relative coordinates when the pointer lifts).
 */
export class Telestration {
  constructor(canvas, { enabled = false, color = "#ffcc00", onStroke = () => {} } = {}) {
    this.canvas = canvas;
    this.strokes = [];
    this.color = color;
    this.onStroke = onStroke;
    new ResizeObserver(() => this.redraw()).observe(canvas);
    // The picture and the layer over it take the video's own shape: a stroke's coordinates
    // are then the picture's, the same on every screen and in the recording.
    const video = canvas.parentElement?.querySelector("video");
    video?.addEventListener("resize", () => {
      if (video.videoWidth && video.videoHeight) {
        canvas.parentElement.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
      }
    });
    if (enabled) this.enableDrawing();
  }

  enableDrawing() {
    if (this.drawing) return;
    this.drawing = true;
    const canvas = this.canvas;
    canvas.classList.add("drawing");
    let current = null;
    const at = (e) => {
      const box = canvas.getBoundingClientRect();
      const x = Math.min(Math.max((e.clientX - box.left) / box.width, 0), 1);
      const y = Math.min(Math.max((e.clientY - box.top) / box.height, 0), 1);
      return [Number(x.toFixed(4)), Number(y.toFixed(4))];
    };
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      current = [at(e)];
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!current || current.length >= 2000) return;
      current.push(at(e));
      this.redraw(current);
    });
    canvas.addEventListener("pointerup", () => {
      if (current) this.onStroke(current);
      current = null;
    });
  }

  add(stroke) {
    this.strokes.push(stroke);
    this.redraw();
  }

  clear() {
    this.strokes = [];
    this.redraw();
  }

  redraw(pending = null) {
    const canvas = this.canvas;
    canvas.width = canvas.clientWidth;
    canvas.height = canvas.clientHeight;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    const all = pending ? [...this.strokes, { points: pending, color: this.color, width: 3 }] : this.strokes;
    for (const stroke of all) {
      g.strokeStyle = stroke.color;
      g.lineWidth = stroke.width;
      g.lineCap = "round";
      g.beginPath();
      stroke.points.forEach(([x, y], i) => {
        const px = x * canvas.width;
        const py = y * canvas.height;
        if (i === 0) g.moveTo(px, py);
        else g.lineTo(px, py);
      });
      g.stroke();
    }
  }
}

/** Wire the chat, questions and telestration of a page to the session websocket. */
export function wireSession({ telestration = null, questionActions = undefined, extra = {} } = {}) {
  const chat = document.querySelector("[data-chat]");
  const questions = document.querySelector("[data-questions]");
  const socket = connect({
    hello(event) {
      chat?.replaceChildren();
      questions?.replaceChildren();
      for (const line of event.chat) if (chat) showChat(chat, line);
      for (const q of event.questions) if (questions) showQuestion(questions, q, questionActions);
      telestration?.clear();
      for (const stroke of event.strokes) telestration?.add(stroke);
      document.querySelector("[data-chat-form]")?.toggleAttribute("hidden", !event.may_chat);
      if (event.may_draw) telestration?.enableDrawing();
      extra.hello?.(event);
    },
    chat: (event) => chat && showChat(chat, event),
    question: (event) => questions && showQuestion(questions, event, questionActions),
    stroke: (event) => telestration?.add(event),
    clear: () => telestration?.clear(),
    error: (event) => status(format(_("Refused: %(reason)s"), { reason: event.detail })),
    program: (event) => extra.program?.(event),
    ended: () => status(_("The session has ended.")),
  });
  sendForm(document.querySelector("[data-chat-form]"), socket, "chat");
  sendForm(document.querySelector("[data-question-form]"), socket, "question");
  if (telestration) {
    telestration.onStroke = (points) => socket.send({ type: "stroke", points, color: telestration.color, width: 3 });
    document.querySelector("[data-clear]")?.addEventListener("click", () => socket.send({ type: "clear" }));
  }
  return socket;
}

/** What a role in a session is called, in the reader's language. */
export function roleName(role) {
  const names = {
    director: _("director"),
    moderator: _("moderator"),
    presenter: _("presenter"),
    participant: _("participant"),
    viewer: _("viewer"),
  };
  return names[role] ?? role;
}

const playing = (video) => !video.paused && !video.ended && video.readyState >= 2;

/** Play `video` from the script: unmuted if the browser allows it, else muted (the
 * picture matters more than the sound of a tile); never left black and paused. */
function start(video) {
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
  });
}

/**
 * Show as tiles only the feeds whose picture plays, without the browser's controls, each
 * with a button that puts it on the stage; `nothingLive` (an element) is shown while neither
 * the stage nor any tile plays. Called after each `Stage.render()`.
 */
export function showPlayingTiles(stage, nothingLive = null) {
  const update = () => {
    let any = playing(stage.stageVideo);
    for (const figure of stage.tiles?.querySelectorAll("figure") ?? []) {
      const video = figure.querySelector("video");
      figure.hidden = !video || !playing(video);
      any ||= !figure.hidden;
    }
    if (nothingLive) nothingLive.hidden = any;
    if (stage.tiles) stage.tiles.dataset.playing = String(stage.tiles.querySelectorAll("figure:not([hidden])").length);
  };
  if (!stage.watchingStage) {
    stage.watchingStage = true;
    for (const event of ["playing", "pause", "emptied", "ended"]) stage.stageVideo.addEventListener(event, update);
  }
  if (!stage.tiles) {
    update();
    return;
  }
  const ids = [...stage.feeds.keys()];
  const mineId = stage.mine?.publisherId ?? null;
  const onStage = stage.chosen ?? stage.program ?? ids[0] ?? mineId;
  const tiles = [];
  for (const [id, entry] of stage.feeds) {
    if (id === onStage) continue;
    const video = entry.video;
    video.controls = false;
    video.removeAttribute("controls");
    if (!entry.watched) {
      entry.watched = true;
      video.autoplay = false;
      video.addEventListener("loadedmetadata", () => start(video));
      for (const event of ["playing", "pause", "emptied", "ended"]) video.addEventListener(event, update);
      if (video.readyState >= 1) start(video);
    }
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    const pick = document.createElement("button");
    pick.type = "button";
    pick.textContent = format(_("Watch %(name)s"), { name: entry.display });
    pick.addEventListener("click", () => stage.choose(id));
    caption.append(pick);
    figure.append(video, caption);
    tiles.push(figure);
  }
  if (stage.chosen !== null) {
    const back = document.createElement("button");
    back.type = "button";
    back.textContent = _("Back to the program");
    back.dataset.program = "";
    back.addEventListener("click", () => stage.choose(null));
    tiles.unshift(back);
  }
  stage.tiles.replaceChildren(...tiles);
  // A feed that was on the stage comes back paused (taken out of the page, it stopped).
  for (const video of stage.tiles.querySelectorAll("video")) {
    if (video.paused && video.srcObject) start(video);
  }
  update();
}
