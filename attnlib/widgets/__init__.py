"""Interactive widgets (anywidget): live in Jupyter, and on the static book without a kernel.

The browser redraws them with a JavaScript mirror of attnlib's softmax and scores
(``_attnmath.js``); the Python side computes the inputs and reads the state back
with attnlib.  Each widget's root element carries ``data-attnlib-widget="<Name>"``
and the element showing the weights carries ``data-weights`` (JSON, row-major).
"""

from attnlib.widgets.attention_map import AttentionMap, MaskExplorer
from attnlib.widgets.model_view import ModelView
from attnlib.widgets.neuron_view import NeuronView
from attnlib.widgets.query_key import QueryKeyExplorer
from attnlib.widgets.training_view import TrainingView

__all__ = ["AttentionMap", "MaskExplorer", "ModelView", "NeuronView", "QueryKeyExplorer", "TrainingView"]
