// attnlib's static widget host: shows the book's anywidget widgets on the static site, without
// a kernel, require.js or the ipywidgets HTML manager.  Copied to _static/ by tools/site/assets.py.
//
// Jupyter Book (myst-nb) embeds each page's widget state in
//   <script type="application/vnd.jupyter.widget-state+json">{"state": {model_id: {...}}}</script>
// and each widget output as
//   <script type="application/vnd.jupyter.widget-view+json">{"model_id": ...}</script>.
// An anywidget front end is an ES module (the model's `_esm`) whose `render({ model, el })`
// needs only a model with get/set/on/off/save_changes.  This script gives it one, backed by
// the embedded state, and renders every view in a <div> put just before its script tag, as the
// HTML manager does.  Changes stay in the page: with no kernel there is nothing to sync with.
(function () {
  "use strict";

  const STATE = 'script[type="application/vnd.jupyter.widget-state+json"]';
  const VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';

  // A minimal anywidget model: the embedded state plus Backbone-style change events.
  class StaticModel {
    constructor(modelId, state) {
      this.model_id = modelId;
      this._state = Object.assign({}, state);
      this._handlers = {};
      this._changed = false;
    }
    get(name) {
      return this._state[name];
    }
    set(name, value) {
      const old = this._state[name];
      this._state[name] = value;
      if (old !== value) {
        this._changed = true;
        this._emit("change:" + name, value);
      }
    }
    on(event, callback) {
      for (const name of event.split(/\s+/)) (this._handlers[name] = this._handlers[name] || []).push(callback);
    }
    off(event, callback) {
      if (!event) {
        this._handlers = {};
        return;
      }
      for (const name of event.split(/\s+/)) {
        if (!callback) delete this._handlers[name];
        else this._handlers[name] = (this._handlers[name] || []).filter((cb) => cb !== callback);
      }
    }
    save_changes() {
      // No kernel to send the changes to; tell listeners of "change" that a batch ended.
      if (this._changed) {
        this._changed = false;
        this._emit("change", null);
      }
    }
    send() {
      // Custom messages need a kernel.
    }
    _emit(name, value) {
      for (const callback of (this._handlers[name] || []).slice()) callback(this, value);
    }
  }

  const modules = new Map(); // _esm text -> Promise of the widget definition
  const styles = new Set(); // _css texts already added to the page

  function loadWidget(esm) {
    if (!modules.has(esm)) {
      const url = /^https?:\/\//.test(esm) ? esm : URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
      modules.set(esm, import(url).then(async (mod) => {
        let def = mod.default !== undefined ? mod.default : mod;
        if (typeof def === "function") def = await def(); // anywidget's "widget factory" form
        return def;
      }));
    }
    return modules.get(esm);
  }

  function addStyle(css) {
    if (!css || styles.has(css)) return;
    styles.add(css);
    const style = document.createElement("style");
    style.textContent = css;
    document.head.appendChild(style);
  }

  function notice(el, text) {
    const p = document.createElement("p");
    p.className = "attnlib-host-notice";
    p.textContent = text;
    el.appendChild(p);
  }

  async function renderAll() {
    const stateTag = document.querySelector(STATE);
    if (!stateTag) return;
    const models = JSON.parse(stateTag.textContent).state || {};
    const live = new Map(); // model_id -> Promise of an initialized StaticModel
    for (const viewTag of document.querySelectorAll(VIEW)) {
      const modelId = JSON.parse(viewTag.textContent).model_id;
      const el = document.createElement("div");
      el.className = "attnlib-host-view";
      viewTag.parentElement.insertBefore(el, viewTag);
      const spec = models[modelId];
      if (!spec || spec.model_module !== "anywidget") {
        notice(el, "This widget needs a running Jupyter kernel: launch the lab to use it.");
        continue;
      }
      try {
        addStyle(spec.state._css);
        const def = await loadWidget(spec.state._esm);
        if (!live.has(modelId)) {
          live.set(modelId, (async () => {
            const model = new StaticModel(modelId, spec.state);
            if (def.initialize) await def.initialize({ model, experimental: {} });
            return model;
          })());
        }
        const model = await live.get(modelId);
        await def.render({ model, el, experimental: {} });
      } catch (err) {
        notice(el, "This widget could not be shown: " + err);
        console.error("attnlib widget host:", err);
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderAll);
  else renderAll();
})();
