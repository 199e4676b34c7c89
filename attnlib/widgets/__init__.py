"""Interactive widgets (anywidget): live in Jupyter, and on the static book without a kernel.

The browser redraws them with a JavaScript mirror of attnlib's softmax and scores
(``_attnmath.js``); the Python side computes the inputs and reads the state back
with attnlib.  Each widget's root element carries ``data-attnlib-widget="<Name>"``
and the element showing the weights carries ``data-weights`` (JSON, row-major).

Three rules hold for every widget:

* Keys pressed inside a widget stay in it: a focused slider, menu or thumbnail takes the arrow
  keys, and JupyterLab's notebook shortcuts do not also move the active cell.
* Python holds what the view shows: setting a trait to a value the view cannot show (a query
  outside the plane, a temperature beyond its slider, a head that does not exist, scores where
  weights belong) raises a ``ValueError`` naming the range; nothing is clamped silently.
* The state is no bigger than the view needs: views that only show weights keep them to 3
  decimals (they print 2); views that recompute in the browser keep full floats, so that their
  math agrees with attnlib to 1e-6.
"""

from attnlib.widgets.attention_map import AttentionMap, MaskExplorer
from attnlib.widgets.model_view import ModelView
from attnlib.widgets.neuron_view import NeuronView
from attnlib.widgets.query_key import QueryKeyExplorer
from attnlib.widgets.training_view import TrainingView

__all__ = ["AttentionMap", "MaskExplorer", "ModelView", "NeuronView", "QueryKeyExplorer", "TrainingView"]
