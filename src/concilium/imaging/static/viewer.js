// The study viewer: series from QIDO-RS, geometry and timing from WADO-RS metadata, frames
// rendered by the archive (WADO-RS "rendered", PS3.18 10.4.1.1.3) with the chosen window.
// Drawing, zoom, pan and measurement happen on one canvas, in image pixel coordinates.
//
// A page that embeds the viewer reads and sets what it shows through the exports at the end
// (currentView, applyView, onViewChange): the study, series, slice, window, zoom, pan and
// measured line, independent of the size of the screen.

import { _, format, ngettext } from "/static/i18n.js";

const root = document.getElementById("viewer");
let study = root.dataset.study;
let base = `/dicomweb/studies/${encodeURIComponent(study)}`;
const $ = (selector) => root.querySelector(selector);

const canvas = $("[data-canvas]");
const wrap = $("[data-canvas-wrap]");
const slider = $("[data-slider]");
const statusLine = $("[data-status]");
const presets = $("[data-presets]");
const cineGroup = $("[data-cine]");
const playButton = $("[data-play]");
const fpsInput = $("[data-fps]");
const overlays = {
  slice: $("[data-overlay-slice]"),
  window: $("[data-overlay-window]"),
  zoom: $("[data-overlay-zoom]"),
  measure: $("[data-overlay-measure]"),
};

const CACHE_LIMIT = 400;
const PREFETCH_AHEAD = 6;
const ZOOM_STEP = 1.25;
const MIN_ZOOM = 0.25;
const MAX_ZOOM = 16;

const state = {
  series: [],
  seriesUid: "",
  slices: [], // {instance, frame, meta}
  index: 0,
  window: null, // null: the object's own window; else {center, width}
  tool: "scroll",
  zoom: 1, // relative to "fit"
  panX: 0, // CSS pixels
  panY: 0,
  measure: null, // {x1, y1, x2, y2} in image pixels, on the series shown
  bitmap: null, // what is drawn now
  playing: false,
  fps: 10,
};

// Embedding (the end of the file): who hears the person's changes, and whether a change
// comes from applyView rather than the person.
const listeners = [];
let applying = false;
let lastNotified = "";

// ------------------------------------------------------------------------------------------
// DICOM JSON (PS3.18 F.2)

const TAG = {
  sopInstanceUid: "00080018",
  modality: "00080060",
  seriesDescription: "0008103E",
  seriesInstanceUid: "0020000E",
  seriesNumber: "00200011",
  instanceNumber: "00200013",
  seriesInstances: "00201209",
  numberOfFrames: "00280008",
  rows: "00280010",
  columns: "00280011",
  pixelSpacing: "00280030",
  windowCenter: "00281050",
  windowWidth: "00281051",
  cineRate: "00180040",
  frameTime: "00181063",
  recommendedFrameRate: "00082144",
  sharedGroups: "52009229",
  pixelMeasures: "00289110",
};

function value(item, tag, i = 0) {
  const values = item?.[tag]?.Value;
  return values && values.length > i ? values[i] : undefined;
}

function number(item, tag, i = 0) {
  const v = Number(value(item, tag, i));
  return Number.isFinite(v) ? v : undefined;
}

function pixelSpacing(item) {
  // Pixel Spacing (0028,0030) is row spacing \ column spacing, in mm; enhanced objects keep it
  // in the Pixel Measures functional group (PS3.3 C.7.6.16.2.1).
  let row = number(item, TAG.pixelSpacing, 0);
  let column = number(item, TAG.pixelSpacing, 1);
  if (row === undefined) {
    const measures = value(value(item, TAG.sharedGroups), TAG.pixelMeasures);
    row = number(measures, TAG.pixelSpacing, 0);
    column = number(measures, TAG.pixelSpacing, 1);
  }
  return row > 0 && column > 0 ? { row, column } : null;
}

function framesPerSecond(item) {
  const cine = number(item, TAG.cineRate);
  if (cine > 0) return cine;
  const frameTime = number(item, TAG.frameTime);
  if (frameTime > 0) return 1000 / frameTime;
  const recommended = number(item, TAG.recommendedFrameRate);
  return recommended > 0 ? recommended : null;
}

function instanceMeta(item) {
  const center = number(item, TAG.windowCenter);
  const width = number(item, TAG.windowWidth);
  return {
    uid: value(item, TAG.sopInstanceUid),
    number: number(item, TAG.instanceNumber) ?? 0,
    frames: Math.max(1, number(item, TAG.numberOfFrames) ?? 1),
    rows: number(item, TAG.rows) ?? 0,
    columns: number(item, TAG.columns) ?? 0,
    spacing: pixelSpacing(item),
    window: center !== undefined && width > 0 ? { center, width } : null,
    fps: framesPerSecond(item),
  };
}

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: "application/dicom+json" } });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return response.json();
}

// ------------------------------------------------------------------------------------------
// Frames: fetched rendered, decoded once, kept in a bounded cache

const cache = new Map();

function windowKey(window) {
  return window ? `${window.center},${window.width}` : "default";
}

function frameUrl(slice, window) {
  const series = encodeURIComponent(state.seriesUid);
  const instance = encodeURIComponent(slice.instance);
  const params = new URLSearchParams({ accept: "image/png" });
  if (window) params.set("window", `${window.center},${window.width}`);
  return `${base}/series/${series}/instances/${instance}/frames/${slice.frame}/rendered?${params}`;
}

function cacheKey(slice, window) {
  return `${state.seriesUid}/${slice.instance}/${slice.frame}/${windowKey(window)}`;
}

const loading = new Map();

function load(slice, window) {
  const key = cacheKey(slice, window);
  if (cache.has(key)) return Promise.resolve(cache.get(key));
  if (loading.has(key)) return loading.get(key);
  const promise = fetch(frameUrl(slice, window))
    .then((response) => {
      if (!response.ok) throw new Error(`frame: ${response.status} ${response.statusText}`);
      return response.blob();
    })
    .then((blob) => createImageBitmap(blob))
    .then((bitmap) => {
      cache.set(key, bitmap);
      if (cache.size > CACHE_LIMIT) {
        const oldest = cache.keys().next().value;
        cache.get(oldest)?.close?.();
        cache.delete(oldest);
      }
      return bitmap;
    })
    .finally(() => loading.delete(key));
  loading.set(key, promise);
  return promise;
}

function current() {
  return state.slices[state.index];
}

let wanted = "";

async function show() {
  const slice = current();
  if (!slice) return;
  const window = state.window;
  const key = cacheKey(slice, window);
  wanted = key;
  const cached = cache.get(key);
  if (cached) {
    state.bitmap = cached;
    draw();
    prefetch();
    return;
  }
  draw(); // the previous frame stays up, with the new slice number, until this one arrives
  try {
    const bitmap = await load(slice, window);
    if (wanted === key) {
      state.bitmap = bitmap;
      draw();
      prefetch();
    }
  } catch (error) {
    if (wanted === key) setStatus(format(_("Could not draw this image (%(error)s)."), { error: error.message }));
  }
}

let prefetching = 0;

function prefetch() {
  // Neighbouring slices (the whole loop for cine) with the current window, a few at a time.
  const count = state.slices.length;
  const ahead = state.playing ? count : PREFETCH_AHEAD;
  for (let step = 1; step <= ahead && prefetching < 3; step += 1) {
    for (const i of [state.index + step, state.index - step]) {
      const index = ((i % count) + count) % count;
      const slice = state.slices[index];
      const key = cacheKey(slice, state.window);
      if (cache.has(key) || loading.has(key) || prefetching >= 3) continue;
      prefetching += 1;
      load(slice, state.window)
        .catch(() => {})
        .finally(() => {
          prefetching -= 1;
          prefetch();
        });
    }
  }
}

// ------------------------------------------------------------------------------------------
// Geometry: image pixels <-> canvas CSS pixels

function imageSize() {
  const meta = current()?.meta;
  const width = state.bitmap?.width || meta?.columns || 1;
  const height = state.bitmap?.height || meta?.rows || 1;
  return { width, height };
}

function transform() {
  const { width, height } = imageSize();
  const cw = canvas.clientWidth;
  const ch = canvas.clientHeight;
  const fit = Math.min(cw / width, ch / height);
  const scale = fit * state.zoom;
  return {
    scale,
    x: (cw - width * scale) / 2 + state.panX,
    y: (ch - height * scale) / 2 + state.panY,
  };
}

function toImage(point) {
  const t = transform();
  return { x: (point.x - t.x) / t.scale, y: (point.y - t.y) / t.scale };
}

function toCanvas(point) {
  const t = transform();
  return { x: point.x * t.scale + t.x, y: point.y * t.scale + t.y };
}

function localPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return { x: event.clientX - rect.left, y: event.clientY - rect.top };
}

// ------------------------------------------------------------------------------------------
// Drawing

function resize() {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  draw();
}

function measureLength(measure) {
  const spacing = current()?.meta.spacing;
  const dx = measure.x2 - measure.x1;
  const dy = measure.y2 - measure.y1;
  if (spacing) {
    // Columns run along x (column spacing), rows along y (row spacing).
    return { value: Math.hypot(dx * spacing.column, dy * spacing.row), unit: "mm" };
  }
  return { value: Math.hypot(dx, dy), unit: "px" };
}

function draw() {
  const context = canvas.getContext("2d");
  const ratio = canvas.width / Math.max(1, canvas.clientWidth);
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  const t = transform();
  if (state.bitmap) {
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.imageSmoothingEnabled = t.scale < 1;
    context.drawImage(state.bitmap, t.x, t.y, state.bitmap.width * t.scale, state.bitmap.height * t.scale);
  }
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  if (state.measure) {
    const a = toCanvas({ x: state.measure.x1, y: state.measure.y1 });
    const b = toCanvas({ x: state.measure.x2, y: state.measure.y2 });
    const length = measureLength(state.measure);
    const label = `${length.value.toFixed(1)} ${length.unit}`;
    context.strokeStyle = "#ffd400";
    context.fillStyle = "#ffd400";
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(a.x, a.y);
    context.lineTo(b.x, b.y);
    context.stroke();
    for (const p of [a, b]) {
      context.beginPath();
      context.arc(p.x, p.y, 4, 0, 2 * Math.PI);
      context.fill();
    }
    context.font = "bold 15px system-ui, sans-serif";
    context.strokeStyle = "#000";
    context.lineWidth = 3;
    const at = { x: (a.x + b.x) / 2 + 8, y: (a.y + b.y) / 2 - 8 };
    context.strokeText(label, at.x, at.y);
    context.fillText(label, at.x, at.y);
    overlays.measure.textContent = format(_("Distance %(length)s"), { length: label });
    root.dataset.measure = `${length.value.toFixed(2)} ${length.unit}`;
  } else {
    overlays.measure.textContent = "";
    delete root.dataset.measure;
  }
  updateReadouts(t);
}

function updateReadouts(t) {
  const count = state.slices.length;
  const slice = current();
  const multiFrame = slice && slice.meta.frames > 1;
  overlays.slice.textContent = count
    ? format(multiFrame ? _("Frame %(number)s / %(count)s") : _("Image %(number)s / %(count)s"), {
        number: state.index + 1,
        count,
      })
    : "";
  const window = state.window || slice?.meta.window;
  overlays.window.textContent = window
    ? `W ${Math.round(window.width)} / L ${Math.round(window.center)}`
    : _("W/L auto");
  overlays.zoom.textContent = format(_("Zoom %(percent)s%"), { percent: Math.round(t.scale * 100) });
  slider.max = String(Math.max(1, count));
  slider.value = String(state.index + 1);
  root.dataset.index = String(state.index);
  root.dataset.count = String(count);
  root.dataset.scale = t.scale.toFixed(4);
  root.dataset.window = windowKey(state.window);
  notifyChange();
}

function setStatus(text) {
  statusLine.textContent = text;
}

// ------------------------------------------------------------------------------------------
// Series

async function loadSeriesList() {
  const found = await getJson(`${base}/series`);
  state.series = found
    .map((item) => ({
      uid: value(item, TAG.seriesInstanceUid),
      number: number(item, TAG.seriesNumber) ?? 0,
      modality: value(item, TAG.modality) ?? "",
      description: value(item, TAG.seriesDescription) ?? "",
      count: number(item, TAG.seriesInstances) ?? 0,
    }))
    .sort((a, b) => a.number - b.number);
  const list = $("[data-series-list]");
  list.replaceChildren();
  for (const series of state.series) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.series = series.uid;
    button.setAttribute("aria-pressed", "false");
    const img = document.createElement("img");
    img.alt = "";
    img.width = 96;
    img.height = 96;
    img.src = `${base}/series/${encodeURIComponent(series.uid)}/thumbnail?viewport=96,96`;
    const caption = document.createElement("span");
    caption.textContent = `${series.modality} ${series.description || format(_("series %(number)s"), { number: series.number })}`.trim();
    const count = document.createElement("small");
    count.textContent = format(ngettext("%(count)s image", "%(count)s images", series.count), {
      count: series.count,
    });
    button.append(img, caption, count);
    button.addEventListener("click", () => openSeries(series.uid));
    item.append(button);
    list.append(item);
  }
  return state.series;
}

async function openSeries(uid) {
  stop();
  setStatus(_("Loading series…"));
  for (const button of root.querySelectorAll("[data-series]")) {
    button.setAttribute("aria-pressed", String(button.dataset.series === uid));
  }
  const metadata = await getJson(`${base}/series/${encodeURIComponent(uid)}/metadata`);
  const instances = metadata.map(instanceMeta).sort((a, b) => a.number - b.number);
  state.seriesUid = uid;
  state.slices = instances.flatMap((meta) =>
    Array.from({ length: meta.frames }, (_, i) => ({ instance: meta.uid, frame: i + 1, meta })),
  );
  state.index = Math.floor(state.slices.length / 2);
  state.bitmap = null;
  state.measure = null;
  state.zoom = 1;
  state.panX = 0;
  state.panY = 0;
  const cine = instances.find((meta) => meta.frames > 1);
  cineGroup.hidden = !cine;
  if (cine) {
    state.index = 0;
    state.fps = Math.round((cine.fps ?? 10) * 10) / 10;
    fpsInput.value = String(state.fps);
  }
  root.dataset.frameRate = cine ? String(state.fps) : "";
  root.dataset.series = uid;
  const series = state.series.find((s) => s.uid === uid);
  const spacing = instances[0]?.spacing;
  const name = [series?.modality, series?.description].filter(Boolean).join(" ");
  const size = cine
    ? format(ngettext("%(count)s frame", "%(count)s frames", state.slices.length), {
        count: state.slices.length,
      })
    : format(ngettext("%(count)s image", "%(count)s images", state.slices.length), {
        count: state.slices.length,
      });
  const geometry = spacing
    ? format(_("pixel %(column)s × %(row)s mm"), {
        column: spacing.column.toFixed(3),
        row: spacing.row.toFixed(3),
      })
    : _("no pixel spacing: lengths in px");
  setStatus(`${name ? `${name}: ` : ""}${size}, ${geometry}`);
  await show();
  if (!applying) canvas.focus({ preventScroll: true });
}

// ------------------------------------------------------------------------------------------
// Interaction

function goTo(index) {
  const count = state.slices.length;
  if (!count) return;
  const next = Math.min(count - 1, Math.max(0, index));
  if (next === state.index) return;
  state.index = next;
  show();
}

function step(delta) {
  goTo(state.index + delta);
}

function zoomBy(factor, around) {
  const before = around ? toImage(around) : null;
  state.zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, state.zoom * factor));
  if (before) {
    // Keep the image point under the fingers (or the pointer) where it was.
    const after = toCanvas(before);
    state.panX += around.x - after.x;
    state.panY += around.y - after.y;
  }
  draw();
}

function setWindow(window) {
  state.window = window;
  if (!window) presets.value = "default";
  show();
}

function setTool(tool) {
  state.tool = tool;
  root.dataset.tool = tool;
  for (const button of root.querySelectorAll("[data-tool]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
  }
}

const pointers = new Map();
let gesture = null;

function pinchState() {
  const [a, b] = [...pointers.values()];
  return {
    distance: Math.hypot(a.x - b.x, a.y - b.y) || 1,
    middle: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 },
  };
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  const point = localPoint(event);
  pointers.set(event.pointerId, point);
  if (pointers.size === 2) {
    gesture = { kind: "pinch", ...pinchState() };
    return;
  }
  if (pointers.size > 2) return;
  const tool = event.button === 2 ? "window" : event.button === 1 ? "pan" : state.tool;
  gesture = { kind: tool, start: point, last: point, index: state.index };
  if (tool === "window") {
    const from = state.window || current()?.meta.window || { center: 128, width: 256 };
    gesture.window = { ...from };
  }
  if (tool === "measure") {
    const p = toImage(point);
    state.measure = { x1: p.x, y1: p.y, x2: p.x, y2: p.y };
    draw();
  }
});

canvas.addEventListener("pointermove", (event) => {
  if (!pointers.has(event.pointerId) || !gesture) return;
  const point = localPoint(event);
  pointers.set(event.pointerId, point);
  if (gesture.kind === "pinch" && pointers.size === 2) {
    const now = pinchState();
    state.panX += now.middle.x - gesture.middle.x;
    state.panY += now.middle.y - gesture.middle.y;
    zoomBy(now.distance / gesture.distance, now.middle);
    Object.assign(gesture, now);
    return;
  }
  const dx = point.x - gesture.start.x;
  const dy = point.y - gesture.start.y;
  if (gesture.kind === "scroll") {
    // One slice per 8 CSS pixels of vertical drag, from where the drag began.
    goTo(gesture.index + Math.round(dy / 8));
  } else if (gesture.kind === "pan") {
    state.panX += point.x - gesture.last.x;
    state.panY += point.y - gesture.last.y;
    draw();
  } else if (gesture.kind === "window") {
    // Right: wider; down: higher level. Sensitivity follows the starting width.
    const unit = Math.max(1, gesture.window.width / 200);
    setWindow({
      center: Math.round(gesture.window.center + dy * unit),
      width: Math.max(1, Math.round(gesture.window.width + dx * unit)),
    });
    presets.value = "custom";
  } else if (gesture.kind === "measure" && state.measure) {
    const p = toImage(point);
    state.measure.x2 = p.x;
    state.measure.y2 = p.y;
    draw();
  }
  gesture.last = point;
});

function endPointer(event) {
  pointers.delete(event.pointerId);
  if (pointers.size === 0) {
    gesture = null;
  } else if (gesture?.kind === "pinch") {
    gesture = null; // lifting one finger of a pinch starts nothing new
  }
}

canvas.addEventListener("pointerup", endPointer);
canvas.addEventListener("pointercancel", endPointer);
canvas.addEventListener("contextmenu", (event) => event.preventDefault());

canvas.addEventListener(
  "wheel",
  (event) => {
    event.preventDefault();
    if (event.ctrlKey || event.metaKey) {
      zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, localPoint(event));
    } else {
      step(event.deltaY > 0 ? 1 : -1);
    }
  },
  { passive: false },
);

canvas.addEventListener("keydown", (event) => {
  const keys = {
    ArrowDown: () => step(1),
    ArrowRight: () => step(1),
    ArrowUp: () => step(-1),
    ArrowLeft: () => step(-1),
    PageDown: () => step(10),
    PageUp: () => step(-10),
    Home: () => goTo(0),
    End: () => goTo(state.slices.length - 1),
    "+": () => zoomBy(ZOOM_STEP),
    "=": () => zoomBy(ZOOM_STEP),
    "-": () => zoomBy(1 / ZOOM_STEP),
    " ": () => (cineGroup.hidden ? null : toggle()),
  };
  const action = keys[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
});

for (const button of root.querySelectorAll("[data-tool]")) {
  button.addEventListener("click", () => setTool(button.dataset.tool));
}
for (const button of root.querySelectorAll("[data-step]")) {
  button.addEventListener("click", () => step(Number(button.dataset.step)));
}
$("[data-zoom=in]").addEventListener("click", () => zoomBy(ZOOM_STEP));
$("[data-zoom=out]").addEventListener("click", () => zoomBy(1 / ZOOM_STEP));
$("[data-zoom=fit]").addEventListener("click", () => {
  state.zoom = 1;
  state.panX = 0;
  state.panY = 0;
  draw();
});
slider.addEventListener("input", () => goTo(Number(slider.value) - 1));
presets.addEventListener("change", () => {
  if (presets.value === "default") {
    setWindow(null);
  } else if (presets.value) {
    const [center, width] = presets.value.split(",").map(Number);
    setWindow({ center, width });
  }
});

// ------------------------------------------------------------------------------------------
// Cine: frames advance at the object's rate (Cine Rate, else 1000 / Frame Time)

let timer = 0;
let lastTick = 0;

function tick(now) {
  if (!state.playing) return;
  const interval = 1000 / state.fps;
  if (now - lastTick >= interval) {
    const next = (state.index + 1) % state.slices.length;
    const slice = state.slices[next];
    // Wait for a frame rather than skip it; the loop keeps its order.
    if (cache.has(cacheKey(slice, state.window))) {
      lastTick = now - ((now - lastTick) % interval);
      state.index = next;
      show();
    } else {
      load(slice, state.window).catch(() => {});
      prefetch();
    }
  }
  timer = requestAnimationFrame(tick);
}

function play() {
  if (state.slices.length < 2) return;
  state.playing = true;
  root.dataset.playing = "true";
  playButton.textContent = _("Pause");
  playButton.setAttribute("aria-pressed", "true");
  lastTick = performance.now();
  prefetch();
  timer = requestAnimationFrame(tick);
}

function stop() {
  state.playing = false;
  root.dataset.playing = "false";
  playButton.textContent = _("Play");
  playButton.setAttribute("aria-pressed", "false");
  cancelAnimationFrame(timer);
}

function toggle() {
  if (state.playing) stop();
  else play();
}

playButton.addEventListener("click", toggle);
fpsInput.addEventListener("change", () => {
  const fps = Number(fpsInput.value);
  if (fps > 0 && fps <= 120) {
    state.fps = fps;
    root.dataset.frameRate = String(fps);
  } else {
    fpsInput.value = String(state.fps);
  }
});

// ------------------------------------------------------------------------------------------

new ResizeObserver(resize).observe(wrap);
setTool("scroll");
stop();

async function openStudy(uid, seriesUid = "") {
  stop();
  study = uid;
  base = `/dicomweb/studies/${encodeURIComponent(uid)}`;
  root.dataset.study = uid;
  for (const bitmap of cache.values()) bitmap.close?.();
  cache.clear();
  Object.assign(state, { series: [], seriesUid: "", slices: [], index: 0, bitmap: null, measure: null });
  const series = await loadSeriesList();
  if (!series.length) {
    setStatus(_("This study has no images to show."));
    return;
  }
  const chosen = series.find((s) => s.uid === seriesUid) ?? series[0];
  await openSeries(chosen.uid);
}

if (study) {
  openStudy(study).catch((error) =>
    setStatus(format(_("Could not load the study (%(error)s)."), { error: error.message })),
  );
}

// ------------------------------------------------------------------------------------------
// Embedding: read and set the view, hear its changes


/** What the viewer shows now; pan is a fraction of the canvas, zoom relative to "fit". */
export function currentView() {
  const width = Math.max(1, canvas.clientWidth);
  const height = Math.max(1, canvas.clientHeight);
  return {
    study,
    series: state.seriesUid,
    index: state.index,
    window: state.window ? { center: state.window.center, width: state.window.width } : null,
    zoom: state.zoom,
    pan: { x: state.panX / width, y: state.panY / height },
    measure: state.measure ? { ...state.measure } : null,
  };
}

/** Call listener(view) after each change the person makes (not those applyView makes). */
export function onViewChange(listener) {
  listeners.push(listener);
}

function notifyChange() {
  if (applying || !listeners.length || !state.seriesUid) return;
  const view = currentView();
  const text = JSON.stringify(view);
  if (text === lastNotified) return;
  lastNotified = text;
  for (const listener of listeners) listener(view);
}

function clamp(number, low, high, otherwise) {
  return Number.isFinite(number) ? Math.min(high, Math.max(low, number)) : otherwise;
}

async function applyNow(view) {
  applying = true;
  try {
    if (view.study && view.study !== study) {
      await openStudy(view.study, view.series);
    } else if (view.series && view.series !== state.seriesUid) {
      await openSeries(view.series);
    }
    const count = state.slices.length;
    state.index = clamp(Math.round(view.index), 0, Math.max(0, count - 1), state.index);
    const window = view.window;
    state.window = window ? { center: Number(window.center), width: Number(window.width) } : null;
    const preset = window ? `${state.window.center},${state.window.width}` : "default";
    presets.value = [...presets.options].some((o) => o.value === preset) ? preset : "custom";
    state.zoom = clamp(view.zoom, MIN_ZOOM, MAX_ZOOM, 1);
    state.panX = clamp(view.pan?.x, -100, 100, 0) * canvas.clientWidth;
    state.panY = clamp(view.pan?.y, -100, 100, 0) * canvas.clientHeight;
    state.measure = view.measure ? { ...view.measure } : null;
    await show();
  } finally {
    applying = false;
    lastNotified = JSON.stringify(currentView());
  }
}

let pendingView = null;
let applyingNow = null;

/** Show ``view`` (opening its study and series when they differ); views that arrive while one
 * is being applied are coalesced: the latest wins. */
export function applyView(view) {
  pendingView = view;
  if (!applyingNow) {
    applyingNow = (async () => {
      try {
        while (pendingView) {
          const next = pendingView;
          pendingView = null;
          await applyNow(next);
        }
      } finally {
        applyingNow = null;
      }
    })();
  }
  return applyingNow;
}
