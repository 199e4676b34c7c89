"""The widgets in a real JupyterLab, as a student meets them (issue 23's "Done when").

JupyterLab is started from the project's environment with the settings that Binder and a hub get
(tools/lab_settings/overrides.json: the widget manager saves widget state).  The test opens student
Lab 3 with a few cells added at its end that show each of the other widgets, runs it all, and
drives the lab's QueryKeyExplorer and then the others.  Every control is driven by the mouse and
the keyboard, and each time:

* the widget changes (its ``data-*`` readout),
* the notebook's active cell does not (the arrow keys belong to the focused control), and
* the kernel-side value (read with a kernel request, as a student's next cell would) equals the view's.

Then the saved lab is closed, its kernel shut down, and opened again from the disk: every widget
shows from the saved state (tools/lab_settings/overrides.json turns saving it on).  JupyterLab's
autosave is off in this test's user settings: the widget manager saves only widgets connected to a
kernel, so an autosave of the reopened lab (it marks itself unsaved when it restores the widgets) wrote
the file again with no widget state, and on a slow machine widgets not yet drawn then had no model
(https://github.com/jupyter-widgets/ipywidgets/issues/3888; the labs' "After reopening" note tells
a reader).

Run only this:  .venv/bin/python -m pytest tests/test_browser_jupyterlab.py -p no:nbval
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from lab_settings import install_settings  # tools/lab_settings/install_settings.py

ROOT = Path(__file__).resolve().parent.parent

LAB = ROOT / "notebooks" / "student" / "03-how-attention-works.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "jupyterlab"

SETUP = '''import numpy as np
import attnlib
from attnlib.widgets import AttentionMap, MaskExplorer, ModelView, NeuronView, TrainingView

rng = np.random.default_rng(0)
tokens = "the cat sat on the mat".split()
X = rng.normal(size=(6, 8))
_, heads = attnlib.multi_head_attention(X, X, attnlib.init_multi_head(8, 2, rng), 2)  # (2, 6, 6)'''
WIDGETS = {  # variable name -> the cell that shows it
    "amap": 'amap = AttentionMap(heads, tokens, head_names=["head A", "head B"])\namap',
    "mask": "mask = MaskExplorer(attnlib.scaled_dot_product_scores(X, X), tokens, causal=True)\nmask",
    "mv": "mv = ModelView(np.stack([heads, heads[::-1]]), tokens)  # (2 layers, 2 heads, 6, 6)\nmv",
    "nv": "nv = NeuronView(rng.normal(size=(2, 6, 4)), rng.normal(size=(2, 6, 4)), tokens)\nnv",
    "tv": ("tv = TrainingView([0, 10, 20], np.stack([heads, heads[::-1], heads]), tokens, [0, 10, 20],"
           " [3.0, 2.0, 1.5], checkpoint=0)\ntv"),
}


UNUSED_SERVER_EXTENSIONS = ["jupyter_lsp", "nbgrader.server_extensions.assignment_list",
                            "nbgrader.server_extensions.course_list", "nbgrader.server_extensions.formgrader",
                            "nbgrader.server_extensions.validate_assignment"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """JupyterLab 4 from the project's environment, serving a folder with the student lab in it."""
    work = tmp_path_factory.mktemp("jupyterlab")
    root_dir = work / "notebooks"
    root_dir.mkdir()
    # the student lab, and at its end a few cells that show each of the other widgets (one kernel)
    nb = nbformat.read(LAB, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(SETUP)] + [nbformat.v4.new_code_cell(src) for src in WIDGETS.values()]
    if nb.nbformat_minor < 5:  # cell ids came with nbformat 4.5
        for cell in nb.cells:
            cell.pop("id", None)
    nbformat.write(nb, root_dir / "lab03.ipynb")
    # the environment-wide settings Binder and hubs get, installed into a prefix of our own
    overrides = install_settings.install(work / "prefix")
    # no autosave: a reopened lab saved before its cells run loses its widget state (see the docstring)
    docmanager = work / "user-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    token = secrets.token_hex(16)
    port = _free_port()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(work / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
           "--LabApp.expose_app_in_browser=True", f"--LabApp.app_settings_dir={overrides.parent}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    for extension in UNUSED_SERVER_EXTENSIONS:  # a faster start: server extensions the test does not use
        cmd += ["--ServerApp.jpserver_extensions", f"{extension}=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "jupyterlab.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: see {ARTIFACTS / 'jupyterlab.log'}")
                time.sleep(0.2)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "root": root_dir}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# --- talking to JupyterLab and to the kernel through the page -----------------------------------

KERNEL_EVAL = """async (code) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = "";
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === "stream") out += msg.content.text;
    if (msg.header.msg_type === "error") out += `${msg.content.ename}: ${msg.content.evalue}`;
  };
  await future.done;
  return out;
}"""


def kernel(page, code: str):
    """Run ``code`` in the notebook's kernel; it prints one JSON value, which is returned."""
    out = page.evaluate(KERNEL_EVAL, code)
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"kernel said: {out!r}") from None


def kernel_equals(page, code: str, expected, what: str, timeout: float = 10.0):
    """Poll the kernel until ``code``'s value equals ``expected`` (a change from the view arrives
    through the widget's comm, a moment after the view drew it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = kernel(page, code)
        if np.allclose(np.asarray(value, dtype=float), np.asarray(expected, dtype=float), rtol=0, atol=1e-9):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the kernel has {value}, the view shows {expected}")
        time.sleep(0.1)


def active_cell(page) -> int:
    return page.evaluate("window.jupyterapp.shell.currentWidget.content.activeCellIndex")


def open_notebook(page, lab, name):
    page.goto(f"{lab['url']}/lab/tree/{name}?token={lab['token']}", wait_until="domcontentloaded")
    page.wait_for_function(
        f"""() => {{ const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return !!(w && w.context && w.context.path === {json.dumps(name)} && w.context.isReady
                      && w.sessionContext.session && w.sessionContext.session.kernel
                      && w.sessionContext.session.kernel.status === "idle"); }}""",
        timeout=60_000)


def run_all(page, n_code_cells: int):
    """Run All, and wait until every code cell has run and the kernel is idle."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """(n) => { const nb = window.jupyterapp.shell.currentWidget;
            const done = nb.content.widgets.filter((c) => c.model.type === "code" && c.model.executionCount).length;
            return done >= n && nb.sessionContext.session.kernel.status === "idle"; }""",
        arg=n_code_cells, timeout=60_000)


def n_code(path: Path) -> int:
    return sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)


def keys_stay(page, root, control, keys, what, *, after_click=None):
    """Click ``control`` (the mouse; ``after_click()`` then reads the view), press ``keys``: the
    active cell must not move."""
    control.scroll_into_view_if_needed()
    control.click()
    if after_click is not None:
        after_click()
    before = active_cell(page)
    for key in keys:
        page.keyboard.press(key)
    after = active_cell(page)
    assert after == before, f"{what}: {keys} moved the active cell from {before} to {after}"


def attr(root, name):
    return json.loads(root.get_attribute(name))


# --- the test --------------------------------------------------------------------------------------

def test_widgets_in_jupyterlab_follow_mouse_and_keyboard_and_reopen(jupyterlab, browser):
    problems: list[str] = []
    t0, timings = time.monotonic(), {}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "widget" in m.text.lower() else None)
    page.set_default_timeout(20_000)
    try:
        # 1. student Lab 3: Run All, then the QueryKeyExplorer
        open_notebook(page, jupyterlab, "lab03.ipynb")
        timings["JupyterLab and a kernel up"] = time.monotonic()
        run_all(page, n_code(jupyterlab["root"] / "lab03.ipynb"))
        timings["Run All"] = time.monotonic()
        root = page.locator('[data-attnlib-widget="QueryKeyExplorer"]')
        root.wait_for()
        assert kernel(page, "print(explorer.query.tolist())") == attr(root, "data-query")
        clicked = []
        keys_stay(page, root, root.get_by_label("Query x"), ["ArrowRight"] * 3, "Query x slider",
                  after_click=lambda: clicked.append(attr(root, "data-query")))
        q0, q1 = clicked[0], attr(root, "data-query")
        kernel_equals(page, "print(explorer.query.tolist())", q1, "query after the click")
        assert q1[0] == pytest.approx(q0[0] + 3 * 0.05) and q1[1] == q0[1], f"arrow keys: {q0} -> {q1}"
        kernel_equals(page, "print(explorer.query.tolist())", q1, "query after the arrow keys")
        w1 = attr(root.locator("[data-weights]"), "data-weights")
        kernel_equals(page, "print(explorer.weights.tolist())", w1, "weights after the arrow keys")
        # the mouse: drag the query in the plane
        plane = root.locator("svg").first
        plane.scroll_into_view_if_needed()  # the drag's points must lie inside the viewport
        box = plane.bounding_box()
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.7 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.75 * box["height"], steps=3)
        page.mouse.up()
        # the view redraws on the next frame; under load that can come after mouse.up returns
        page.wait_for_function("([r, q]) => JSON.stringify(JSON.parse(r.getAttribute('data-query'))) !== q",
                               arg=[root.element_handle(), json.dumps(q1, separators=(",", ":"))], timeout=5_000)
        q2 = attr(root, "data-query")
        assert q2[0] < 0 and q2[1] < 0, f"dragging to the lower left put the query at {q2}"
        kernel_equals(page, "print(explorer.query.tolist())", q2, "query after the drag")
        keys_stay(page, root, root.get_by_label("Temperature τ"), ["ArrowLeft", "ArrowLeft"], "temperature")
        kernel_equals(page, "print(explorer.temperature)", float(root.get_by_label("Temperature τ").input_value()),
                      "temperature")
        keys_stay(page, root, root.get_by_label("Divide scores by √d_k = √2"), ["Space"], "the √d_k box")
        scaled = root.get_by_label("Divide scores by √d_k = √2").is_checked()
        kernel_equals(page, "print(int(explorer.scaled))", int(scaled), "the √d_k box")
        kernel_equals(page, "print(explorer.weights.tolist())", attr(root.locator("[data-weights]"), "data-weights"),
                      "weights after temperature and √d_k")
        out = attr(root.locator("[data-output]"), "data-output")
        kernel_equals(page, "print(explorer.output.tolist())", out, "output")
        # Python moves the view, and a query off the plane is refused, leaving both where they were
        kernel(page, "explorer.query = [0.5, -0.5]; print(1)")
        page.wait_for_function("r => JSON.parse(r.getAttribute('data-query'))[0] === 0.5", arg=root.element_handle())
        said = page.evaluate(KERNEL_EVAL, "explorer.query = [9.0, 9.0]")
        assert "ValueError" in said and "outside the plane" in said, said
        assert attr(root, "data-query") == [0.5, -0.5]
        page.screenshot(path=str(ARTIFACTS / "lab03.png"))
        timings["lab 3"] = time.monotonic()

        # 2. every other widget
        drive_other_widgets(page)
        timings["other widgets"] = time.monotonic()
        page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty")
        page.screenshot(path=str(ARTIFACTS / "widgets.png"), full_page=True)

        # 3. reopen the saved notebooks with a new kernel: the widgets show from the saved state
        saved = nbformat.read(jupyterlab["root"] / "lab03.ipynb", as_version=4)
        state = saved.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        ours = [m for m in state.get("state", {}).values() if m.get("model_module") == "anywidget"]
        assert len(ours) >= 1 + len(WIDGETS), "JupyterLab saved no widget state (saveState is off?)"
        # shut the kernel down, close the page, and open the lab again: it is read back from the disk
        page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.close()
        reopened = context.new_page()
        reopened.on("console", lambda m: problems.append(m.text)
                    if m.type == "error" and "widget" in m.text.lower() else None)
        console = []  # everything the reopened page logs, for the record if a widget is not drawn
        reopened.on("console", lambda m: console.append(f"{m.type}: {m.text[:300]}"))
        open_notebook(reopened, jupyterlab, "lab03.ipynb")
        reopened.bring_to_front()  # the active tab: a hidden one gets no animation frames to draw in
        names = ["QueryKeyExplorer", "AttentionMap", "MaskExplorer", "ModelView", "NeuronView", "TrainingView"]
        try:
            # every widget shows, from the saved state. If one is not drawn in 120 s, what the page shows is
            # recorded, and the reader's remedy, reloading the page, is tried once and said in the output
            for attempt in (1, 2):
                try:
                    for name in names:
                        show_widget(reopened, name, timeout=120)
                    break
                except AssertionError as missing:
                    say_why_not_drawn(reopened, attempt, missing, console)
                    if attempt == 2:
                        raise
                    reopened.reload(wait_until="domcontentloaded")
                    open_notebook(reopened, jupyterlab, "lab03.ipynb")
        finally:
            reopened.screenshot(path=str(ARTIFACTS / "reopened-lab03.png"))
        failed = reopened.locator('.jp-OutputArea-output:has-text("Error displaying widget")')
        assert failed.count() == 0, f"after reopening: {failed.all_inner_texts()}"
        qke = reopened.locator('[data-attnlib-widget="QueryKeyExplorer"]')
        assert attr(qke, "data-query") == [0.5, -0.5], "the reopened explorer does not show the saved query"
        qke.scroll_into_view_if_needed()
        reopened.screenshot(path=str(ARTIFACTS / "reopened-lab03.png"))
        # and reopening did not write the file again (an autosave would have dropped the widget state)
        again = nbformat.read(jupyterlab["root"] / "lab03.ipynb", as_version=4)
        assert again.metadata.get("widgets") == saved.metadata.get("widgets"), "the reopened lab was saved again"
        timings["reopened"] = time.monotonic()
    finally:
        context.close()
        marks = [("start", t0)] + list(timings.items())
        steps = zip(marks, marks[1:], strict=False)
        print("JupyterLab test, seconds:", ", ".join(f"{b[0]} {b[1] - a[1]:.1f}" for a, b in steps))
    assert not problems, problems


WIDGET_CELLS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells, found = [];
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== "code") continue;
        for (let j = 0; j < cell.outputs.length; j++) {
            const data = cell.outputs.get(j).data || {};
            if (data["application/vnd.jupyter.widget-view+json"]) { found.push(i); break; }
        }
    }
    return found;
}"""


def show_widget(page, name, *, timeout):
    """Wait until the widget ``name`` is drawn.  JupyterLab 4 draws a long notebook's cells near the viewport
    first and the rest when idle, which a busy machine may postpone: scroll each widget's cell into view, as a
    reader would, until it is there."""
    widget = page.locator(f'[data-attnlib-widget="{name}"]')
    deadline = time.monotonic() + timeout
    while widget.count() == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} was not drawn within {timeout} s of reopening the notebook")
        for index in page.evaluate(WIDGET_CELLS):
            page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.scrollToItem(i, 'center')", index)
            page.wait_for_timeout(150)
            if widget.count():
                break


def say_why_not_drawn(page, attempt, missing, console):
    """Record what a reopened lab shows when a widget is not drawn: each widget cell's output text, whether
    the page is visible, the widget state the notebook was read with, what the page logged, and a screenshot
    (test-artifacts/jupyterlab/), and print it."""
    seen = page.evaluate("""() => ({
        visibility: document.visibilityState, focus: document.hasFocus(),
        saved_models: Object.keys(((window.jupyterapp.shell.currentWidget.context.model.getMetadata("widgets")
            || {})["application/vnd.jupyter.widget-state+json"] || {}).state || {}).length,
        said: [...document.querySelectorAll('.jp-OutputArea-output')].map((o) => o.innerText.slice(0, 120))
            .filter((t) => /widget|error/i.test(t)),
        drawn: [...document.querySelectorAll('[data-attnlib-widget]')].map((w) => w.dataset.attnlibWidget),
        kernel: window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status ?? null,
    })""")
    seen["console"] = console[-60:]
    page.screenshot(path=str(ARTIFACTS / f"reopened-lab03-not-drawn-{attempt}.png"))
    (ARTIFACTS / f"reopened-lab03-not-drawn-{attempt}.json").write_text(json.dumps(seen, indent=1))
    print(f"reopening, attempt {attempt}: {missing}; the page showed {json.dumps(seen)[:3000]}")


def drive_other_widgets(page):
    nb = page.locator(".jp-Notebook")

    # AttentionMap: the head selector by keyboard, a token by the mouse
    root = nb.locator('[data-attnlib-widget="AttentionMap"]')
    keys_stay(page, root, root.get_by_label("Head", exact=True), ["ArrowDown"], "AttentionMap's head menu")
    page.keyboard.press("Escape")  # close the menu if the platform opened one
    head = int(root.get_attribute("data-head"))
    kernel_equals(page, "print(amap.head)", head, "AttentionMap head")
    assert head == 1, "ArrowDown on the head menu did not choose the next head"
    kernel_equals(page, "print(amap.weights.tolist())", attr(root.locator("[data-weights]"), "data-weights"),
                  "AttentionMap weights")

    # MaskExplorer: the causal box by the mouse, real keys and the padding side by the keyboard
    root = nb.locator('[data-attnlib-widget="MaskExplorer"]')
    root.get_by_label("Causal mask (query i sees keys 0…i)").click()
    kernel_equals(page, "print(int(mask.causal))", 0, "MaskExplorer causal")
    keys_stay(page, root, root.get_by_label("Real keys (the rest are padding)"), ["ArrowDown", "ArrowDown"],
              "MaskExplorer's real keys")
    assert root.get_attribute("data-n-valid") == "4"
    keys_stay(page, root, root.get_by_label("Padding on the"), ["ArrowDown"], "MaskExplorer's padding side")
    page.keyboard.press("Escape")
    assert root.get_attribute("data-padding-side") == "left"
    kernel_equals(page, "print([mask.n_valid, int(mask.padding_side == 'left')])", [4, 1], "MaskExplorer padding")
    kernel_equals(page, "print(mask.weights.tolist())", attr(root.locator("[data-weights]"), "data-weights"),
                  "MaskExplorer weights")

    # ModelView: a thumbnail by the mouse, then arrow keys and Enter in the grid
    root = nb.locator('[data-attnlib-widget="ModelView"]')
    keys_stay(page, root, root.locator(".attnlib-mv-thumb").nth(1), ["ArrowDown", "Enter"], "ModelView's grid")
    layer, head = int(root.get_attribute("data-layer")), int(root.get_attribute("data-head"))
    assert (layer, head) == (1, 1), f"click (0, 1) then ArrowDown, Enter enlarged {(layer, head)}"
    kernel_equals(page, "print([mv.layer, mv.head])", [1, 1], "ModelView layer and head")

    # NeuronView: the query token by the keyboard
    root = nb.locator('[data-attnlib-widget="NeuronView"]')
    keys_stay(page, root, root.get_by_label("Query token"), ["ArrowDown", "ArrowDown"], "NeuronView's query menu")
    page.keyboard.press("Escape")
    query = int(root.get_by_label("Query token").input_value())
    assert query == 2
    kernel_equals(page, "print(nv.query)", query, "NeuronView query")
    kernel_equals(page, "print(nv.weights.tolist())", attr(root.locator("[data-weights]"), "data-weights"),
                  "NeuronView weights")

    # TrainingView: the slider by the keyboard
    root = nb.locator('[data-attnlib-widget="TrainingView"]')
    keys_stay(page, root, root.get_by_label("Training step"), ["End", "ArrowLeft"], "TrainingView's slider")
    assert root.get_attribute("data-checkpoint") == "1"  # the last of 3, then one back
    kernel_equals(page, "print(tv.checkpoint)", 1, "TrainingView checkpoint")
    kernel_equals(page, "print(tv.weights.tolist())", attr(root.locator(".attnlib-train-layers"), "data-weights"),
                  "TrainingView weights")
