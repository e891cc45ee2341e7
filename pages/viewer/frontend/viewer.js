// VTT Studio's reading-room viewer: a Streamlit component (protocol version 1) in plain
// JavaScript, served from the app itself; nothing is fetched from anywhere else.
//
// It receives a case's viewports as raw 16-bit samples of the canonical values (one Uint8Array
// per viewport: its slices one after the other, side x side samples each, little-endian; see
// study/viewer_payload.py) and does window/level, zoom, pan and slice scrolling here, on every
// viewport of the case at once, without a round trip to the server. Painting: one lookup table
// of 65,536 packed RGBA gray levels per window (rebuilt only when the window changes), one
// table look-up per pixel into an ImageData when the window or the slice changes, then a scaled
// drawImage per viewport; for interactions all of it in one requestAnimationFrame callback per
// displayed frame, however many input events arrive in between (a new case is painted as it
// arrives). Every slice of a case arrives once, in one render message, and stays decoded here
// for as long as the case is shown.
//
// Lesion marks (args.marks, for a case that asks for them): a click (a press without a drag)
// on an image places a mark with the chosen rating, a drag on a mark moves it, a digit rates the
// selected mark, Delete removes it. Marks are kept in fractions of the displayed square (u
// across, v down) and the viewport's index and slice; every change is sent to the page as the
// component's value ({case, marks}), which maps them to the image's own pixels.
//
// Timed exposure (args.exposure = {ms, shown}, study.exposure): the case's images appear in
// one animation frame and a mask replaces them in the first frame at least `ms` (less half a
// frame) after it; nothing can be adjusted meanwhile, Enter waits for the mask, and the
// duration shown (from frame to frame, rAF timestamps) goes to the page as the component's
// value ({case, shown_ms}). A case shown already (`shown`) arrives without its samples and
// shows the mask only.
//
// The same script gives the reading page its keyboard: answer keys on the choices, Enter for
// the page's main button, B for "Back" (args.keys and args.actions), read on the page itself
// (the iframe has the page's origin), and only while this component is on the page.
"use strict";

(() => {
  const SAMPLE_MAX = 65535;
  const ZOOM_RANGE = [0.5, 16];
  const WIDTH_RANGE = [0.002, 2];
  const CENTER_RANGE = [-0.5, 1.5];
  // Wheel: one slice per notch of a mouse wheel (|deltaY| of 40 px or more), touchpads
  // accumulate their small deltas to the same 40 px; ctrl/meta + wheel (and a touchpad pinch,
  // which browsers report as ctrl + wheel) zooms by exp(-deltaY * WHEEL_ZOOM).
  const WHEEL_STEP = 40;
  const WHEEL_ZOOM = 0.002;
  // Window presets (center, width) in canonical units. T2W and DWI are scaled per slice by
  // percentiles (0.5 to 99.5); ADC is scaled from the fixed 0..3000 x 10^-6 mm^2/s, so its
  // preset shows 0..2000, the range where prostate lesions and gland differ.
  const PRESETS = [
    { name: "T2W", center: 0.45, width: 0.8 },
    { name: "ADC", center: 1 / 3, width: 2 / 3 },
    { name: "DWI", center: 0.4, width: 0.7 },
    { name: "Full range", center: 0.5, width: 1 },
  ];
  const DEFAULT_WINDOW = { center: 0.5, width: 1, invert: false };
  const STORAGE_KEY = "vtt-viewer-window";
  const MIN_SIDE = 160;
  // Fitting the images to the window's height: the room kept below them, and the most of the
  // viewer's distance from the page's top counted (further down, the page scrolls anyway).
  const PAGE_BOTTOM = 16;
  const PAGE_TOP_LIMIT = 400;

  const root = document.getElementById("viewer");
  const viewportsBox = document.getElementById("viewports");
  const readout = document.getElementById("readout");
  const invertButton = document.getElementById("invert");
  const helpLine = document.getElementById("help");
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  // The linked view of every viewport: window/level and invert carry over to the next case
  // (sessionStorage, the reader's preference); zoom, pan and slice start afresh each case.
  const view = { ...DEFAULT_WINDOW, ...storedWindow(), zoom: 1, panX: 0, panY: 0, slice: 0 };
  let viewports = [];
  let caseKey = null;
  let maxSlices = 1;
  let side = 0;
  const lut = new Uint32Array(SAMPLE_MAX + 1);
  let lutWindow = "";
  let toolbarShows = "";
  let helpShown = "";
  let frameRequested = false;
  let lastHeight = -1;
  let mode = "viewer";
  let answerKeys = [];
  let actions = {};
  // Counters a test or a benchmark reads (window.vttViewer); painting does not depend on them.
  const stats = { paints: 0, cases: 0 };
  // Lesion marks of this case: null when the case asks for none.
  let marking = null;
  // Timed exposure of this case: null when untimed; phase "waiting", "showing" or "masked".
  let timing = null;
  // The mask's gray levels per block of MASK_BLOCK x MASK_BLOCK samples: noise that owes
  // nothing to the image.
  const MASK_BLOCK = 4;
  // A timed image waits for this many frames in a row shorter than STEADY_FRAME_MS (at most
  // SETTLE_LIMIT_MS).
  const STEADY_FRAMES = 3;
  const STEADY_FRAME_MS = 25;
  const SETTLE_LIMIT_MS = 2000;
  // A press that moves less than this (CSS px) and ends within CLICK_MS is a click.
  const CLICK_PX = 4;
  const CLICK_MS = 600;
  const MARK_RADIUS = 9;

  function send(type, data) {
    window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
  }

  function clamp(value, [low, high]) {
    return Math.min(high, Math.max(low, value));
  }

  function storedWindow() {
    try {
      const stored = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "{}");
      const window_ = {};
      if (Number.isFinite(stored.center)) window_.center = clamp(stored.center, CENTER_RANGE);
      if (Number.isFinite(stored.width)) window_.width = clamp(stored.width, WIDTH_RANGE);
      if (typeof stored.invert === "boolean") window_.invert = stored.invert;
      return window_;
    } catch {
      return {};
    }
  }

  function storeWindow() {
    try {
      const { center, width, invert } = view;
      window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ center, width, invert }));
    } catch {
      // Storage refused (private mode): the window simply does not carry over.
    }
  }

  // --- data -----------------------------------------------------------------------------------

  function samplesOf(bytes, count) {
    if (!(bytes instanceof Uint8Array) || bytes.byteLength !== count * 2) {
      throw new Error(`expected ${count * 2} bytes of samples, got ${bytes && bytes.byteLength}`);
    }
    if (little && bytes.byteOffset % 2 === 0) {
      return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    }
    const samples = new Uint16Array(count);
    for (let i = 0; i < count; i++) samples[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    return samples;
  }

  function makeViewport(label, slices, samples) {
    const box = document.createElement("div");
    box.className = "viewport";
    const canvas = document.createElement("canvas");
    const caption = document.createElement("div");
    caption.className = "overlay label";
    caption.textContent = label;
    const sliceText = document.createElement("div");
    sliceText.className = "overlay slice";
    box.append(canvas, caption, sliceText);
    const buffer = document.createElement("canvas");
    buffer.width = buffer.height = side;
    const bufferContext = buffer.getContext("2d");
    const image = bufferContext.createImageData(side, side);
    attachPointer(canvas);
    return {
      box,
      canvas,
      context: canvas.getContext("2d", { alpha: false }),
      sliceText,
      slices,
      samples,
      buffer,
      bufferContext,
      image,
      pixels: new Uint32Array(image.data.buffer),
      drawn: "",
      sliceShown: "",
    };
  }

  function loadCase(args) {
    side = args.side;
    const labels = args.labels;
    const counts = args.slices;
    viewportsBox.replaceChildren();
    viewports = labels.map((label, i) => {
      const samples = samplesOf(args[`pixels_${i}`], counts[i] * side * side);
      const viewport = makeViewport(label, counts[i], samples);
      viewport.index = i;
      viewportsBox.append(viewport.box);
      return viewport;
    });
    maxSlices = Math.max(...counts);
    caseKey = args.case;
    Object.assign(view, { zoom: 1, panX: 0, panY: 0, slice: Math.floor((maxSlices - 1) / 2) });
    stats.cases += 1;
  }

  // --- layout ---------------------------------------------------------------------------------

  function layout() {
    const count = Math.max(1, viewports.length);
    const width = document.documentElement.clientWidth;
    const borders = 2 * count + 8 * (count - 1);
    // As large as the page allows: the width of the column, and the height of the window below
    // the viewer's top, less the toolbar and the help line.
    let height = window.innerHeight;
    try {
      const top = pageTop(window.frameElement);
      const chrome = root.offsetHeight - viewportsBox.offsetHeight;
      height = window.parent.innerHeight - Math.min(top, PAGE_TOP_LIMIT) - chrome - PAGE_BOTTOM;
    } catch {
      // Not inside the app's page: the iframe's own height.
    }
    const cssSide = Math.max(MIN_SIDE, Math.floor(Math.min((width - borders) / count, height)));
    const ratio = window.devicePixelRatio || 1;
    const pixels = Math.round(cssSide * ratio);
    for (const viewport of viewports) {
      // Only a change of size touches the canvas (setting its size clears it).
      if (viewport.canvas.width === pixels && viewport.canvas.style.width === `${cssSide}px`) {
        continue;
      }
      viewport.canvas.style.width = viewport.canvas.style.height = `${cssSide}px`;
      viewport.canvas.width = viewport.canvas.height = pixels;
    }
    reportHeight();
  }

  function relayout() {
    layout();
    schedule();
  }

  // The iframe's distance from the top of the page, however far its scrolling boxes have
  // scrolled.
  function pageTop(frame) {
    let top = frame.getBoundingClientRect().top + window.parent.scrollY;
    for (let node = frame.parentElement; node !== null; node = node.parentElement) {
      top += node.scrollTop;
    }
    return top;
  }

  function reportHeight() {
    const height = mode === "viewer" ? Math.ceil(document.body.scrollHeight) : 0;
    if (height !== lastHeight) {
      lastHeight = height;
      send("streamlit:setFrameHeight", { height });
    }
  }

  // --- painting -------------------------------------------------------------------------------

  function buildLut() {
    const key = `${view.center}:${view.width}:${view.invert}`;
    if (key === lutWindow) return;
    // Gray level = round((x - (center - width / 2)) / width * 255), clipped, x = sample / 65535:
    // the window rule of study/imaging/render.py, on the samples.
    const low = view.center - view.width / 2;
    const scale = 255 / (view.width * SAMPLE_MAX);
    const offset = (-low / view.width) * 255 + 0.5;
    for (let sample = 0; sample <= SAMPLE_MAX; sample++) {
      let level = Math.floor(sample * scale + offset);
      level = level < 0 ? 0 : level > 255 ? 255 : level;
      if (view.invert) level = 255 - level;
      lut[sample] = 0xff000000 | (level << 16) | (level << 8) | level;
    }
    lutWindow = key;
  }

  function sliceOf(viewport) {
    if (maxSlices <= 1 || viewport.slices <= 1) return 0;
    return Math.round((view.slice * (viewport.slices - 1)) / (maxSlices - 1));
  }

  function paintMask(viewport) {
    const pixels = viewport.pixels;
    const blocks = Math.ceil(side / MASK_BLOCK);
    const levels = new Uint8Array(blocks * blocks);
    window.crypto.getRandomValues(levels);
    for (let row = 0; row < side; row++) {
      for (let col = 0; col < side; col++) {
        const level = levels[Math.floor(row / MASK_BLOCK) * blocks + Math.floor(col / MASK_BLOCK)];
        pixels[row * side + col] = 0xff000000 | (level << 16) | (level << 8) | level;
      }
    }
    viewport.bufferContext.putImageData(viewport.image, 0, 0);
  }

  function paintViewport(viewport) {
    const slice = sliceOf(viewport);
    const phase = timing === null ? "" : timing.phase;
    const key = `${lutWindow}|${slice}|${phase}`;
    if (phase === "waiting") {
      viewport.context.fillStyle = "#000";
      viewport.context.fillRect(0, 0, viewport.canvas.width, viewport.canvas.height);
      return;
    }
    if (phase === "masked" && viewport.drawn !== key) {
      paintMask(viewport);
      viewport.drawn = key;
    } else if (viewport.drawn !== key) {
      const count = side * side;
      const source = viewport.samples.subarray(slice * count, (slice + 1) * count);
      const pixels = viewport.pixels;
      for (let i = 0; i < count; i++) pixels[i] = lut[source[i]];
      viewport.bufferContext.putImageData(viewport.image, 0, 0);
      viewport.drawn = key;
    }
    const context = viewport.context;
    const canvasSide = viewport.canvas.width;
    const shown = canvasSide * view.zoom;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvasSide, canvasSide);
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = "low";
    context.drawImage(
      viewport.buffer,
      canvasSide / 2 + view.panX * canvasSide - shown / 2,
      canvasSide / 2 + view.panY * canvasSide - shown / 2,
      shown,
      shown,
    );
    if (marking !== null) paintMarks(viewport, slice, canvasSide, shown);
    const sliceText = viewport.slices > 1 ? `slice ${slice + 1} / ${viewport.slices}` : "";
    if (viewport.sliceShown !== sliceText) {
      viewport.sliceText.textContent = sliceText;
      viewport.sliceShown = sliceText;
    }
  }

  // Where the displayed square's point (u, v) is on a viewport's canvas (canvas pixels).
  function canvasPoint(canvasSide, shown, u, v) {
    return [
      canvasSide / 2 + view.panX * canvasSide - shown / 2 + u * shown,
      canvasSide / 2 + view.panY * canvasSide - shown / 2 + v * shown,
    ];
  }

  function paintMarks(viewport, slice, canvasSide, shown) {
    const context = viewport.context;
    const ratio = window.devicePixelRatio || 1;
    const radius = MARK_RADIUS * ratio;
    context.lineWidth = 2 * ratio;
    context.font = `bold ${Math.round(12 * ratio)}px sans-serif`;
    context.textAlign = "center";
    context.textBaseline = "middle";
    marking.marks.forEach((mark, i) => {
      if (mark.viewport !== viewport.index || mark.slice !== slice) return;
      const [x, y] = canvasPoint(canvasSide, shown, mark.u, mark.v);
      const colour = i === marking.selected ? "#33d6ff" : "#ffd400";
      context.strokeStyle = colour;
      context.beginPath();
      context.arc(x, y, radius, 0, 2 * Math.PI);
      context.stroke();
      context.fillStyle = colour;
      context.fillText(String(mark.rating), x + radius + 6 * ratio, y - radius);
    });
  }

  // The displayed square's (u, v) under a pointer, or null outside the image's square.
  function squarePoint(canvas, clientX, clientY) {
    const box = canvas.getBoundingClientRect();
    const canvasSide = canvas.width;
    const shown = canvasSide * view.zoom;
    const x = ((clientX - box.left) / box.width) * canvasSide;
    const y = ((clientY - box.top) / box.height) * canvasSide;
    const u = (x - (canvasSide / 2 + view.panX * canvasSide - shown / 2)) / shown;
    const v = (y - (canvasSide / 2 + view.panY * canvasSide - shown / 2)) / shown;
    return u >= 0 && u <= 1 && v >= 0 && v <= 1 ? [u, v] : null;
  }

  // The index of the mark under a pointer on this viewport's slice, or -1.
  function markAt(viewport, clientX, clientY) {
    if (marking === null) return -1;
    const box = viewport.canvas.getBoundingClientRect();
    const canvasSide = viewport.canvas.width;
    const shown = canvasSide * view.zoom;
    const x = ((clientX - box.left) / box.width) * canvasSide;
    const y = ((clientY - box.top) / box.height) * canvasSide;
    const reach = (MARK_RADIUS + 3) * (window.devicePixelRatio || 1);
    const slice = sliceOf(viewport);
    let found = -1;
    marking.marks.forEach((mark, i) => {
      if (mark.viewport !== viewport.index || mark.slice !== slice) return;
      const [mx, my] = canvasPoint(canvasSide, shown, mark.u, mark.v);
      if (Math.hypot(mx - x, my - y) <= reach) found = i;
    });
    return found;
  }

  function sendMarks() {
    const marks = marking.marks.map((mark) => ({ ...mark }));
    send("streamlit:setComponentValue", { value: { case: caseKey, marks }, dataType: "json" });
    writeMarksToolbar();
    schedule();
  }

  function placeMark(viewport, clientX, clientY) {
    const point = squarePoint(viewport.canvas, clientX, clientY);
    if (point === null) return;
    marking.marks.push({
      viewport: viewport.index,
      slice: sliceOf(viewport),
      u: point[0],
      v: point[1],
      rating: marking.rating,
    });
    marking.selected = marking.marks.length - 1;
    sendMarks();
  }

  function deleteSelected() {
    if (marking === null || marking.selected < 0) return false;
    marking.marks.splice(marking.selected, 1);
    marking.selected = -1;
    sendMarks();
    return true;
  }

  function rateSelected(rating) {
    marking.rating = rating;
    if (marking.selected >= 0) {
      marking.marks[marking.selected].rating = rating;
      sendMarks();
    } else {
      writeMarksToolbar();
    }
  }

  function writeMarksToolbar() {
    const box = document.getElementById("marks");
    box.hidden = marking === null;
    if (marking === null) return;
    if (box.dataset.scale !== String(marking.scale)) {
      box.replaceChildren();
      const label = document.createElement("span");
      label.className = "readout";
      label.id = "mark-count";
      box.append(label);
      for (let rating = 1; rating <= marking.scale; rating++) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = String(rating);
        button.dataset.rating = String(rating);
        button.title = `Rating ${rating} for the next mark (and the selected one)`;
        button.addEventListener("click", () => rateSelected(rating));
        box.append(button);
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.id = "delete-mark";
      remove.textContent = "Delete mark";
      remove.title = "Delete the selected mark (Delete)";
      remove.addEventListener("click", deleteSelected);
      box.append(remove);
      box.dataset.scale = String(marking.scale);
    }
    const count = marking.marks.length;
    document.getElementById("mark-count").textContent =
      `${count} mark${count === 1 ? "" : "s"} · rating`;
    for (const button of box.querySelectorAll("button[data-rating]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.rating) === marking.rating));
    }
    document.getElementById("delete-mark").disabled = marking.selected < 0;
  }

  function paint() {
    frameRequested = false;
    if (mode !== "viewer" || viewports.length === 0) return;
    buildLut();
    for (const viewport of viewports) paintViewport(viewport);
    const text =
      `W ${view.width.toFixed(2)}  L ${view.center.toFixed(2)}` +
      (view.zoom === 1 ? "" : `  ×${view.zoom.toFixed(1)}`);
    if (readout.textContent !== text) readout.textContent = text;
    if (lutWindow !== toolbarShows) {
      for (const button of document.querySelectorAll("#presets button")) {
        const preset = PRESETS[Number(button.dataset.preset)];
        const on =
          Math.abs(preset.center - view.center) < 1e-6 && Math.abs(preset.width - view.width) < 1e-6;
        button.setAttribute("aria-pressed", String(on));
      }
      invertButton.setAttribute("aria-pressed", String(view.invert));
      toolbarShows = lutWindow;
    }
    stats.paints += 1;
    window.dispatchEvent(new Event("vtt:painted"));
  }

  // One animation frame of a timed case: the images in the first frame after the page has
  // settled (STEADY_FRAMES frames in a row at the display's pace: a page still busy drawing the
  // new case would hold the first frames back), the mask in the first frame at least the
  // exposure (less half of the last frame's length) after it.
  function exposeFrame(timestamp) {
    if (timing === null || timing.phase === "masked") return;
    if (timing.phase === "waiting") {
      const steady = timing.last !== null && timestamp - timing.last < STEADY_FRAME_MS;
      timing.steady = steady ? timing.steady + 1 : 0;
      timing.waited = timing.waited ?? timestamp;
      timing.last = timestamp;
      if (timing.steady < STEADY_FRAMES && timestamp - timing.waited < SETTLE_LIMIT_MS) {
        window.requestAnimationFrame(exposeFrame);
        return;
      }
      Object.assign(timing, { phase: "showing", start: timestamp, last: timestamp });
      paint();
      window.requestAnimationFrame(exposeFrame);
      return;
    }
    const frame = timestamp - timing.last;
    timing.last = timestamp;
    if (timestamp - timing.start < timing.ms - frame / 2) {
      window.requestAnimationFrame(exposeFrame);
      return;
    }
    Object.assign(timing, { phase: "masked", shownMs: timestamp - timing.start });
    paint();
    send("streamlit:setComponentValue", {
      value: { case: caseKey, shown_ms: timing.shownMs },
      dataType: "json",
    });
  }

  function schedule() {
    if (!frameRequested) {
      frameRequested = true;
      window.requestAnimationFrame(paint);
    }
  }

  // --- interaction ----------------------------------------------------------------------------

  function setWindow(center, width) {
    view.center = clamp(center, CENTER_RANGE);
    view.width = clamp(width, WIDTH_RANGE);
    storeWindow();
    schedule();
  }

  function zoomAbout(factor, canvas, clientX, clientY) {
    const box = canvas.getBoundingClientRect();
    // The cursor relative to the canvas centre, in canvas widths; the image point under it
    // stays under it.
    const qx = (clientX - box.left) / box.width - 0.5;
    const qy = (clientY - box.top) / box.height - 0.5;
    const zoom = clamp(view.zoom * factor, ZOOM_RANGE);
    const kept = zoom / view.zoom;
    view.panX = qx - (qx - view.panX) * kept;
    view.panY = qy - (qy - view.panY) * kept;
    view.zoom = zoom;
    schedule();
  }

  function stepSlice(step) {
    if (maxSlices <= 1) return false;
    const slice = clamp(view.slice + step, [0, maxSlices - 1]);
    if (slice !== view.slice) {
      view.slice = slice;
      schedule();
    }
    return true;
  }

  function reset() {
    Object.assign(view, DEFAULT_WINDOW, { zoom: 1, panX: 0, panY: 0 });
    storeWindow();
    schedule();
  }

  function toggleInvert() {
    view.invert = !view.invert;
    storeWindow();
    schedule();
  }

  // Left drag: window (horizontal: width, wider to the right; vertical: level, higher
  // downwards, so the image darkens as the mouse goes down). Shift + left drag, or a middle or
  // right drag: pan. Two fingers: pinch to zoom, move to pan.
  const pointers = new Map();
  let drag = null;

  function attachPointer(canvas) {
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    // With lesion marks a click marks; the Reset button resets.
    canvas.addEventListener("dblclick", () => {
      if (marking === null && timing === null) reset();
    });
    canvas.addEventListener("pointerdown", (event) => {
      if (timing !== null) return; // a timed image is shown as it comes
      canvas.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (pointers.size === 2) {
        drag = { kind: "pinch", ...pinchOf() };
        return;
      }
      const pan = event.button === 1 || event.button === 2 || event.shiftKey;
      const viewport = viewports.find((candidate) => candidate.canvas === canvas);
      const onMark = pan || !viewport ? -1 : markAt(viewport, event.clientX, event.clientY);
      if (onMark >= 0) {
        marking.selected = onMark;
        drag = { kind: "mark", viewport, x: event.clientX, y: event.clientY, moved: false };
        writeMarksToolbar();
        schedule();
        event.preventDefault();
        return;
      }
      drag = {
        kind: pan ? "pan" : "window",
        x: event.clientX,
        y: event.clientY,
        startX: event.clientX,
        startY: event.clientY,
        at: performance.now(),
        window: { center: view.center, width: view.width },
        viewport,
      };
      canvas.classList.toggle("panning", pan);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!pointers.has(event.pointerId) || drag === null) return;
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      const size = canvas.getBoundingClientRect().width;
      if (drag.kind === "pinch") {
        const now = pinchOf();
        zoomAbout(now.distance / drag.distance, canvas, now.x, now.y);
        view.panX += (now.x - drag.x) / size;
        view.panY += (now.y - drag.y) / size;
        Object.assign(drag, now);
        return;
      }
      if (drag.kind === "mark") {
        const point = squarePoint(canvas, event.clientX, event.clientY);
        if (point !== null) {
          const mark = marking.marks[marking.selected];
          [mark.u, mark.v] = point;
          drag.moved = true;
          schedule();
        }
        return;
      }
      const dx = (event.clientX - drag.x) / size;
      const dy = (event.clientY - drag.y) / size;
      drag.x = event.clientX;
      drag.y = event.clientY;
      if (drag.kind === "pan") {
        view.panX += dx;
        view.panY += dy;
        schedule();
      } else {
        setWindow(view.center + dy, view.width + dx);
      }
    });
    const end = (event) => {
      pointers.delete(event.pointerId);
      if (event.type === "pointerup" && drag !== null && marking !== null) {
        if (drag.kind === "mark") {
          if (drag.moved) sendMarks();
        } else if (
          drag.kind === "window" &&
          drag.viewport &&
          Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY) < CLICK_PX &&
          performance.now() - drag.at < CLICK_MS
        ) {
          // A click, not a drag: the window stays as it was, and a mark goes here.
          view.center = drag.window.center;
          view.width = drag.window.width;
          placeMark(drag.viewport, event.clientX, event.clientY);
        }
      }
      // A pinch ends when a finger lifts; the gesture starts again with the next touch.
      if (pointers.size === 0 || (drag !== null && drag.kind === "pinch")) {
        drag = null;
        canvas.classList.remove("panning");
      }
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    let wheelRest = 0;
    canvas.addEventListener(
      "wheel",
      (event) => {
        if (timing !== null) return;
        const pixels = event.deltaY * (event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 800 : 1);
        if (event.ctrlKey || event.metaKey) {
          event.preventDefault();
          zoomAbout(Math.exp(-pixels * WHEEL_ZOOM), canvas, event.clientX, event.clientY);
          return;
        }
        if (maxSlices <= 1) return; // a single image: the wheel scrolls the page
        event.preventDefault();
        if (Math.abs(pixels) >= WHEEL_STEP) {
          wheelRest = 0;
          stepSlice(Math.sign(pixels));
          return;
        }
        wheelRest += pixels;
        if (Math.abs(wheelRest) >= WHEEL_STEP) {
          stepSlice(Math.sign(wheelRest));
          wheelRest = 0;
        }
      },
      { passive: false },
    );
  }

  function pinchOf() {
    const [a, b] = [...pointers.values()];
    return {
      distance: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)),
      x: (a.x + b.x) / 2,
      y: (a.y + b.y) / 2,
    };
  }

  // --- the page's keyboard --------------------------------------------------------------------

  function page() {
    try {
      return window.parent.document;
    } catch {
      return null; // not the app's origin: no keyboard from the page, the viewer still works
    }
  }

  function typing(target) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName;
    if (tag === "TEXTAREA" || target.isContentEditable) return true;
    if (tag !== "INPUT") return false;
    return !["radio", "checkbox", "button", "submit", "range"].includes(target.type);
  }

  function appRunning(doc) {
    const app = doc.querySelector('[data-testid="stApp"]');
    return app !== null && app.getAttribute("data-test-script-state") === "running";
  }

  function clickButton(doc, label) {
    const button = [...doc.querySelectorAll("button")].find(
      (candidate) => candidate.innerText.trim() === label && !candidate.disabled,
    );
    if (button === undefined) return false;
    button.click();
    return true;
  }

  // Where the reader is: the page's progress line ("Case 3 of 12"), empty where there is none.
  function position(doc) {
    const progress = doc.querySelector('[data-testid="stProgress"]');
    return progress === null ? "" : progress.innerText.trim();
  }

  // A button key pressed while the app is busy (a mark just rated, say) is pressed once the
  // run ends, provided the reader is still where the run started; a key pressed while the app
  // moves to the next case is dropped, so a key pressed twice never answers two cases (even
  // when the next case is drawn before its run ends).
  const PRESS_WAIT_MS = 60000;
  let pendingPress = null;
  let runFrom = "";
  let runs = null;

  function watchRuns(doc) {
    const app = doc.querySelector('[data-testid="stApp"]');
    if (runs !== null || app === null) return;
    runFrom = position(doc);
    runs = new MutationObserver(() => {
      if (!appRunning(doc)) runFrom = position(doc);
    });
    runs.observe(app, { attributes: true, attributeFilter: ["data-test-script-state"] });
  }

  // Pressed through a message to the page, which it reads after the messages the viewer sent
  // before (a mark's new rating): the button's run then sees them.
  const PRESS = "vtt:press";

  function press(label) {
    window.parent.postMessage({ type: PRESS, label }, "*");
  }

  function onPageMessage(event) {
    if (event.source !== window || !event.data || event.data.type !== PRESS) return;
    const doc = page();
    if (doc !== null) pressNow(doc, String(event.data.label));
  }

  function pressNow(doc, label) {
    if (!appRunning(doc)) {
      pendingPress = null;
      clickButton(doc, label);
      return;
    }
    const first = pendingPress === null;
    pendingPress = { label, at: runFrom, since: performance.now() };
    if (first) setTimeout(() => pressWhenIdle(doc), 50);
  }

  function pressWhenIdle(doc) {
    if (pendingPress === null) return;
    const gone = window.frameElement && !window.frameElement.isConnected;
    if (gone || performance.now() - pendingPress.since > PRESS_WAIT_MS) {
      pendingPress = null;
      return;
    }
    if (appRunning(doc)) {
      setTimeout(() => pressWhenIdle(doc), 50);
      return;
    }
    const { label, at } = pendingPress;
    pendingPress = null;
    if (position(doc) === at) clickButton(doc, label);
  }

  // The choice questions in the page's order: the radio groups of the case's form. A key
  // answers the first question it belongs to that has no answer yet (digits are shared by the
  // rating questions), else the first it belongs to.
  function answerWith(doc, key) {
    const groups = [...doc.querySelectorAll('[data-testid="stForm"] [data-testid="stRadio"]')];
    if (groups.length !== answerKeys.length) return false;
    const choices = [];
    answerKeys.forEach((keys, question) => {
      const option = keys.indexOf(key);
      if (option >= 0) choices.push([groups[question], option]);
    });
    if (choices.length === 0) return false;
    const [group, option] =
      choices.find(([candidate]) => !candidate.querySelector("input:checked")) || choices[0];
    const labels = group.querySelectorAll('[data-testid="stRadioOption"]');
    if (!labels[option]) return false;
    labels[option].click();
    return true;
  }

  function onKey(event) {
    // The viewer has left the page (its frame was removed): so has its keyboard.
    if (window.frameElement && !window.frameElement.isConnected) {
      stopListening();
      return;
    }
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (typing(event.target)) return;
    const doc = page();
    if (doc === null) return;
    const key = event.key;
    let handled = false;
    const adjustable = mode === "viewer" && timing === null;
    if (adjustable && maxSlices > 1) {
      const steps = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -5, PageDown: 5 };
      if (key in steps) handled = stepSlice(steps[key]);
      else if (key === "Home") handled = stepSlice(-maxSlices);
      else if (key === "End") handled = stepSlice(maxSlices);
    }
    if (!handled && adjustable && (key === "i" || key === "I")) {
      toggleInvert();
      handled = true;
    }
    // A held key repeats: the buttons are pressed once.
    if (!handled && key === "Enter" && actions.Enter) {
      // A focused button gets Enter from the browser itself.
      if (event.target && event.target.tagName === "BUTTON") return;
      // Not while a timed image is on the screen: the answer comes after the mask.
      const exposing = mode === "viewer" && timing !== null && timing.phase !== "masked";
      if (!event.repeat && !exposing) press(actions.Enter);
      handled = true;
    }
    if (!handled && (key === "b" || key === "B") && actions.B) {
      if (!event.repeat) press(actions.B);
      handled = true;
    }
    if (!handled && marking !== null) {
      if (key === "Delete" || key === "Backspace") handled = deleteSelected();
      else if (key === "Escape" && marking.selected >= 0) {
        marking.selected = -1;
        writeMarksToolbar();
        schedule();
        handled = true;
      } else if (/^[1-9]$/.test(key) && Number(key) <= marking.scale && marking.selected >= 0) {
        rateSelected(Number(key));
        handled = true;
      }
    }
    if (!handled && key.length === 1) handled = answerWith(doc, key.toUpperCase());
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  let listening = null;

  function listen() {
    if (listening !== null) return;
    document.addEventListener("keydown", onKey, true);
    listening = page() === null ? window : window.parent;
    if (listening !== window) {
      watchRuns(page());
      listening.addEventListener("message", onPageMessage);
      listening.addEventListener("keydown", onKey, true);
      listening.addEventListener("resize", relayout);
    }
  }

  function stopListening() {
    document.removeEventListener("keydown", onKey, true);
    if (runs !== null) runs.disconnect();
    runs = null;
    pendingPress = null;
    if (listening !== null && listening !== window) {
      listening.removeEventListener("message", onPageMessage);
      listening.removeEventListener("keydown", onKey, true);
      listening.removeEventListener("resize", relayout);
    }
    listening = null;
  }

  // --- the component protocol -----------------------------------------------------------------

  function onRender(args) {
    mode = args.mode === "keys" ? "keys" : "viewer";
    answerKeys = Array.isArray(args.keys) ? args.keys : [];
    actions = args.actions && typeof args.actions === "object" ? args.actions : {};
    listen();
    root.hidden = mode !== "viewer";
    const newCase = mode === "viewer" && args.case !== caseKey;
    if (newCase) loadCase(args);
    if (newCase) {
      const exposure = args.exposure;
      timing = null;
      if (exposure && Number.isFinite(exposure.ms)) {
        const phase = exposure.shown ? "masked" : "waiting";
        timing = { ms: exposure.ms, phase, start: null, last: null, shownMs: null, steady: 0 };
      }
      // A timed image is shown at the full range, as it comes (the reader's window stays
      // stored for the untimed cases).
      if (timing !== null) Object.assign(view, DEFAULT_WINDOW);
      root.classList.toggle("timed", timing !== null);
      marking =
        args.marks && Number.isInteger(args.marks.scale)
          ? {
              scale: args.marks.scale,
              marks: (args.marks.marks || []).map((mark) => ({ ...mark })),
              selected: -1,
              rating: Math.ceil(args.marks.scale / 2),
            }
          : null;
      writeMarksToolbar();
    }
    if (mode === "viewer") writeHelp();
    layout();
    // A new case is painted at once (it shows with the next frame); anything else, like the
    // interactions, on the next animation frame.
    if (newCase && timing !== null && timing.phase === "waiting") {
      paint();
      window.requestAnimationFrame(exposeFrame);
    } else if (newCase) paint();
    else schedule();
  }

  function buildToolbar() {
    const presets = document.getElementById("presets");
    PRESETS.forEach((preset, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = preset.name;
      button.dataset.preset = String(i);
      button.title = `Window ${preset.name}: level ${preset.center.toFixed(2)}, width ${preset.width.toFixed(2)}`;
      button.addEventListener("click", () => setWindow(preset.center, preset.width));
      presets.append(button);
    });
    invertButton.addEventListener("click", toggleInvert);
    document.getElementById("reset").addEventListener("click", reset);
  }

  // The on-screen help: what the mouse and the keys do here (slices only for stacks, the
  // answer keys and buttons only where the page has them).
  function writeHelp() {
    const parts =
      timing !== null
        ? ["The image is shown for a moment, then masked: answer from what you saw"]
        : [
            "Drag: window (↔ width, ↕ level)",
            "<kbd>Shift</kbd>+drag or right-drag: pan",
            "<kbd>Ctrl</kbd>+wheel or pinch: zoom",
          ];
    if (maxSlices > 1 && timing === null) {
      parts.push("wheel, <kbd>↑</kbd><kbd>↓</kbd>, <kbd>PgUp</kbd><kbd>PgDn</kbd>: slices");
    }
    if (timing === null) {
      const resetHelp = marking === null ? "double-click: reset" : "Reset button: reset";
      parts.push(resetHelp, "<kbd>I</kbd>: invert");
    }
    if (marking !== null) {
      parts.push(
        "click: mark a lesion (drag a mark to move it, a digit rates it, <kbd>Del</kbd> deletes it)",
      );
    }
    if (answerKeys.some((keys) => keys.some((key) => key !== ""))) {
      parts.push("keys under the choices answer");
    }
    if (actions.Enter) parts.push(`<kbd>Enter</kbd>: ${escape(actions.Enter)}`);
    if (actions.B) parts.push(`<kbd>B</kbd>: ${escape(actions.B)}`);
    const html = parts.join(" · ");
    if (helpShown !== html) {
      helpLine.innerHTML = html;
      helpShown = html;
    }
  }

  function escape(text) {
    const span = document.createElement("span");
    span.textContent = String(text);
    return span.innerHTML;
  }

  buildToolbar();
  window.vttViewer = {
    view,
    stats,
    marks: () => (marking === null ? null : marking.marks),
    timing: () => (timing === null ? null : { ...timing }),
  };
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data || event.data.type !== "streamlit:render") {
      return;
    }
    onRender(event.data.args);
  });
  window.addEventListener("resize", relayout);
  window.addEventListener("pagehide", stopListening);
  send("streamlit:componentReady", { apiVersion: 1 });
})();
