// ModelView: every layer x head as a small heatmap (thumbnail) of its weights on one sentence,
// like bertviz's model view; a click, Enter on the focused thumbnail, or the two selectors
// enlarge one head into a table of its weights.  It draws the weights it is given.

const MV_THUMB = 24; // px: the smallest thumbnail, a touch target

function render({ model, el }) {
  const uid = model.get("uid");
  const vid = attnViewId(uid);
  const tokQ = model.get("tokens_q");
  const tokK = model.get("tokens_k");
  const layerNames = model.get("layer_names");
  const headNames = model.get("head_names");
  const A = model.get("all_weights"); // (n_layers, n_heads, n_q, n_k)
  const nL = layerNames.length;
  const nH = headNames.length;
  const nQ = tokQ.length;
  const nK = tokK.length;
  const state = { layer: model.get("layer"), head: model.get("head") };

  const root = attnEl("div", { class: "attnlib-widget attnlib-modelview", "data-attnlib-widget": "ModelView",
    "data-uid": uid }, el);
  attnOwnKeys(root); // arrow keys move the focused control, not the notebook

  // --- controls: two labelled selectors -------------------------------------------------
  const controls = attnEl("div", { class: "attnlib-controls" }, root);
  const layerSelect = attnSelect(controls, `${vid}-layer`, "Layer", layerNames);
  const headSelect = attnSelect(controls, `${vid}-head`, "Head", headNames);

  // --- the grid of thumbnails: a table of buttons, one tab stop, arrow keys move -----------
  attnEl("p", { class: "attnlib-note", id: `${vid}-help` }, root,
    `All ${nL * nH} heads on one sentence: rows are layers, columns are heads. Click a head to enlarge it `
    + "(keyboard: Tab into the grid, arrow keys, Enter).");
  const gridBox = attnEl("div", { class: "attnlib-mv-gridbox" }, root);
  const grid = attnEl("table", { class: "attnlib-mv-grid" }, gridBox);
  // every thumbnail a target of at least MV_THUMB px: a narrow card scrolls the grid instead
  grid.style.minWidth = `${nH * MV_THUMB + 28}px`;
  attnEl("caption", { class: "attnlib-sr" }, grid, "Thumbnails of every head's weights");
  const headRow = attnEl("tr", {}, attnEl("thead", {}, grid));
  attnEl("th", { scope: "col" }, headRow).appendChild(attnEl("span", { class: "attnlib-sr" }, null, "layer \\ head"));
  headNames.forEach((h) => attnEl("th", { scope: "col", class: "attnlib-mv-colhead" }, headRow,
    h.replace(/^head\s+/i, "")).setAttribute("title", h));
  const body = attnEl("tbody", {}, grid);
  const buttons = [];
  for (let l = 0; l < nL; l++) {
    const tr = attnEl("tr", {}, body);
    attnEl("th", { scope: "row", title: layerNames[l] }, tr, layerNames[l].replace(/^layer\s+/i, ""));
    const row = [];
    for (let h = 0; h < nH; h++) {
      const td = attnEl("td", {}, tr);
      const button = attnEl("button", { type: "button", class: "attnlib-mv-thumb", tabindex: "-1",
        "aria-pressed": "false", "aria-label": `${layerNames[l]}, ${headNames[h]}`,
        "aria-describedby": `${vid}-help` }, td);
      const canvas = attnEl("canvas", { width: nK, height: nQ, "aria-hidden": "true" }, button);
      canvas.style.aspectRatio = `${nK} / ${nQ}`;
      drawThumb(canvas, A[l][h]);
      button.addEventListener("click", () => select(l, h, true));
      button.addEventListener("keydown", (event) => {
        const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0],
          Home: [0, -h], End: [0, nH - 1 - h] };
        const m = moves[event.key];
        if (!m) return;
        event.preventDefault();
        const nl = Math.min(nL - 1, Math.max(0, l + m[0]));
        const nh = Math.min(nH - 1, Math.max(0, h + m[1]));
        roving(nl, nh);
        buttons[nl][nh].focus();
      });
      row.push(button);
    }
    buttons.push(row);
  }

  function drawThumb(canvas, W) {
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(nK, nQ);
    for (let i = 0; i < nQ; i++) {
      for (let j = 0; j < nK; j++) {
        const rgb = attnCividisRGB(W[i][j]);
        const p = 4 * (i * nK + j);
        img.data[p] = rgb[0];
        img.data[p + 1] = rgb[1];
        img.data[p + 2] = rgb[2];
        img.data[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function roving(l, h) {
    buttons.forEach((row, i) => row.forEach((b, j) => b.setAttribute("tabindex", i === l && j === h ? "0" : "-1")));
  }

  // --- the enlarged head ------------------------------------------------------------------
  const big = attnEl("div", { class: "attnlib-mv-big" }, root);
  const heatBox = attnEl("div", { class: "attnlib-map-heat", role: "group", tabindex: "0",
    "aria-label": "The enlarged head's weights as a table" }, big);
  const heat = attnHeatTable(heatBox, tokQ, tokK);
  const hint = attnEl("p", { class: "attnlib-scroll-hint", "aria-hidden": "true" }, big,
    "Scroll the table sideways to see every key →");
  const cue = attnScrollCue(heatBox, hint);
  attnLegend(big, "colour = weight (darker = less weight)");
  const status = attnEl("p", { class: "attnlib-note", role: "status" }, big);

  function update() {
    const { layer: l, head: h } = state;
    buttons.forEach((row, i) => row.forEach((b, j) => {
      const on = i === l && j === h;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("attnlib-mv-selected", on);
    }));
    roving(l, h);
    layerSelect.value = String(l);
    headSelect.value = String(h);
    const name = `${layerNames[l]}, ${headNames[h]}`;
    heat.update(A[l][h], `${name}: row = the token looking, column = the token looked at`);
    root.setAttribute("data-layer", String(l));
    root.setAttribute("data-head", String(h));
    status.textContent = `Showing ${name}.`;
    cue();
  }

  function select(l, h, fromUser) {
    state.layer = l;
    state.head = h;
    update();
    if (fromUser) {
      model.set("layer", l);
      model.set("head", h);
      attnSave(model);
    }
  }
  layerSelect.addEventListener("change", () => select(Number(layerSelect.value), state.head, true));
  headSelect.addEventListener("change", () => select(state.layer, Number(headSelect.value), true));

  const fromModel = () => {
    if (model.get("layer") === state.layer && model.get("head") === state.head) return; // already drawn
    select(model.get("layer"), model.get("head"), false);
  };
  model.on("change:layer", fromModel);
  model.on("change:head", fromModel);
  update();
  return () => {
    model.off("change:layer", fromModel);
    model.off("change:head", fromModel);
  };
}

export default { render };
