"""The widgets from Python: built from attnlib arrays, state that round-trips, clear errors.

What the browser does with them is tested in tests/test_browser.py.
"""

import json

import numpy as np
import pytest
from ipywidgets.embed import embed_data

import attnlib
from attnlib.widgets import AttentionMap, MaskExplorer, ModelView, NeuronView, QueryKeyExplorer, TrainingView


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _state(widget) -> dict:
    """The widget's synced state as it is embedded in a static page (JSON round trip)."""
    data = embed_data(views=[widget], drop_defaults=False)
    models = json.loads(json.dumps(data["manager_state"]))["state"]
    return models[widget.model_id]["state"]


# --- QueryKeyExplorer --------------------------------------------------------------------

def test_query_key_explorer_weights_are_attnlibs(rng):
    K, V = rng.normal(size=(7, 2)), rng.normal(size=(7, 3))
    w = QueryKeyExplorer(K, V, query=[0.3, -1.2], scaled=True)
    out, weights = attnlib.scaled_dot_product_attention(np.array([[0.3, -1.2]]), K, V)
    np.testing.assert_allclose(w.weights, weights[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.output, out[0], rtol=0, atol=1e-12)
    assert w.weights.shape == (7,) and w.query.shape == (2,)


def test_query_key_explorer_follows_query_temperature_and_scaling(rng):
    K = rng.normal(size=(5, 2))
    w = QueryKeyExplorer(K)
    w.query = [1.5, 0.5]
    w.temperature = 0.5
    w.scaled = False
    scores = attnlib.dot_product_scores(np.array([[1.5, 0.5]]), K) / 0.5
    np.testing.assert_allclose(w.weights, attnlib.softmax(scores)[0], atol=1e-12)
    assert w.scale == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no values, so no output"):  # V never defaults to K
        _ = w.output
    assert w.V is None and _state(w)["value_points"] == [] and _state(w)["current_output"] == []


def test_query_key_explorer_shows_output_and_scale_only_when_asked(rng):
    K, V = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    plain = _state(QueryKeyExplorer(K))
    assert (plain["show_output"], plain["show_scale"], plain["scaled"]) == (False, False, False)
    later = QueryKeyExplorer(K, V, show_output=True, show_scale=True, scaled=True)
    assert (_state(later)["show_output"], _state(later)["show_scale"]) == (True, True)
    np.testing.assert_allclose(later.output, later.weights @ V, atol=1e-12)
    with pytest.raises(ValueError, match="show_output=True needs the values V"):
        QueryKeyExplorer(K, show_output=True)
    # the plane fits the values only when they are drawn
    assert QueryKeyExplorer(K, 10 * V).extent < QueryKeyExplorer(K, 10 * V, show_output=True).extent


def test_query_key_explorer_python_and_the_view_agree_on_ranges(rng):
    """One rule: a value the view cannot show raises (a ValueError naming the range); nothing moves."""
    w = QueryKeyExplorer(rng.normal(size=(3, 2)), extent=3.0, query=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"outside the plane \[-3, 3\]"):
        w.query = [5.0, 5.0]
    assert w.query.tolist() == [1.0, 1.0]
    w.query = [3.0, -3.0]  # the corners are in the plane
    with pytest.raises(ValueError, match=r"temperature must be in \[0.1, 5\]"):
        w.temperature = 12
    with pytest.raises(ValueError, match="outside the plane"):
        QueryKeyExplorer(np.eye(2), query=[9.0, 0.0])
    assert w.temperature == 1.0 and _state(w)["temperature_max"] == 5.0
    assert "temperature_max" in w._esm and '"Temperature τ", tMin, tMax' in w._esm  # the slider uses them


def test_query_key_explorer_reads_back_a_query_moved_in_the_browser(rng):
    w = QueryKeyExplorer(rng.normal(size=(4, 2)), scaled=True)
    w.query_point = [0.25, -0.75]  # what the front end sets when the reader drags the query
    assert w.query.tolist() == [0.25, -0.75]
    expected = attnlib.softmax(attnlib.scaled_dot_product_scores(np.array([[0.25, -0.75]]), w.K))[0]
    np.testing.assert_allclose(w.weights, expected, atol=1e-12)


def test_query_key_explorer_state_round_trips(rng):
    K, V = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    w = QueryKeyExplorer(K, V, query=[0.5, 0.5], temperature=2.0, labels=list("abcdef"), show_output=True,
                         scaled=True)
    state = _state(w)
    np.testing.assert_array_equal(np.array(state["key_points"]), K)
    np.testing.assert_array_equal(np.array(state["value_points"]), V)
    assert state["query_point"] == [0.5, 0.5]
    assert state["temperature"] == 2.0 and state["scaled"] is True
    assert state["key_labels"] == list("abcdef")
    np.testing.assert_allclose(state["current_weights"], w.weights, atol=0)
    assert state["uid"] == w.uid and state["uid"].startswith("attn-")
    assert state["extent"] >= np.abs(np.concatenate([K, V])).max()  # keys and values fit the plane
    assert "function attnSoftmax" in state["_esm"] and "export default" in state["_esm"]
    assert "data-attnlib-widget" in state["_esm"] and "data-weights" in state["_esm"]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((np.zeros((0, 2)),), {}, ValueError, "n_k=0"),
        ((np.zeros((3, 3)),), {}, ValueError, "shape (n_k, 2)"),
        ((np.zeros(3),), {}, ValueError, "2-D"),
        ((np.zeros((3, 2)), np.zeros((4, 2))), {}, ValueError, "n_k=3 keys but V has 4"),
        (([[0.0, np.nan], [1.0, 1.0]],), {}, ValueError, "finite"),
        (([[0.0, np.inf], [1.0, 1.0]],), {}, ValueError, "finite"),
        ((np.zeros((3, 2)),), {"query": [1.0, 2.0, 3.0]}, ValueError, "shape (2,)"),
        ((np.zeros((3, 2)),), {"query": [np.nan, 0.0]}, ValueError, "finite"),
        ((np.zeros((3, 2)),), {"temperature": 0.0}, ValueError, "temperature"),
        ((np.zeros((3, 2)),), {"temperature": "hot"}, TypeError, "temperature"),
        ((np.zeros((3, 2)),), {"labels": ["a"]}, ValueError, "labels has 1 entries"),
        ((["a", "b"],), {}, TypeError, "numbers"),
    ],
)
def test_query_key_explorer_rejects_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        QueryKeyExplorer(*args, **kwargs)


def test_query_key_explorer_rejects_bad_updates(rng):
    w = QueryKeyExplorer(rng.normal(size=(3, 2)))
    with pytest.raises(ValueError, match="shape"):
        w.query = [1.0]
    with pytest.raises(ValueError, match="temperature"):
        w.temperature = -1.0


def test_no_trait_shadows_widget_keys(rng):
    # ipywidgets' Widget.keys lists the synced traits; a widget trait named `keys` would replace it
    w = QueryKeyExplorer(rng.normal(size=(3, 2)))
    assert {"key_points", "query_point", "uid"} <= set(w.keys)
    assert {"head_weights", "tokens_q"} <= set(AttentionMap(np.eye(2), ["a", "b"]).keys)
    assert {"all_weights", "layer", "head"} <= set(ModelView(np.full((1, 1, 2, 2), 0.5), ["a", "b"]).keys)
    assert {"head_queries", "head_keys", "query"} <= set(NeuronView(np.eye(2), np.eye(2), ["a", "b"]).keys)


# --- AttentionMap and MaskExplorer -------------------------------------------------------

def test_attention_map_shows_multi_head_weights(rng):
    X = rng.normal(size=(5, 8))
    params = attnlib.init_multi_head(8, 2, rng)
    _, weights = attnlib.multi_head_attention(X, X, params, 2)  # (2, 5, 5)
    m = AttentionMap(weights, list("abcde"), head_names=["first", "second"])
    np.testing.assert_allclose(m.weights, weights[0], rtol=0, atol=5e-4)  # kept to 3 decimals
    m.head = 1
    np.testing.assert_allclose(m.weights, weights[1], rtol=0, atol=5e-4)
    state = _state(m)
    np.testing.assert_array_equal(np.array(state["head_weights"]), np.round(weights, 3))  # what the view shows
    np.testing.assert_array_equal(m.weights, np.array(state["head_weights"][1]))  # Python holds the same
    assert state["head"] == 1 and state["head_names"] == ["first", "second"] and state["mode"] == "weights"


def test_attention_map_cross_attention_needs_key_tokens(rng):
    W = attnlib.softmax(rng.normal(size=(2, 3)))
    with pytest.raises(ValueError, match="tokens_k"):
        AttentionMap(W, ["a", "b"])
    m = AttentionMap(W, ["a", "b"], ["x", "y", "z"])
    assert m.tokens_k == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("weights", "tokens", "kwargs", "message"),
    [
        (np.zeros((2, 2, 2, 2)), ["a", "b"], {}, "n_heads, n_q, n_k"),
        (np.zeros((0, 2)), [], {}, "empty"),
        ([[np.nan, 1.0], [0.0, 1.0]], ["a", "b"], {}, "finite"),
        (np.eye(2), ["a"], {}, "tokens has 1 entries"),
        (np.eye(2), ["a", "b"], {"view": "pie"}, "view"),
        (np.ones((2, 2, 2)), ["a", "b"], {"head_names": ["x"]}, "head_names"),
    ],
)
def test_attention_map_rejects_bad_input(weights, tokens, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttentionMap(weights, tokens, **kwargs)


def test_attention_map_rejects_a_head_out_of_range():
    m = AttentionMap(np.eye(2), ["a", "b"])
    with pytest.raises(Exception, match="head must be in 0..0"):
        m.head = 1


def test_mask_explorer_renormalizes_like_attnlib(rng):
    X = rng.normal(size=(4, 6))
    S = attnlib.scaled_dot_product_scores(X, X)
    m = MaskExplorer(S, list("abcd"), causal=True, n_valid=3)
    mask = attnlib.causal_mask(4) & attnlib.padding_mask([3], 4)[0]
    np.testing.assert_array_equal(m.mask, mask)
    np.testing.assert_allclose(m.weights, attnlib.softmax(np.where(mask, S, -np.inf)), atol=1e-12)
    # the same weights as attention with that mask
    _, w = attnlib.scaled_dot_product_attention(X, X, X, mask=mask)
    np.testing.assert_allclose(m.weights, w, atol=1e-12)
    np.testing.assert_allclose(m.weights[:3].sum(axis=-1), 1.0)


def test_mask_explorer_fully_masked_rows_are_zero_not_nan(rng):
    m = MaskExplorer(rng.normal(size=(3, 3)), list("abc"))
    m.n_valid = 0
    assert not np.isnan(m.weights).any()
    np.testing.assert_array_equal(m.weights, np.zeros((3, 3)))
    m.n_valid = 3
    m.causal = False
    np.testing.assert_allclose(m.weights.sum(axis=-1), 1.0)
    with pytest.raises(ValueError, match=r"n_valid \(the number of real keys\) must be in 0..3"):
        m.n_valid = 4
    state = _state(m)
    assert state["mode"] == "masks" and state["head_weights"] == [] and len(state["head_scores"]) == 1


# --- ModelView ----------------------------------------------------------------------------

def _all_heads(rng, n_layers=2, n_heads=3, n=4):
    """Attention weights of a small random model: (n_layers, n_heads, n, n)."""
    return attnlib.softmax(rng.normal(size=(n_layers, n_heads, n, n)))


def test_model_view_shows_the_weights_it_is_given(rng):
    A = _all_heads(rng)
    v = ModelView(A, list("abcd"), layer=1, head=2)
    np.testing.assert_allclose(v.weights, A[1, 2], rtol=0, atol=5e-4)
    v.layer, v.head = 0, 1  # what a click in the browser sets
    np.testing.assert_allclose(v.weights, A[0, 1], rtol=0, atol=5e-4)
    state = _state(v)
    np.testing.assert_array_equal(np.array(state["all_weights"]), np.round(A, 3))  # only shown: 3 decimals
    assert len(json.dumps(state["all_weights"])) < 8 * A.size  # about 7 characters a weight, not 20
    assert state["layer_names"] == ["layer 0", "layer 1"] and state["head_names"] == ["head 0", "head 1", "head 2"]
    assert (state["layer"], state["head"]) == (0, 1) and state["uid"] == v.uid
    assert "data-attnlib-widget" in state["_esm"] and "ModelView" in state["_esm"]
    assert "function attnSoftmax" in state["_esm"] and "export default" in state["_esm"]


def test_model_view_cross_attention_and_names(rng):
    A = attnlib.softmax(rng.normal(size=(1, 2, 2, 3)))  # n_q=2, n_k=3
    with pytest.raises(ValueError, match="tokens_k"):
        ModelView(A, ["a", "b"])
    v = ModelView(A, ["a", "b"], ["x", "y", "z"], layer_names=["enc"], head_names=["h0", "h1"])
    assert v.tokens_k == ["x", "y", "z"] and v.head_names == ["h0", "h1"]
    assert repr(v) == "ModelView(n_layers=1, n_heads=2, n_q=2, n_k=3, layer=0, head=0)"


@pytest.mark.parametrize(
    ("weights", "kwargs", "error", "message"),
    [
        (np.full((2, 2, 2), 0.5), {}, ValueError, r"shape \(n_layers, n_heads, n_q, n_k\)"),
        (np.zeros((0, 2, 2, 2)), {}, ValueError, "n_layers=0"),
        (np.zeros((1, 1, 2, 0)), {}, ValueError, "n_k=0"),
        (np.full((1, 1, 2, 2), np.nan), {}, ValueError, "finite"),
        (np.full((1, 1, 2, 2), 3.0), {}, ValueError, r"weights in \[0, 1\].*not the scores"),
        (np.full((1, 1, 2, 2), -0.5), {}, ValueError, r"from -0.5 to -0.5"),
        ("weights", {}, TypeError, "array of numbers"),
        (np.full((1, 1, 2, 2), 0.5), {"layer": 1}, ValueError, r"layer must be in 0..0, got 1"),
        (np.full((1, 2, 2, 2), 0.5), {"head": -1}, ValueError, r"head must be in 0..1, got -1"),
        (np.full((1, 1, 2, 2), 0.5), {"head": 0.0}, TypeError, "head must be an int"),
        (np.full((1, 1, 2, 2), 0.5), {"layer": True}, TypeError, "layer must be an int"),
        (np.full((2, 1, 2, 2), 0.5), {"layer_names": ["only one"]}, ValueError, "layer_names has 1 entries"),
        (np.full((1, 1, 3, 3), 1 / 3), {}, ValueError, "tokens has 2 entries but there are 3"),
    ],
)
def test_model_view_rejects_bad_input(weights, kwargs, error, message):
    with pytest.raises(error, match=message):
        ModelView(weights, ["a", "b"], **kwargs)


def test_model_view_rejects_a_head_out_of_range(rng):
    v = ModelView(_all_heads(rng), list("abcd"))
    with pytest.raises(ValueError, match="head must be in 0..2, got 3"):
        v.head = 3
    with pytest.raises(ValueError, match="layer must be in 0..1, got 2"):
        v.layer = 2


# --- NeuronView ---------------------------------------------------------------------------

def test_neuron_view_takes_scores_apart_like_attnlib(rng):
    Q, K = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    v = NeuronView(Q, K, list("abcde"), query=2)
    np.testing.assert_array_equal(v.q, Q[2])
    np.testing.assert_allclose(v.products.sum(axis=-1), K @ Q[2], atol=1e-12)  # rows of q∘k sum to q·k
    scores = attnlib.scaled_dot_product_scores(Q, K)  # scale 1/sqrt(8)
    np.testing.assert_allclose(v.scores, scores[2], atol=1e-12)
    _, weights = attnlib.scaled_dot_product_attention(Q, K, K)
    np.testing.assert_allclose(v.weights, weights[2], atol=1e-12)
    assert v.scale == pytest.approx(1 / np.sqrt(8))
    v.query = 4  # what the browser's selector sets
    np.testing.assert_allclose(v.weights, weights[4], atol=1e-12)


def test_neuron_view_several_heads_and_state(rng):
    Q, K = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))  # 2 heads, n_q=3, n_k=5
    v = NeuronView(Q, K, list("abc"), list("vwxyz"), head=1, scale=0.5, head_names=["x", "y"])
    expected = attnlib.softmax(0.5 * K[1] @ Q[1][0])
    np.testing.assert_allclose(v.weights, expected, atol=1e-12)
    state = _state(v)
    np.testing.assert_array_equal(np.array(state["head_queries"]), Q)
    np.testing.assert_array_equal(np.array(state["head_keys"]), K)
    assert state["scale"] == 0.5 and state["head"] == 1 and state["query"] == 0
    assert "NeuronView" in state["_esm"] and "attnScores" in state["_esm"]
    assert repr(v) == "NeuronView(n_heads=2, n_q=3, n_k=5, d_k=4, head=1, query=0)"


@pytest.mark.parametrize(
    ("Q", "K", "kwargs", "error", "message"),
    [
        (np.zeros(3), np.zeros((3, 2)), {}, ValueError, r"Q must have shape \(n_q, d_k\) or \(n_heads, n_q, d_k\)"),
        (np.zeros((2, 2)), np.zeros((2, 3)), {}, ValueError, "Q has d_k=2 but K has d_k=3"),
        (np.zeros((2, 2, 2)), np.zeros((3, 2, 2)), {}, ValueError, "Q has 2 heads but K has 3"),
        (np.zeros((2, 2)), np.zeros((3, 2)), {}, ValueError, "pass tokens_k"),
        (np.zeros((2, 0)), np.zeros((2, 0)), {}, ValueError, "d_k=0"),
        (np.array([[np.inf, 0], [0, 0]]), np.zeros((2, 2)), {}, ValueError, "finite"),
        (np.zeros((2, 2)), [["a", "b"]], {}, TypeError, "K must be an array of numbers"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"query": 2}, ValueError, r"query must be in 0..1, got 2"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"query": "a"}, TypeError, "query must be an int"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"scale": 0.0}, ValueError, "scale must be a positive"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"head_names": ["x", "y"]}, ValueError, "head_names has 2 entries"),
    ],
)
def test_neuron_view_rejects_bad_input(Q, K, kwargs, error, message):
    with pytest.raises(error, match=message):
        NeuronView(Q, K, ["a", "b"], **kwargs)


def test_neuron_view_rejects_a_query_out_of_range(rng):
    v = NeuronView(rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), list("abc"))
    with pytest.raises(ValueError, match="query must be in 0..2, got 3"):
        v.query = 3


# --- one rule for every widget, and state no bigger than the view needs ------------------

def test_mask_explorer_pads_on_the_left_and_shows_the_empty_row_case(rng):
    """Left padding with the causal mask: the pad queries see only pads, so their rows are empty."""
    S = rng.normal(size=(4, 4))
    m = MaskExplorer(S, ["<pad>", "<pad>", "the", "cat"], causal=True, n_valid=2, padding_side="left")
    allowed = attnlib.causal_mask(4) & (np.arange(4) >= 2)[None, :]  # real keys: the last two
    np.testing.assert_array_equal(m.mask, allowed)
    np.testing.assert_array_equal(m.weights[:2], np.zeros((2, 4)))  # fully masked: zeros, never NaN
    np.testing.assert_allclose(m.weights, attnlib.softmax(np.where(allowed, S, -np.inf)), atol=1e-12)
    m.padding_side = "right"  # the same n_valid on the other side: the first two keys
    np.testing.assert_array_equal(m.mask, attnlib.causal_mask(4) & attnlib.padding_mask([2], 4)[0])
    assert _state(m)["padding_side"] == "right"
    with pytest.raises(ValueError, match="padding_side must be one of"):
        m.padding_side = "middle"


def test_attention_map_takes_weights_like_model_view(rng):
    """AttentionMap and ModelView share one rule: weights in [0, 1]; scores go to MaskExplorer."""
    scores = rng.normal(size=(3, 3)) * 2
    for make in (lambda x: AttentionMap(x, list("abc")), lambda x: ModelView(x[None, None], list("abc"))):
        with pytest.raises(ValueError, match="pass the weights, not the scores"):
            make(scores)
    MaskExplorer(scores, list("abc"))  # scores are what it takes


def test_every_widget_rejects_what_its_view_cannot_show(rng):
    A = _all_heads(rng)
    cases = [
        (AttentionMap(A[0], list("abcd")), "head", 3, "head must be in 0..2"),
        (AttentionMap(A[0], list("abcd")), "view", "pie", "view must be one of"),
        (MaskExplorer(A[0], list("abcd")), "n_valid", -1, "must be in 0..4"),
        (ModelView(A, list("abcd")), "layer", 2, "layer must be in 0..1"),
        (NeuronView(np.eye(2), np.eye(2), ["a", "b"]), "query", 2, "query must be in 0..1"),
        (TrainingView([0, 5], A[:, :1], list("abcd"), [0, 5], [2.0, 1.0]), "checkpoint", 2,
         "checkpoint must be in 0..1"),
    ]
    for widget, name, value, message in cases:
        before = getattr(widget, name)
        with pytest.raises(ValueError, match=message):
            setattr(widget, name, value)
        assert getattr(widget, name) == before, f"{type(widget).__name__}.{name} moved"


def test_training_view_keeps_what_it_shows(rng):
    W = attnlib.softmax(rng.normal(size=(3, 2, 5, 5))).astype(np.float32)  # float32, as training makes
    v = TrainingView([0, 10, 20], W, list("abcde"), np.arange(0, 21, 2.5), np.linspace(3, 1, 9))
    state = _state(v)
    np.testing.assert_array_equal(np.array(state["checkpoint_weights"]), np.round(W.astype(float), 3))
    numbers = json.dumps(state["checkpoint_weights"]).replace("[", "").replace("]", "").split(", ")
    assert max(map(len, numbers)) <= 5  # "0.123", not 16 digits
    np.testing.assert_allclose(v.weights, W[-1], rtol=0, atol=5e-4 + 1e-7)
    with pytest.raises(ValueError, match="pass the weights, not the scores"):
        TrainingView([0], 3 * W[:1], list("abcde"), [0], [1.0])


# --- JupyterLab saves widget state (Binder, hubs, make lab) -------------------------------------

def test_jupyterlab_settings_turn_on_saved_widget_state(tmp_path):
    import sys
    from pathlib import Path

    from lab_settings import install_settings

    root = Path(__file__).resolve().parent.parent

    target = install_settings.settings_file(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                  "@jupyter-widgets/jupyterlab-manager:plugin": {"other": 1}}))
    assert install_settings.install(tmp_path) == target
    merged = json.loads(target.read_text())
    assert merged["@jupyter-widgets/jupyterlab-manager:plugin"] == {"other": 1, "saveState": True}
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}  # kept
    # the setting exists in the widget manager that this environment installs
    schema = Path(sys.prefix, "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/schemas",
                  "@jupyter-widgets/jupyterlab-manager/plugin.json")
    assert "saveState" in json.loads(schema.read_text())["properties"]
    assert "tools/lab_settings/install_settings.py" in (root / "postBuild").read_text()  # Binder runs it
