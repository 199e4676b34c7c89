// NeuronView: for one head and one query token, the query q, every key k_j, their elementwise
// product q∘k_j (bars: orange positive, blue negative), the score scale · Σ_c q_c k_jc and the
// softmax weight.  Scores and weights come from attnScores and attnSoftmax (_attnmath.js).

function render({ model, el }) {
  const uid = model.get("uid");
  const vid = attnViewId(uid);
  const tokQ = model.get("tokens_q");
  const tokK = model.get("tokens_k");
  const headNames = model.get("head_names");
  const Qs = model.get("head_queries"); // (n_heads, n_q, d_k)
  const Ks = model.get("head_keys"); // (n_heads, n_k, d_k)
  const scale = model.get("scale");
  const nK = tokK.length;
  const dK = Qs[0][0].length;
  const state = { query: model.get("query"), head: model.get("head") };

  const root = attnEl("div", { class: "attnlib-widget attnlib-neuronview", "data-attnlib-widget": "NeuronView",
    "data-uid": uid }, el);
  attnOwnKeys(root); // arrow keys move the focused control, not the notebook

  // --- controls ---------------------------------------------------------------------------
  const controls = attnEl("div", { class: "attnlib-controls" }, root);
  const querySelect = attnSelect(controls, `${vid}-query`, "Query token", tokQ.map((t, i) => `${t} (${i})`));
  const headSelect = headNames.length > 1 ? attnSelect(controls, `${vid}-head`, "Head", headNames) : null;

  // --- the table: one row for q, then one row per key ---------------------------------------
  const box = attnEl("div", { class: "attnlib-nv-box", role: "group", tabindex: "0",
    "aria-label": "Query, keys, products, scores and weights" }, root);
  const table = attnEl("table", { class: "attnlib-nv" }, box);
  const caption = attnEl("caption", {}, table);
  const headRow = attnEl("tr", {}, attnEl("thead", {}, table));
  for (const h of ["token", `vector (${dK} dims)`, "q × k, entry by entry", "score", "weight"]) attnEl("th", { scope: "col" }, headRow, h);
  attnEl("th", { scope: "col" }, headRow).appendChild(attnEl("span", { class: "attnlib-sr" }, null, "weight as a bar"));
  const body = attnEl("tbody", {}, table);

  function barsCell(tr) {
    const td = attnEl("td", { class: "attnlib-nv-bars", "aria-hidden": "true" }, tr);
    const svg = attnSvg("svg", { viewBox: `0 0 ${dK} 20`, preserveAspectRatio: "none", focusable: "false" }, td);
    attnSvg("line", { x1: 0, x2: dK, y1: 10, y2: 10, class: "attnlib-nv-axis", "vector-effect": "non-scaling-stroke" }, svg);
    const rects = [];
    for (let d = 0; d < dK; d++) rects.push(attnSvg("rect", { x: d + 0.1, width: 0.8 }, svg));
    return rects;
  }
  function drawBars(rects, v, vmax) {
    for (let d = 0; d < dK; d++) {
      const h = vmax > 0 ? (9.5 * Math.abs(v[d])) / vmax : 0;
      rects[d].setAttribute("y", v[d] >= 0 ? 10 - h : 10);
      rects[d].setAttribute("height", h);
      rects[d].setAttribute("class", v[d] >= 0 ? "attnlib-nv-pos" : "attnlib-nv-neg");
    }
  }

  const qRow = attnEl("tr", { class: "attnlib-nv-query" }, body);
  const qHead = attnEl("th", { scope: "row" }, qRow);
  const qBars = barsCell(qRow);
  attnEl("td", {}, qRow, "");
  attnEl("td", { class: "attnlib-num" }, qRow, "");
  attnEl("td", { class: "attnlib-num" }, qRow, "");
  attnEl("td", {}, qRow, "");
  const rows = tokK.map((t) => {
    const tr = attnEl("tr", {}, body);
    attnEl("th", { scope: "row" }, tr, `k: ${t}`);
    const kBars = barsCell(tr);
    const pBars = barsCell(tr);
    const score = attnEl("td", { class: "attnlib-num attnlib-nv-score" }, tr).appendChild(document.createTextNode(""));
    const weight = attnEl("td", { class: "attnlib-num attnlib-nv-weight" }, tr).appendChild(document.createTextNode(""));
    const bar = attnEl("div", { class: "attnlib-nv-wbar" }, attnEl("td", { class: "attnlib-nv-wcell", "aria-hidden": "true" }, tr));
    return { tr, kBars, pBars, score, weight, bar };
  });
  const hint = attnEl("p", { class: "attnlib-scroll-hint", "aria-hidden": "true" }, root,
    "Scroll the table sideways to see the scores and weights →");
  const cue = attnScrollCue(box, hint);
  const legend = attnEl("p", { class: "attnlib-legend" }, root);
  legend.innerHTML = '<span><span class="attnlib-swatch attnlib-swatch-pos"></span> positive</span> '
    + '<span><span class="attnlib-swatch attnlib-swatch-neg"></span> negative</span> '
    + "<span>One bar per dimension; q and the keys share one scale, the products another.</span>";
  const explain = attnEl("p", { class: "attnlib-note", role: "status" }, root);

  function update() {
    const Q = Qs[state.head];
    const K = Ks[state.head];
    const q = Q[state.query];
    const scores = attnScores(q, K, scale); // (n_k,): scale * (q · k_j)
    const w = attnSoftmax(scores); // (n_k,)
    const products = K.map((k) => k.map((x, d) => q[d] * x)); // (n_k, d_k): q∘k_j
    let vmax = 0;
    let pmax = 0;
    for (const x of q) vmax = Math.max(vmax, Math.abs(x));
    for (const k of K) for (const x of k) vmax = Math.max(vmax, Math.abs(x));
    for (const p of products) for (const x of p) pmax = Math.max(pmax, Math.abs(x));
    qHead.textContent = `q: ${tokQ[state.query]}`;
    drawBars(qBars, q, vmax);
    let top = 0;
    for (let j = 1; j < nK; j++) if (w[j] > w[top]) top = j;
    rows.forEach((r, j) => {
      drawBars(r.kBars, K[j], vmax);
      drawBars(r.pBars, products[j], pmax);
      r.score.data = attnFmt(scores[j], 3);
      r.weight.data = attnFmt(w[j], 3);
      r.bar.style.transform = `scaleX(${w[j].toFixed(4)})`;
      r.tr.classList.toggle("attnlib-nv-top", j === top);
    });
    const headText = headNames.length > 1 ? `${headNames[state.head]}, ` : "";
    caption.textContent = `${headText}query “${tokQ[state.query]}”: score = ${attnFmt(scale, 4)} × (sum of q × k, entry by entry), `
      + "weight = softmax of the scores";
    table.setAttribute("data-weights", JSON.stringify(w));
    table.setAttribute("data-scores", JSON.stringify(scores));
    root.setAttribute("data-query", String(state.query));
    root.setAttribute("data-head", String(state.head));
    cue();
    let pos = 0;
    let neg = 0;
    for (const x of products[top]) if (x > 0) pos += x; else neg -= x;
    explain.textContent = `The largest weight, ${attnFmt(w[top], 3)}, goes to “${tokK[top]}”: its entry-by-entry products q × k add up to `
      + `${attnFmt(pos, 2)} (positive bars) − ${attnFmt(neg, 2)} (negative bars) = ${attnFmt(pos - neg, 2)}, `
      + `times ${attnFmt(scale, 4)} gives the score ${attnFmt(scores[top], 3)}, the highest of the ${nK} keys.`;
  }

  function select(query, head, fromUser) {
    state.query = query;
    state.head = head;
    querySelect.value = String(query);
    if (headSelect) headSelect.value = String(head);
    update();
    if (fromUser) {
      model.set("query", query);
      model.set("head", head);
      attnSave(model);
    }
  }
  querySelect.addEventListener("change", () => select(Number(querySelect.value), state.head, true));
  if (headSelect) headSelect.addEventListener("change", () => select(state.query, Number(headSelect.value), true));

  const fromModel = () => {
    if (model.get("query") === state.query && model.get("head") === state.head) return; // already drawn
    select(model.get("query"), model.get("head"), false);
  };
  model.on("change:query", fromModel);
  model.on("change:head", fromModel);
  select(state.query, state.head, false);
  return () => {
    model.off("change:query", fromModel);
    model.off("change:head", fromModel);
  };
}

export default { render };
