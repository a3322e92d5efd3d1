"""`tensorize`: swap the large layers of a trained model for TT layers.

The pass clones the model, replacing each selected layer (by default every
`keras.layers.Dense` with a large enough kernel) by a TT layer whose cores
come from a TT-SVD of the trained weights (`keras_tt.tt_svd`), and copying
the weights of every other layer. It never touches the model it is given.

Modules, in the order the pass uses them: `_arguments` (argument checks),
`_selection` (finding layers, also in wrappers and custom layers),
`_planning` (modes and ranks of each selected layer), `_budget` (ranks
allocated across layers to meet a whole-model ``model_ratio``),
`_converters` (the registry of layer converters; see its docstring to add
one), `_progress`,
`_cloning` (clone, weight copy, compile), `_substitution` (TT layers put
into a whole copy of a model whose class must be kept, such as a keras_hub
``CausalLM``), `_holders` (saving what either route changed) and `_pass`
(the stages).
"""

from keras_tt.report import model_report
from keras_tt.tensorize import _attention  # noqa: F401
from keras_tt.tensorize import _conv  # noqa: F401
from keras_tt.tensorize import _einsum_dense  # noqa: F401
from keras_tt.tensorize import _embedding  # noqa: F401
from keras_tt.tensorize import _experts  # noqa: F401
from keras_tt.tensorize import _holders  # noqa: F401 - registers the loader
from keras_tt.tensorize._budget import BudgetAllocation
from keras_tt.tensorize._budget import LayerAllocation
from keras_tt.tensorize._budget import RankOption
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter
from keras_tt.tensorize._pass import DEFAULT_MIN_PARAMS
from keras_tt.tensorize._pass import tensorize
from keras_tt.tensorize._planning import rank_for_ratio

__all__ = [
    "DEFAULT_MIN_PARAMS",
    "BudgetAllocation",
    "LayerAllocation",
    "LayerConverter",
    "RankOption",
    "model_report",
    "rank_for_ratio",
    "register_converter",
    "tensorize",
]
