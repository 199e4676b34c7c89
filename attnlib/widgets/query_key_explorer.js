// QueryKeyExplorer: slide a query over keys in the plane and watch the softmax weights.
// The math is in _attnmath.js (concatenated before this file by attnlib/widgets/_assets.py).

const QKE_SIZE = 300; // the plane's drawing is QKE_SIZE x QKE_SIZE user units
const QKE_PAD = 26;
const QKE_LEVELS = 8; // weight levels of the lines when there are many keys

function qkeRound(x, step) {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step)) + 1);
  return Number((Math.round(x / step) * step).toFixed(decimals));
}

// A temperature as the reader set it: up to 2 decimals, no trailing zeros (0.25, 1, 1.5).
function qkeShort(x) {
  return String(Number(x.toFixed(2)));
}

function render({ model, el }) {
  const uid = model.get("uid");
  const vid = attnViewId(uid); // element ids: unique even when one model is shown twice
  const K = model.get("key_points");
  const V = model.get("value_points"); // [] when the explorer was given no values
  const labels = model.get("key_labels");
  const L = model.get("extent");
  const step = model.get("step");
  const nK = K.length;
  const dK = K[0].length;
  const many = nK > 16;
  const showOutput = model.get("show_output") && V.length > 0; // the output needs values
  const showScale = model.get("show_scale");
  const drawValues = showOutput && V[0].length === 2;
  const tMin = model.get("temperature_min");
  const tMax = model.get("temperature_max");
  const state = {
    query: model.get("query_point").slice(),
    temperature: model.get("temperature"),
    scaled: model.get("scaled"),
  };

  const root = attnEl("div", {
    class: "attnlib-widget attnlib-qke",
    "data-attnlib-widget": "QueryKeyExplorer",
    "data-uid": uid,
  }, el);
  attnOwnKeys(root); // arrow keys move the focused control, not the notebook

  // --- the plane: keys, values, query and output --------------------------------------
  const toPx = (x) => QKE_PAD + ((x + L) / (2 * L)) * (QKE_SIZE - 2 * QKE_PAD);
  const toPy = (y) => QKE_SIZE - QKE_PAD - ((y + L) / (2 * L)) * (QKE_SIZE - 2 * QKE_PAD);
  const fromPx = (px) => ((px - QKE_PAD) / (QKE_SIZE - 2 * QKE_PAD)) * 2 * L - L;
  const fromPy = (py) => ((QKE_SIZE - QKE_PAD - py) / (QKE_SIZE - 2 * QKE_PAD)) * 2 * L - L;

  const row = attnEl("div", { class: "attnlib-row" }, root);
  const figure = attnEl("figure", { class: "attnlib-plane" }, row);
  const svg = attnSvg("svg", {
    viewBox: `0 0 ${QKE_SIZE} ${QKE_SIZE}`,
    role: "img",
    "aria-label": `A plane with ${nK} keys as circles and the query as a larger orange circle; `
      + "a circle's area and its line's thickness grow with its weight. Drag the query, or use the sliders below.",
  }, figure);
  attnSvg("rect", { x: QKE_PAD, y: QKE_PAD, width: QKE_SIZE - 2 * QKE_PAD, height: QKE_SIZE - 2 * QKE_PAD,
    class: "attnlib-frame" }, svg);
  attnSvg("line", { x1: toPx(0), x2: toPx(0), y1: QKE_PAD, y2: QKE_SIZE - QKE_PAD, class: "attnlib-axis" }, svg);
  attnSvg("line", { y1: toPy(0), y2: toPy(0), x1: QKE_PAD, x2: QKE_SIZE - QKE_PAD, class: "attnlib-axis" }, svg);
  for (const [text, x, y, anchor] of [[`${-L}`, toPx(-L), QKE_SIZE - 8, "middle"], [`${L}`, toPx(L), QKE_SIZE - 8, "middle"],
    ["x", QKE_SIZE / 2, QKE_SIZE - 8, "middle"], [`${-L}`, QKE_PAD - 4, toPy(-L) + 4, "end"],
    [`${L}`, QKE_PAD - 4, toPy(L) + 4, "end"], ["y", QKE_PAD - 4, QKE_SIZE / 2 + 4, "end"]]) {
    attnSvg("text", { x, y, "text-anchor": anchor, class: "attnlib-tick" }, svg).textContent = text;
  }
  const lineLayer = attnSvg("g", { "aria-hidden": "true" }, svg);
  const valueLayer = attnSvg("g", { "aria-hidden": "true" }, svg);
  const keyLayer = attnSvg("g", { "aria-hidden": "true" }, svg);
  // Okabe–Ito without vermillion (the query's colour), its neighbour orange, and black (the output's).
  const keyColors = ["#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#F0E442"];
  const colorOf = (j) => (nK <= keyColors.length ? keyColors[j] : keyColors[0]);
  // Lines from the query to the keys: one per key, or, with many keys, one path per weight
  // level (QKE_LEVELS paths instead of n_k lines: far fewer changes to redraw).
  const bucketed = nK > 64;
  const lines = [];
  const levelPaths = [];
  if (bucketed) {
    for (let b = 0; b < QKE_LEVELS; b++) {
      const w = (b + 0.5) / QKE_LEVELS;
      levelPaths.push(attnSvg("path", { class: "attnlib-link", fill: "none",
        "stroke-width": 0.5 + 5 * w, "stroke-opacity": 0.12 + 0.88 * w }, lineLayer));
    }
  }
  const keyPx = K.map((k) => `${toPx(k[0]).toFixed(1)},${toPy(k[1]).toFixed(1)}`);
  const circles = [];
  for (let j = 0; j < nK; j++) {
    if (!bucketed) {
      lines.push(attnSvg("line", { x2: toPx(K[j][0]), y2: toPy(K[j][1]), class: "attnlib-link" }, lineLayer));
    }
    circles.push(attnSvg("circle", { cx: toPx(K[j][0]), cy: toPy(K[j][1]), fill: colorOf(j), class: "attnlib-key" }, keyLayer));
    if (!many) {
      attnSvg("text", { x: toPx(K[j][0]) + 9, y: toPy(K[j][1]) - 7, class: "attnlib-label" }, keyLayer).textContent = labels[j];
    }
    if (drawValues) {
      attnSvg("rect", { x: toPx(V[j][0]) - 4, y: toPy(V[j][1]) - 4, width: 8, height: 8, stroke: colorOf(j),
        class: "attnlib-value" }, valueLayer);
    }
  }
  const outputMark = drawValues
    ? attnSvg("path", { d: "M0,-8 L8,0 L0,8 L-8,0 Z", class: "attnlib-output-mark" }, keyLayer) : null;
  const queryMark = attnSvg("g", { class: "attnlib-query", "aria-hidden": "true" }, svg);
  attnSvg("circle", { r: 9 }, queryMark);
  attnSvg("text", { x: 12, y: 16, class: "attnlib-label" }, queryMark).textContent = "q";

  const legend = attnEl("figcaption", {}, figure);
  legend.innerHTML = "<span class=\"attnlib-swatch attnlib-swatch-query\"></span> query "
    + (nK <= keyColors.length
      ? K.map((_, j) => "<span class=\"attnlib-swatch attnlib-swatch-key\" "
        + `style="background:${colorOf(j)}"></span>`).join("") + " keys (colours as in the table)"
      : "<span class=\"attnlib-swatch attnlib-swatch-key\"></span> keys")
    + (drawValues ? " <span class=\"attnlib-swatch attnlib-swatch-value\"></span> values "
      + "<span class=\"attnlib-swatch attnlib-swatch-output\"></span> output" : "");

  // --- the weights: a table with a bar per key -----------------------------------------
  const panel = attnEl("div", { class: "attnlib-weights-panel", role: "group",
    "aria-label": `Scores and attention weights of the ${nK} keys` }, row);
  if (nK > 12) {
    panel.setAttribute("tabindex", "0");
    panel.classList.add("attnlib-scroll");
  }
  const table = attnEl("table", { class: "attnlib-weights" }, panel);
  attnEl("caption", {}, table, "Score and softmax weight of each key");
  const head = attnEl("tr", {}, attnEl("thead", {}, table));
  for (const h of ["key", "score", "weight", "bar"]) {
    const th = attnEl("th", { scope: "col" }, head, h === "bar" ? "" : h);
    if (h === "bar") th.appendChild(attnEl("span", { class: "attnlib-sr" }, null, "weight as a bar"));
  }
  const body = attnEl("tbody", {}, table);
  const scoreCells = [];
  const weightCells = [];
  const bars = [];
  for (let j = 0; j < nK; j++) {
    const tr = attnEl("tr", {}, body);
    const th = attnEl("th", { scope: "row" }, tr);
    attnEl("span", { class: "attnlib-dot", style: `background:${colorOf(j)}` }, th);
    th.appendChild(document.createTextNode(labels[j]));
    // text nodes made once and updated in place: cheaper than replacing cell contents
    scoreCells.push(attnEl("td", { class: "attnlib-num" }, tr).appendChild(document.createTextNode("")));
    weightCells.push(attnEl("td", { class: "attnlib-num" }, tr).appendChild(document.createTextNode("")));
    const barCell = attnEl("td", { class: "attnlib-barcell", "aria-hidden": "true" }, tr);
    bars.push(attnEl("div", { class: "attnlib-bar" }, barCell));
  }
  const sumLine = attnEl("p", { class: "attnlib-note" }, panel);

  // --- controls: every one a labelled form element ---------------------------------------
  const controls = attnEl("div", { class: "attnlib-controls" }, root);
  function slider(id, text, min, max, stepValue, value) {
    const wrap = attnEl("div", { class: "attnlib-control" }, controls);
    attnEl("label", { for: `${vid}-${id}` }, wrap, text);
    const input = attnEl("input", { type: "range", id: `${vid}-${id}`, min, max, step: stepValue }, wrap);
    input.value = value;
    const out = attnEl("output", { for: `${vid}-${id}` }, wrap);
    return [input, out];
  }
  const [qx, qxOut] = slider("qx", "Query x", -L, L, step, state.query[0]);
  const [qy, qyOut] = slider("qy", "Query y", -L, L, step, state.query[1]);
  const [temp, tempOut] = slider("temp", "Temperature τ", tMin, tMax, 0.1, state.temperature);
  let scaledBox = null; // the √d_k checkbox: only on pages that have explained √d_k (show_scale)
  if (showScale) {
    const checkWrap = attnEl("div", { class: "attnlib-control attnlib-check" }, controls);
    scaledBox = attnEl("input", { type: "checkbox", id: `${vid}-scaled` }, checkWrap);
    scaledBox.checked = state.scaled;
    attnEl("label", { for: `${vid}-scaled` }, checkWrap, `Divide scores by √d_k = √${dK}`);
  }
  const formula = attnEl("p", { class: "attnlib-note attnlib-formula" }, root);
  const outputLine = showOutput ? attnEl("p", { class: "attnlib-output" }, root) : null; // only with values

  // --- recompute and redraw -----------------------------------------------------------
  function scale() {
    return (state.scaled ? 1 / Math.sqrt(dK) : 1) / state.temperature;
  }

  function update() {
    const q = state.query;
    const scores = attnScores(q, K, scale());
    const w = attnSoftmax(scores);
    const out = showOutput ? attnWeightedSum(w, V) : null;
    const qpx = toPx(q[0]);
    const qpy = toPy(q[1]);
    const levels = bucketed ? Array.from({ length: QKE_LEVELS }, () => []) : null;
    const from = `M${qpx.toFixed(1)},${qpy.toFixed(1)}L`;
    for (let j = 0; j < nK; j++) {
      if (bucketed) {
        levels[Math.min(QKE_LEVELS - 1, Math.floor(w[j] * QKE_LEVELS))].push(from + keyPx[j]);
      } else {
        lines[j].setAttribute("x1", qpx);
        lines[j].setAttribute("y1", qpy);
        lines[j].setAttribute("stroke-width", 0.5 + 5 * w[j]);
        lines[j].setAttribute("stroke-opacity", 0.12 + 0.88 * w[j]);
      }
      circles[j].setAttribute("r", 3 + 10 * Math.sqrt(w[j]));
      scoreCells[j].data = attnFmt(scores[j], 3);
      weightCells[j].data = attnFmt(w[j], 4);
      bars[j].style.transform = `scaleX(${w[j].toFixed(4)})`; // no layout, only paint
    }
    if (bucketed) levelPaths.forEach((path, b) => path.setAttribute("d", levels[b].join("")));
    queryMark.setAttribute("transform", `translate(${qpx},${qpy})`);
    if (outputMark) outputMark.setAttribute("transform", `translate(${toPx(out[0])},${toPy(out[1])})`);
    table.setAttribute("data-weights", JSON.stringify(w));
    root.setAttribute("data-query", JSON.stringify(q));
    qxOut.textContent = attnFmt(q[0], 2);
    qyOut.textContent = attnFmt(q[1], 2);
    tempOut.textContent = qkeShort(state.temperature);
    sumLine.textContent = `The weights sum to ${attnFmt(w.reduce((a, b) => a + b, 0), 4)}.`;
    const divisor = state.scaled ? `(√${dK} · τ)` : "τ";
    formula.textContent = `score_j = (q · k_j) / ${divisor}, with τ = ${qkeShort(state.temperature)};  `
      + "weights = softmax(scores)";
    if (outputLine) {
      outputLine.textContent = `Output = Σ_j weight_j · value_j = [${out.map((x) => attnFmt(x, 3)).join(", ")}]`;
      outputLine.setAttribute("data-output", JSON.stringify(out));
    }
  }

  function setQuery(x, y, fromUser) {
    state.query = [Math.min(L, Math.max(-L, x)), Math.min(L, Math.max(-L, y))];
    qx.value = state.query[0];
    qy.value = state.query[1];
    update();
    if (fromUser) {
      model.set("query_point", state.query.slice());
      attnSave(model);
    }
  }

  qx.addEventListener("input", () => setQuery(Number(qx.value), state.query[1], true));
  qy.addEventListener("input", () => setQuery(state.query[0], Number(qy.value), true));
  temp.addEventListener("input", () => {
    state.temperature = Number(temp.value);
    update();
    model.set("temperature", state.temperature);
    attnSave(model);
  });
  if (scaledBox) {
    scaledBox.addEventListener("change", () => {
      state.scaled = scaledBox.checked;
      update();
      model.set("scaled", state.scaled);
      attnSave(model);
    });
  }

  // Dragging with a mouse, a pen or a finger (pointer events); the sliders take the keyboard.
  let dragging = false;
  function dragTo(event) {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * QKE_SIZE;
    const py = ((event.clientY - box.top) / box.height) * QKE_SIZE;
    setQuery(qkeRound(fromPx(px), step), qkeRound(fromPy(py), step), true);
  }
  svg.addEventListener("pointerdown", (event) => {
    dragging = true;
    svg.setPointerCapture(event.pointerId);
    dragTo(event);
    event.preventDefault();
  });
  svg.addEventListener("pointermove", (event) => {
    if (dragging) dragTo(event);
  });
  const stop = () => { dragging = false; };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);

  // Changes made from Python (a live kernel) move the view too.
  const fromModel = () => {
    const q = model.get("query_point");
    if (q[0] === state.query[0] && q[1] === state.query[1] && model.get("temperature") === state.temperature
        && model.get("scaled") === state.scaled) return; // our own change, already drawn
    state.temperature = model.get("temperature");
    state.scaled = model.get("scaled");
    temp.value = state.temperature;
    if (scaledBox) scaledBox.checked = state.scaled;
    setQuery(q[0], q[1], false);
  };
  model.on("change:query_point", fromModel);
  model.on("change:temperature", fromModel);
  model.on("change:scaled", fromModel);

  update();
  return () => {
    model.off("change:query_point", fromModel);
    model.off("change:temperature", fromModel);
    model.off("change:scaled", fromModel);
  };
}

export default { render };
