// Live link status for the supervision page and the surgeon's view, from the procedure's
// server-sent event stream: "status" samples and "timeline" entries.
import { _, format, locale } from "/static/i18n.js";

const root = document.querySelector(".ts-live");

function field(name) {
  return root.querySelector(`[data-field="${name}"]`);
}

// A time of day in the reader's zone (given by the page), on the 24-hour clock.
function clock(date) {
  const zone = root.dataset.zone || undefined;
  return date.toLocaleTimeString(locale === "fr" ? "fr-FR" : "en-GB", {
    timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
}

// Words of the timeline, in the reader's language.
const WORDS = {
  console: _("console"),
  robot: _("robot"),
  platform: _("platform"),
  transition: _("transition"),
  alarm: _("alarm"),
  refusal: _("refusal"),
};

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function showState(state) {
  const el = field("state");
  el.textContent = state;
  el.className = `ts-state ts-state-${state}`;
}

function percent(value) {
  return typeof value === "number" ? `${(value * 100).toFixed(2)} %` : "–";
}

// Each gateway's own view of the link (supervision page).
function showSides(sides) {
  for (const [side, view] of Object.entries(sides ?? {})) {
    for (const el of root.querySelectorAll(`[data-side="${side}"]`)) {
      const name = el.dataset.sideField;
      const value = view[name];
      if (name === "loss" || name === "reordering") el.textContent = percent(value);
      else if (name === "at") el.textContent = typeof value === "number" ? clock(new Date(value * 1000)) : "–";
      else el.textContent = fixed(value, name === "command_rate_hz" ? 0 : 1);
    }
  }
}

function showStatus(sample) {
  if (sample.state) showState(sample.state);
  const set = (name, text) => {
    const el = field(name);
    if (el) el.textContent = text;
  };
  set("latency_ms", fixed(sample.latency_ms, 1));
  set("jitter_ms", fixed(sample.jitter_ms, 1));
  set("rtt_ms", fixed(sample.rtt_ms, 1));
  set("loss", percent(sample.loss));
  set("reordering", percent(sample.reordering));
  set("command_rate_hz", fixed(sample.command_rate_hz, 0));
  showSides(sample.sides);
  if (Array.isArray(sample.robot_position_mm)) {
    set("robot_position_mm", sample.robot_position_mm.map((v) => v.toFixed(1)).join(", "));
  }
  const badge = field("latency_badge");
  if (badge && typeof sample.latency_ms === "number") {
    const warning = Number(root.dataset.latencyWarning);
    const halt = Number(root.dataset.latencyHalt);
    badge.textContent = format(_("latency %(ms)s ms"), { ms: sample.latency_ms.toFixed(0) });
    badge.className = "ts-latency " + (
      sample.latency_ms >= halt ? "ts-bad" : sample.latency_ms >= warning ? "ts-warn" : "ts-good"
    );
  }
}

function showEntry(entry) {
  const list = field("timeline");
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = clock(new Date(entry.at));
  time.dateTime = entry.at;
  item.append(time, ` ${WORDS[entry.source] ?? entry.source} ${WORDS[entry.kind] ?? entry.kind}`);
  if (entry.state) {
    const strong = document.createElement("strong");
    strong.textContent = entry.state;
    item.append(" → ", strong);
  }
  if (entry.detail) item.append(` ${entry.detail}`);
  if (entry.kind === "alarm" || entry.kind === "refusal") item.className = "ts-alarm";
  list.prepend(item);
  if (entry.kind === "transition" && entry.state) showState(entry.state);
}

if (root) {
  const source = new EventSource(`/api/v1/telesurgery/procedures/${root.dataset.procedure}/events`);
  const connection = field("connection");
  source.addEventListener("open", () => { connection.textContent = _("live"); });
  source.addEventListener("error", () => { connection.textContent = _("reconnecting…"); });
  source.addEventListener("status", (event) => showStatus(JSON.parse(event.data)));
  source.addEventListener("timeline", (event) => showEntry(JSON.parse(event.data)));
}
