// AttentionMap (weights given) and MaskExplorer (scores given; masks switched on and off
// in the browser, the weights renormalized with attnSoftmax from _attnmath.js).

const MAP_ROW = 26; // px per token row, shared by the buttons and the lines

function render({ model, el }) {
  const uid = model.get("uid");
  const vid = attnViewId(uid); // element ids: unique even when one model is shown twice
  const mode = model.get("mode"); // "weights" or "masks"
  const name = mode === "masks" ? "MaskExplorer" : "AttentionMap";
  const tokQ = model.get("tokens_q");
  const tokK = model.get("tokens_k");
  const heads = mode === "masks" ? model.get("head_scores") : model.get("head_weights");
  const headNames = model.get("head_names");
  const nQ = tokQ.length;
  const nK = tokK.length;
  const state = {
    head: model.get("head"),
    view: model.get("view"),
    causal: model.get("causal"),
    nValid: model.get("n_valid"),
    padLeft: model.get("padding_side") === "left",
    focus: null, // {side: "q" | "k", index}
    pinned: null,
  };

  const root = attnEl("div", { class: "attnlib-widget attnlib-map", "data-attnlib-widget": name, "data-uid": uid }, el);
  attnOwnKeys(root); // arrow keys move the focused control, not the notebook

  // --- controls ------------------------------------------------------------------------
  const controls = attnEl("div", { class: "attnlib-controls" }, root);
  let headSelect = null;
  if (heads.length > 1) {
    headSelect = attnSelect(controls, `${vid}-head`, "Head", headNames);
    headSelect.value = String(state.head);
  }
  const viewWrap = attnEl("div", { class: "attnlib-control" }, controls);
  attnEl("label", { for: `${vid}-view` }, viewWrap, "View");
  const viewSelect = attnEl("select", { id: `${vid}-view` }, viewWrap);
  attnEl("option", { value: "lines" }, viewSelect, "lines between tokens");
  attnEl("option", { value: "heatmap" }, viewSelect, "heatmap");
  viewSelect.value = state.view;
  let causalBox = null;
  let validInput = null;
  let sideSelect = null;
  if (mode === "masks") {
    const c = attnEl("div", { class: "attnlib-control attnlib-check" }, controls);
    causalBox = attnEl("input", { type: "checkbox", id: `${vid}-causal` }, c);
    causalBox.checked = state.causal;
    attnEl("label", { for: `${vid}-causal` }, c, "Causal mask (query i sees keys 0…i)");
    const p = attnEl("div", { class: "attnlib-control" }, controls);
    attnEl("label", { for: `${vid}-valid` }, p, "Real keys (the rest are padding)");
    validInput = attnEl("input", { type: "number", id: `${vid}-valid`, min: 0, max: nK, step: 1 }, p);
    validInput.value = state.nValid;
    sideSelect = attnSelect(controls, `${vid}-side`, "Padding on the", ["right", "left"]);
    sideSelect.value = state.padLeft ? "1" : "0";
  }

  // --- lines between tokens (like bertviz's head view) ----------------------------------
  const linesBox = attnEl("div", { class: "attnlib-map-lines" }, root);
  const left = attnEl("div", { class: "attnlib-tokens attnlib-left", role: "group", "aria-label": "Queries" }, linesBox);
  const height = Math.max(nQ, nK) * MAP_ROW;
  const svg = attnSvg("svg", { viewBox: `0 0 200 ${height}`, preserveAspectRatio: "none", height: height,
    "aria-hidden": "true", focusable: "false" }, linesBox);
  const right = attnEl("div", { class: "attnlib-tokens attnlib-right", role: "group", "aria-label": "Keys" }, linesBox);
  const lines = [];
  for (let i = 0; i < nQ; i++) {
    const rowLines = [];
    for (let j = 0; j < nK; j++) {
      rowLines.push(attnSvg("line", { x1: 0, y1: (i + 0.5) * MAP_ROW, x2: 200, y2: (j + 0.5) * MAP_ROW,
        class: "attnlib-map-line", "vector-effect": "non-scaling-stroke" }, svg));
    }
    lines.push(rowLines);
  }
  const qButtons = tokQ.map((t, i) => attnEl("button", { type: "button", "aria-label": `${t} (query ${i})`,
    "aria-pressed": "false" }, left, t));
  const kButtons = tokK.map((t, j) => attnEl("button", { type: "button", "aria-label": `${t} (key ${j + 1})`,
    "aria-pressed": "false" }, right, t));

  // --- the weights as numbers: a table, coloured as a heatmap in that view --------------
  // a box that may scroll sideways: focusable, so that the keyboard can scroll it too (a group,
  // not a landmark: several maps on one page need no unique names)
  const heatBox = attnEl("div", { class: "attnlib-map-heat", role: "group", tabindex: "0",
    "aria-label": "Attention weights as a table" }, root);
  const table = attnEl("table", { class: "attnlib-heat" }, heatBox);
  const caption = attnEl("caption", {}, table);
  const headRow = attnEl("tr", {}, attnEl("thead", {}, table));
  attnEl("th", { scope: "col" }, headRow).appendChild(attnEl("span", { class: "attnlib-sr" }, null, "query \\ key"));
  const colHeads = tokK.map((t) => attnEl("th", { scope: "col" }, headRow, t));
  const body = attnEl("tbody", {}, table);
  const rowHeads = [];
  const rowNotes = [];
  const cells = [];
  for (let i = 0; i < nQ; i++) {
    const tr = attnEl("tr", {}, body);
    const th = attnEl("th", { scope: "row" }, tr, tokQ[i]);
    rowNotes.push(attnEl("span", { class: "attnlib-row-note" }, th));
    rowHeads.push(th);
    cells.push(tokK.map(() => attnEl("td", {}, tr)));
  }
  const hint = attnEl("p", { class: "attnlib-scroll-hint", "aria-hidden": "true" }, root,
    "Scroll the table sideways to see every key →");
  const cue = attnScrollCue(heatBox, hint);
  const legend = attnLegend(root, "colour = weight (darker = less weight)", "largest weight");
  if (mode === "masks") {
    const m = attnEl("span", { class: "attnlib-legend-masked" }, legend);
    attnEl("span", { class: "attnlib-swatch-masked", "aria-hidden": "true" }, m);
    m.appendChild(document.createTextNode(" hatched = masked (weight exactly 0)"));
  }
  const note = attnEl("p", { class: "attnlib-note" }, root);

  // --- recompute and redraw -----------------------------------------------------------
  function allowed(i, j) {
    const real = state.padLeft ? j >= nK - state.nValid : j < state.nValid; // padding keys are not real
    return (!state.causal || j <= i) && real;
  }

  function currentWeights() {
    const M = heads[state.head];
    if (mode !== "masks") return M.map((r) => r.slice());
    return M.map((r, i) => attnSoftmax(r.map((s, j) => (allowed(i, j) ? s : -Infinity))));
  }

  function update() {
    const W = currentWeights();
    let wMax = 0;
    for (const r of W) for (const w of r) wMax = Math.max(wMax, w);
    const f = state.focus;
    let fullyMasked = 0;
    for (let i = 0; i < nQ; i++) {
      const rowMasked = mode === "masks" && W[i].every((_, j) => !allowed(i, j));
      if (rowMasked) fullyMasked++;
      rowNotes[i].textContent = rowMasked ? " (fully masked)" : "";
      rowHeads[i].classList.toggle("attnlib-hl", !!f && f.side === "q" && f.index === i);
      for (let j = 0; j < nK; j++) {
        const w = W[i][j];
        const on = !f || (f.side === "q" ? f.index === i : f.index === j);
        lines[i][j].setAttribute("stroke-opacity", on ? Math.min(1, w / (wMax || 1)) : 0.04);
        lines[i][j].setAttribute("stroke-width", on && f ? 1 + 4 * w : 1 + 2 * w);
        const td = cells[i][j];
        const masked = mode === "masks" && !allowed(i, j);
        if (masked) {
          td.textContent = "0";
          attnEl("span", { class: "attnlib-sr" }, td, " (masked)");
        } else {
          td.textContent = attnFmt(w, 2);
        }
        td.classList.toggle("attnlib-masked", masked);
        td.classList.toggle("attnlib-hl", !!f && (f.side === "q" ? f.index === i : f.index === j));
        if (state.view === "heatmap" && !masked) {
          const rgb = attnCividisRGB(wMax > 0 ? w / wMax : 0);
          td.style.background = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
          td.style.color = attnTextIsWhite(rgb) ? "#ffffff" : "#000000";
        } else {
          td.style.background = "";
          td.style.color = "";
        }
      }
    }
    colHeads.forEach((th, j) => th.classList.toggle("attnlib-hl", !!f && f.side === "k" && f.index === j));
    linesBox.hidden = state.view !== "lines";
    legend.hidden = state.view !== "heatmap" && mode !== "masks";
    const headText = heads.length > 1 ? `, ${headNames[state.head]}` : "";
    caption.textContent = `Attention weights${headText}: row = the token looking, column = the token looked at`
      + (state.view === "heatmap" ? " (darker = less weight)" : "");
    table.setAttribute("data-weights", JSON.stringify(W));
    root.setAttribute("data-head", String(state.head));
    cue();
    if (mode === "masks") {
      root.setAttribute("data-causal", String(state.causal));
      root.setAttribute("data-n-valid", String(state.nValid));
      root.setAttribute("data-padding-side", state.padLeft ? "left" : "right");
      note.textContent = fullyMasked
        ? `${fullyMasked} quer${fullyMasked === 1 ? "y has" : "ies have"} no key to attend to: `
          + "the weights of a fully masked row are all zero (never NaN), and its output is zero."
        : "Each row's weights sum to 1 over the keys it may see; masked keys get exactly 0.";
    } else {
      note.textContent = "Hover over or focus a token to see where it attends (left) or what attends to it (right).";
    }
  }

  function setFocus(side, index) {
    state.focus = side === null ? state.pinned : { side, index };
    update();
  }
  function wire(button, side, index) {
    button.addEventListener("mouseenter", () => setFocus(side, index));
    button.addEventListener("focus", () => setFocus(side, index));
    button.addEventListener("mouseleave", () => setFocus(null));
    button.addEventListener("blur", () => setFocus(null));
    button.addEventListener("click", () => {
      const same = state.pinned && state.pinned.side === side && state.pinned.index === index;
      state.pinned = same ? null : { side, index };
      for (const b of [...qButtons, ...kButtons]) b.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-pressed", same ? "false" : "true");
      setFocus(side, index);
    });
  }
  qButtons.forEach((b, i) => wire(b, "q", i));
  kButtons.forEach((b, j) => wire(b, "k", j));

  if (headSelect) {
    headSelect.addEventListener("change", () => {
      state.head = Number(headSelect.value);
      update();
      model.set("head", state.head);
      attnSave(model);
    });
  }
  viewSelect.addEventListener("change", () => {
    state.view = viewSelect.value;
    update();
    model.set("view", state.view);
    attnSave(model);
  });
  if (causalBox) {
    causalBox.addEventListener("change", () => {
      state.causal = causalBox.checked;
      update();
      model.set("causal", state.causal);
      attnSave(model);
    });
    validInput.addEventListener("input", () => {
      const v = Math.round(Number(validInput.value));
      if (!Number.isFinite(v) || validInput.value === "") return;
      state.nValid = Math.min(nK, Math.max(0, v));
      // the box shows what Python will hold: a number typed beyond 0..n_k is replaced by its limit
      if (String(state.nValid) !== validInput.value) validInput.value = String(state.nValid);
      update();
      model.set("n_valid", state.nValid);
      attnSave(model);
    });
    validInput.addEventListener("change", () => { validInput.value = String(state.nValid); }); // e.g. left empty
    sideSelect.addEventListener("change", () => {
      state.padLeft = sideSelect.value === "1";
      update();
      model.set("padding_side", state.padLeft ? "left" : "right");
      attnSave(model);
    });
  }

  const fromModel = () => {
    if (model.get("head") === state.head && model.get("view") === state.view
        && model.get("causal") === state.causal && model.get("n_valid") === state.nValid
        && (model.get("padding_side") === "left") === state.padLeft) return; // already drawn
    state.head = model.get("head");
    state.view = model.get("view");
    state.causal = model.get("causal");
    state.nValid = model.get("n_valid");
    state.padLeft = model.get("padding_side") === "left";
    if (headSelect) headSelect.value = String(state.head);
    viewSelect.value = state.view;
    if (causalBox) causalBox.checked = state.causal;
    if (validInput) validInput.value = state.nValid;
    if (sideSelect) sideSelect.value = state.padLeft ? "1" : "0";
    update();
  };
  const names = ["change:head", "change:view", "change:causal", "change:n_valid", "change:padding_side"];
  names.forEach((n) => model.on(n, fromModel));
  update();
  return () => names.forEach((n) => model.off(n, fromModel));
}

export default { render };
