// The meeting's room on its page: being connected is being present; the synchronised image
// view follows the presenter (only the view state travels, each viewer loads its own pixels
// from the archive); the presenter's changes are sent as they happen; attendance and the live
// quorum are read again whenever someone comes or goes.

const root = document.getElementById("meeting-room");
const viewer = document.getElementById("viewer") ? await import("/static/imaging/viewer.js") : null;

const SEND_EVERY_MS = 30; // at most one view message per interval; the last one always goes

const me = Number(root.dataset.me);
const $ = (selector) => root.querySelector(selector);
const errorLine = $("[data-room-error]");
const presenterName = $("[data-presenter-name]");
const studySelect = $("[data-room-study]");
const handOver = $("[data-hand-over]");
const mayRun = root.dataset.mayRun === "true";

let socket = null;
let presenter = null;
let version = 0;
let opened = "";
let submitting = false; // a form of the page is being sent: its answer is the new page
document.addEventListener("submit", () => {
  submitting = true;
});

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function showError(text) {
  if (!errorLine) return;
  errorLine.textContent = text;
  errorLine.hidden = !text;
  root.dataset.lastError = text;
}

function setPresenter(id, name) {
  presenter = id;
  root.dataset.presenter = id === null ? "" : String(id);
  root.dataset.presenting = String(id === me);
  if (presenterName && name) presenterName.textContent = name;
  if (studySelect) studySelect.disabled = id !== me;
  if (handOver) handOver.hidden = !(mayRun || id === me);
}

function reportOpened(study) {
  // Each participant's opening of a study is an audited view of the case.
  if (study && study !== opened) {
    opened = study;
    send({ type: "opened", study });
  }
}

async function follow(view, at) {
  if (!viewer || !view || at < version) return;
  version = at;
  root.dataset.version = String(at);
  if (studySelect) studySelect.value = view.study;
  await viewer.applyView(view);
  reportOpened(view.study);
}

// The presenter's changes, sent at most every SEND_EVERY_MS, the latest always.
let waiting = null;
let timer = 0;
let lastSent = 0;

function flush() {
  timer = 0;
  lastSent = performance.now();
  if (waiting) send({ type: "view", view: waiting, sent_at: Date.now() });
  waiting = null;
}

function sendView(view) {
  if (presenter !== me) return;
  waiting = view;
  if (!timer) timer = setTimeout(flush, Math.max(0, SEND_EVERY_MS - (performance.now() - lastSent)));
}

async function refreshAttendance() {
  // The page as it stands, for its attendance and quorum: the same templates, words and rules.
  const response = await fetch(location.pathname, { headers: { accept: "text/html" } });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["attendance-list", "live-quorum"]) {
    const fresh = page.getElementById(id);
    const here = document.getElementById(id);
    if (fresh && here) here.replaceWith(document.importNode(fresh, true));
  }
  root.dataset.attendanceRead = String(Number(root.dataset.attendanceRead || 0) + 1);
}

function receive(message) {
  if (message.type === "hello") {
    setPresenter(message.room.presenter, message.presenter_name);
    if (message.room.view) follow(message.room.view, message.room.version);
    else version = message.room.version;
    root.dataset.connected = "true";
  } else if (message.type === "presenter") {
    setPresenter(message.presenter, message.name);
    version = Math.max(version, message.version);
  } else if (message.type === "view") {
    if (message.by !== me) follow(message.view, message.version);
  } else if (message.type === "attendance") {
    refreshAttendance();
  } else if (message.type === "case") {
    if (!submitting) location.reload();
  } else if (message.type === "error") {
    showError(message.detail);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/boards/meetings/${root.dataset.meeting}/ws`);
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    root.dataset.connected = "false";
    // Refused (1008): stay out; otherwise come back, as the network allows.
    if (event.code !== 1008) setTimeout(connect, 2000);
  });
}

if (viewer) {
  viewer.onViewChange(sendView);
  studySelect?.addEventListener("change", async () => {
    if (presenter !== me || !studySelect.value) return;
    await viewer.applyView({ study: studySelect.value });
    reportOpened(studySelect.value);
    sendView(viewer.currentView());
  });
}
handOver?.addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  send({ type: "hand_over", to: Number(handOver.elements.to.value) });
});

connect();
