// TrainingView: a slider over training checkpoints; every layer's attention on the probe
// sequence at that step (heatmap tables) and the loss curve up to that step.

const TV_W = 560; // loss chart size in SVG units
const TV_H = 150;
const TV_PAD = { left: 44, right: 24, top: 10, bottom: 30 };
const TV_CELL = 25; // px a heatmap cell needs to print its weight readably

function render({ model, el }) {
  const uid = model.get("uid");
  const vid = attnViewId(uid);
  const tokens = model.get("tokens");
  const layerNames = model.get("layer_names");
  const steps = model.get("steps");
  const all = model.get("checkpoint_weights"); // (n_checkpoints, n_layers, T, T)
  const lossSteps = model.get("loss_steps");
  const losses = model.get("losses");
  const reference = model.get("reference");
  const keyTokens = model.get("key_tokens").length ? model.get("key_tokens") : tokens; // columns
  const causal = model.get("causal"); // hide the keys after each query (self-attention in a GPT)
  const lossLabel = model.get("loss_label"); // what the curve is, e.g. "loss on the repeated half"
  const T = tokens.length;
  const N = keyTokens.length;
  const state = { checkpoint: model.get("checkpoint") };

  const root = attnEl("div", { class: "attnlib-widget attnlib-train", "data-attnlib-widget": "TrainingView",
    "data-uid": uid }, el);
  attnOwnKeys(root); // arrow keys move the focused control, not the notebook

  // --- the slider -----------------------------------------------------------------------
  const controls = attnEl("div", { class: "attnlib-controls" }, root);
  const wrap = attnEl("div", { class: "attnlib-control attnlib-train-slider" }, controls);
  attnEl("label", { for: `${vid}-checkpoint` }, wrap, "Training step");
  const slider = attnEl("input", { type: "range", id: `${vid}-checkpoint`, min: 0, max: steps.length - 1,
    step: 1 }, wrap);
  slider.value = String(state.checkpoint);
  const readout = attnEl("output", { for: `${vid}-checkpoint`, "aria-live": "polite" }, wrap);

  // --- the loss curve so far --------------------------------------------------------------
  const chart = attnEl("figure", { class: "attnlib-train-chart" }, root);
  const svg = attnSvg("svg", { viewBox: `0 0 ${TV_W} ${TV_H}`, role: "img",
    "aria-labelledby": `${vid}-chart-cap` }, chart);
  const lossMax = Math.max(...losses, reference || 0) * 1.05;
  const stepMax = Math.max(lossSteps[lossSteps.length - 1], steps[steps.length - 1]) || 1;
  const x = (s) => TV_PAD.left + (s / stepMax) * (TV_W - TV_PAD.left - TV_PAD.right);
  const y = (v) => TV_PAD.top + (1 - v / lossMax) * (TV_H - TV_PAD.top - TV_PAD.bottom);
  attnSvg("rect", { x: TV_PAD.left, y: TV_PAD.top, width: TV_W - TV_PAD.left - TV_PAD.right,
    height: TV_H - TV_PAD.top - TV_PAD.bottom, class: "attnlib-frame" }, svg);
  for (const v of [0, lossMax / 2 / 1.05, lossMax / 1.05]) {
    attnSvg("text", { x: TV_PAD.left - 4, y: y(v) + 4, "text-anchor": "end", class: "attnlib-tick" }, svg)
      .textContent = attnFmt(v, 1);
  }
  for (const s of [0, Math.round(stepMax / 2), stepMax]) {
    attnSvg("text", { x: x(s), y: TV_H - TV_PAD.bottom + 13, "text-anchor": "middle", class: "attnlib-tick" }, svg)
      .textContent = String(s);
  }
  attnSvg("text", { x: (TV_PAD.left + TV_W) / 2, y: TV_H - 3, "text-anchor": "middle", class: "attnlib-label" }, svg)
    .textContent = "training step";
  attnSvg("text", { x: 12, y: (TV_H - TV_PAD.bottom) / 2, "text-anchor": "middle", class: "attnlib-label",
    transform: `rotate(-90 12 ${(TV_H - TV_PAD.bottom) / 2})` }, svg).textContent = "loss";
  if (reference) {
    attnSvg("line", { x1: x(0), x2: x(stepMax), y1: y(reference), y2: y(reference), class: "attnlib-train-ref" }, svg);
    attnSvg("text", { x: x(stepMax) - 4, y: y(reference) - 4, "text-anchor": "end", class: "attnlib-tick" }, svg)
      .textContent = `guessing: ${attnFmt(reference, 2)}`;
  }
  const points = (upTo) => lossSteps.map((s, k) => [s, losses[k]]).filter(([s]) => s <= upTo)
    .map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  attnSvg("polyline", { points: points(Infinity), class: "attnlib-train-future" }, svg);
  const past = attnSvg("polyline", { points: "", class: "attnlib-train-past" }, svg);
  const marker = attnSvg("line", { y1: TV_PAD.top, y2: TV_H - TV_PAD.bottom, class: "attnlib-train-now" }, svg);
  const chartCap = attnEl("figcaption", { id: `${vid}-chart-cap` }, chart);

  // --- one heatmap table per layer ---------------------------------------------------------
  // Where the numbers fit (TV_CELL px a cell), each cell prints its weight.  On a narrower card
  // (a phone) the tables shrink to colour only and a readout prints one query row's weights.
  const layersBox = attnEl("div", { class: "attnlib-train-layers", "data-weights": "[]" }, root);
  attnEl("p", { class: "attnlib-note" }, layersBox,
    "Rows are queries, columns keys, in position order, each labelled with its token; lighter = more weight.");
  const rowWrap = attnEl("div", { class: "attnlib-control attnlib-train-row" }, layersBox);
  attnEl("label", { for: `${vid}-row` }, rowWrap, "Query position");
  const rowSelect = attnEl("select", { id: `${vid}-row` }, rowWrap);
  tokens.forEach((t, i) => attnEl("option", { value: String(i) }, rowSelect, `${i} (token ${t})`));
  rowSelect.value = String(T - 1);
  const rowLines = [];
  const tables = layerNames.map((name) => {
    attnEl("p", { class: "attnlib-train-title" }, layersBox, name);
    const box = attnEl("div", { class: "attnlib-map-heat", role: "group", tabindex: "0",
      "aria-label": `${name}: attention weights as a table` }, layersBox);
    const table = attnEl("table", { class: "attnlib-heat attnlib-train-heat" }, box);
    attnEl("caption", { class: "attnlib-sr" }, table, `${name}: rows are queries, columns keys, in position order, labelled with their tokens`);
    const headRow = attnEl("tr", {}, attnEl("thead", {}, table));
    attnEl("th", { scope: "col" }, headRow).appendChild(attnEl("span", { class: "attnlib-sr" }, null, "query \\ key"));
    keyTokens.forEach((t) => attnEl("th", { scope: "col" }, headRow, t));
    const body = attnEl("tbody", {}, table);
    const cells = tokens.map((t) => {
      const tr = attnEl("tr", {}, body);
      attnEl("th", { scope: "row" }, tr, t);
      return keyTokens.map(() => attnEl("td", {}, tr));
    });
    // a table wider than the page (a phone) scrolls sideways, and says so
    const hint = attnEl("p", { class: "attnlib-scroll-hint", "aria-hidden": "true" }, layersBox,
      "Scroll the table sideways to see every key →");
    box.after(hint);
    attnScrollCue(box, hint);
    rowLines.push(attnEl("p", { class: "attnlib-train-readout" }, layersBox));
    hint.after(rowLines[rowLines.length - 1]);
    return cells;
  });

  // colour only when the numbers would not fit: (T + 1) columns of TV_CELL px
  const fitCheck = () => {
    const width = layersBox.clientWidth;
    if (width > 0) root.classList.toggle("attnlib-train-compact", width < (T + 1) * TV_CELL);
  };
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(fitCheck).observe(layersBox);
  requestAnimationFrame(fitCheck);

  function update() {
    const k = state.checkpoint;
    const W = all[k]; // (n_layers, T, N)
    W.forEach((layer, l) => {
      for (let i = 0; i < T; i++) {
        for (let j = 0; j < N; j++) {
          const w = layer[i][j];
          const td = tables[l][i][j];
          const masked = causal && j > i;
          td.textContent = masked ? "" : attnFmt(w, 2).replace(/^0\./, ".");
          const rgb = attnCividisRGB(Math.min(1, Math.max(0, w)));
          td.style.background = masked ? "" : `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
          td.style.color = attnTextIsWhite(rgb) ? "#ffffff" : "#000000";
          td.classList.toggle("attnlib-masked", masked);
        }
      }
    });
    layersBox.setAttribute("data-weights", JSON.stringify(W));
    const i = Number(rowSelect.value); // one query row's weights, largest first, as readable text
    W.forEach((layer, l) => {
      const top = layer[i].map((w, j) => [w, j]).filter(([, j]) => !causal || j <= i).sort((a, b) => b[0] - a[0]).slice(0, 3);
      rowLines[l].textContent = `${layerNames[l]}, query ${i}: `
        + top.map(([w, j]) => `key ${j} (${keyTokens[j]}) ${attnFmt(w, 2)}`).join(", ");
      tables[l].forEach((cells, r) => cells[0].parentElement.classList.toggle("attnlib-train-picked", r === i));
    });
    root.setAttribute("data-checkpoint", String(k));
    root.setAttribute("data-step", String(steps[k]));
    past.setAttribute("points", points(steps[k]));
    marker.setAttribute("x1", x(steps[k]));
    marker.setAttribute("x2", x(steps[k]));
    let shown = null;
    lossSteps.forEach((s, i) => { if (s <= steps[k]) shown = losses[i]; });
    const lossText = shown === null ? `no ${lossLabel} yet` : `${lossLabel} ${attnFmt(shown, 2)}`;
    readout.textContent = `step ${steps[k]} of ${steps[steps.length - 1]} (${lossText})`;
    chartCap.textContent = `${lossLabel.charAt(0).toUpperCase()}${lossLabel.slice(1)} up to step ${steps[k]} `
      + "(dark line); the rest of training is faint.";
  }

  slider.addEventListener("input", () => {
    state.checkpoint = Number(slider.value);
    update();
    model.set("checkpoint", state.checkpoint);
    attnSave(model);
  });
  rowSelect.addEventListener("change", update);
  const fromModel = () => {
    if (model.get("checkpoint") === state.checkpoint) return;
    state.checkpoint = model.get("checkpoint");
    slider.value = String(state.checkpoint);
    update();
  };
  model.on("change:checkpoint", fromModel);
  update();
  return () => model.off("change:checkpoint", fromModel);
}

export default { render };
