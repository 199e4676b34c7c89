// The browser-side mirror of attnlib's math, shared by every attnlib widget.
// It must agree with attnlib.softmax and attnlib.scaled_dot_product_scores to 1e-6;
// tests/test_browser.py checks it on the built book.

// q · k, for two arrays of the same length.
function attnDot(q, k) {
  let s = 0;
  for (let d = 0; d < q.length; d++) s += q[d] * k[d];
  return s;
}

// Scores of one query against every key: s_j = scale * (q · k_j).  (n_k,)
function attnScores(q, K, scale) {
  const s = new Array(K.length);
  for (let j = 0; j < K.length; j++) s[j] = attnDot(q, K[j]) * scale;
  return s;
}

// Stable softmax of one row, as attnlib.softmax: subtract the max; -Infinity entries
// (masked keys) get weight 0; a row that is all -Infinity gives all zeros, never NaN.
function attnSoftmax(x) {
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  if (m === -Infinity) m = 0;
  const e = new Array(x.length);
  let total = 0;
  for (let j = 0; j < x.length; j++) {
    e[j] = Math.exp(x[j] - m);
    total += e[j];
  }
  for (let j = 0; j < x.length; j++) e[j] = total > 0 ? e[j] / total : 0;
  return e;
}

// The weighted combination of the values: out = sum_j w_j v_j.  (d_v,)
function attnWeightedSum(w, V) {
  const out = new Array(V[0].length).fill(0);
  for (let j = 0; j < V.length; j++) {
    for (let d = 0; d < out.length; d++) out[d] += w[j] * V[j][d];
  }
  return out;
}

// Keep an interactive page quiet without a kernel: on a static page a model has no
// comm to sync through, so saving changes throws; the view still works locally.
function attnSave(model) {
  try {
    model.save_changes();
  } catch (err) {
    /* no kernel: nothing to sync with */
  }
}

// Keys pressed inside a widget belong to the widget.  JupyterLab's notebook shortcuts listen on
// the document and treat only editable (:read-write) elements as text fields, so without this an
// arrow key on a focused slider, menu or thumbnail would also move the active cell.  Shortcuts
// with Ctrl, Alt or Meta, Shift+Enter (run the cell) and Escape still reach the notebook.
function attnOwnKeys(root) {
  root.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.key === "Escape"
        || (event.key === "Enter" && event.shiftKey)) return;
    event.stopPropagation();
  });
  return root;
}

// An id prefix for one view of a model (a notebook may display the same widget twice).
let attnViewCount = 0;
function attnViewId(uid) {
  attnViewCount += 1;
  return `${uid}-v${attnViewCount}`;
}

// cividis, sampled from matplotlib at 11 points (attnlib.plotting.CMAP).
const ATTN_CIVIDIS = ["#00224e", "#083370", "#35456c", "#4f576c", "#666970", "#7d7c78",
  "#948e77", "#aea371", "#c8b866", "#e5cf52", "#fee838"];

// Okabe–Ito colours (attnlib.plotting.COLORS).
const ATTN_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

// The cividis colour at t in [0, 1], as [r, g, b] in 0..255.
function attnCividisRGB(t) {
  const x = Math.min(1, Math.max(0, t)) * (ATTN_CIVIDIS.length - 1);
  const i = Math.min(ATTN_CIVIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = ATTN_CIVIDIS[i], b = ATTN_CIVIDIS[i + 1];
  return [1, 3, 5].map((p) => Math.round(parseInt(a.slice(p, p + 2), 16) * (1 - f) + parseInt(b.slice(p, p + 2), 16) * f));
}

function attnCividis(t) {
  const [r, g, b] = attnCividisRGB(t);
  return `rgb(${r}, ${g}, ${b})`;
}

// Text on a cell of colour rgb: white or black, whichever contrasts more (WCAG relative
// luminance; the better of the two is always at least 4.58:1).
function attnTextIsWhite(rgb) {
  const lin = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  const L = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  return 1.05 / (L + 0.05) > (L + 0.05) / 0.05;
}

const ATTN_SVGNS = "http://www.w3.org/2000/svg";

function attnSvg(tag, attrs, parent) {
  const node = document.createElementNS(ATTN_SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function attnEl(tag, attrs, parent, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// A labelled <select> inside `controls`: one option per name, valued by its index.
function attnSelect(controls, id, text, names) {
  const wrap = attnEl("div", { class: "attnlib-control" }, controls);
  attnEl("label", { for: id }, wrap, text);
  const select = attnEl("select", { id }, wrap);
  names.forEach((name, i) => attnEl("option", { value: String(i) }, select, name));
  return select;
}

// A short, stable number format for readable text (data-weights keeps full precision).
function attnFmt(x, digits) {
  const s = x.toFixed(digits);
  return s === "-" + (0).toFixed(digits) ? (0).toFixed(digits) : s;
}

// A box that may scroll sideways (a wide table): when its content overflows, show `hint`
// ("scroll sideways") and shade the edge that hides more, so that no column looks cut off.
function attnScrollCue(box, hint) {
  const check = () => {
    const over = box.scrollWidth > box.clientWidth + 1;
    hint.hidden = !over;
    box.classList.toggle("attnlib-more-right", over && box.scrollLeft + box.clientWidth < box.scrollWidth - 1);
    box.classList.toggle("attnlib-more-left", over && box.scrollLeft > 1);
  };
  box.addEventListener("scroll", check, { passive: true });
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(check).observe(box);
  requestAnimationFrame(check);
  return check;
}

// A heatmap table of weights W (n_q, n_k) inside `parent`: row = query, column = key, colour =
// weight on a fixed 0..1 cividis scale, the numbers as text, data-weights on the table.
// Returns { table, caption, cells, update(W, captionText) }.
function attnHeatTable(parent, tokQ, tokK) {
  const table = attnEl("table", { class: "attnlib-heat" }, parent);
  const caption = attnEl("caption", {}, table);
  const headRow = attnEl("tr", {}, attnEl("thead", {}, table));
  attnEl("th", { scope: "col" }, headRow).appendChild(attnEl("span", { class: "attnlib-sr" }, null, "query \\ key"));
  tokK.forEach((t) => attnEl("th", { scope: "col" }, headRow, t));
  const body = attnEl("tbody", {}, table);
  const cells = tokQ.map((t) => {
    const tr = attnEl("tr", {}, body);
    attnEl("th", { scope: "row" }, tr, t);
    return tokK.map(() => attnEl("td", {}, tr));
  });
  function update(W, captionText) {
    caption.textContent = captionText;
    for (let i = 0; i < W.length; i++) {
      for (let j = 0; j < W[i].length; j++) {
        const rgb = attnCividisRGB(W[i][j]);
        const td = cells[i][j];
        td.textContent = attnFmt(W[i][j], 2);
        td.style.background = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
        td.style.color = attnTextIsWhite(rgb) ? "#ffffff" : "#000000";
      }
    }
    table.setAttribute("data-weights", JSON.stringify(W));
  }
  return { table, caption, cells, update };
}

// A colour bar for the cividis scale of the heatmaps: from 0 to `high` (default 1).
function attnLegend(parent, text, high) {
  const legend = attnEl("p", { class: "attnlib-legend" }, parent);
  attnEl("span", {}, legend, "0");
  attnEl("span", { class: "attnlib-legend-bar", "aria-hidden": "true" }, legend);
  attnEl("span", {}, legend, high === undefined ? "1" : high);
  attnEl("span", { class: "attnlib-legend-text" }, legend, text);
  return legend;
}
