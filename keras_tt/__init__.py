"""keras_tt: Tensor-Train layers for Keras 3.

Fully-connected layers whose weight matrix is stored in TT-matrix format
(Novikov et al., *Tensorizing Neural Networks*, NeurIPS 2015).
"""

__version__ = "0.1.0"

# Layers.
from keras_tt.layers import TTDense

# TT-matrix mathematics on plain arrays and tensors.
from keras_tt.contraction import contraction_plan, tt_matmul
from keras_tt.modes import auto_modes, max_tt_ranks
from keras_tt.tt_matrix import full_matrix

# Initialisers.
from keras_tt.initializers import TTVarianceScaling

__all__ = [
    "TTDense",
    "TTVarianceScaling",
    "auto_modes",
    "contraction_plan",
    "full_matrix",
    "max_tt_ranks",
    "tt_matmul",
]
