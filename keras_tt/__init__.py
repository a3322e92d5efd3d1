"""keras_tt: Tensor-Train layers for Keras 3.

Layers whose weight matrices are stored in TT-matrix format (Novikov et
al., *Tensorizing Neural Networks*, NeurIPS 2015), a pass that puts trained
models into that format, and an export to TFLite/LiteRT builtin ops.
"""

__version__ = "0.2.0"

# First: in the `keras-tt` process this answers --help and argument errors
# before the imports below load TensorFlow (other imports: no effect).
from keras_tt import cli as _cli

# Then, before TensorFlow loads: importing this module hides TensorFlow's
# INFO start-up notices unless the user set TF_CPP_MIN_LOG_LEVEL.
from keras_tt import _quiet

# Layers.
from keras_tt.layers import LowRankDense
from keras_tt.layers import TTConv1D
from keras_tt.layers import TTConv2D
from keras_tt.layers import TTDense
from keras_tt.layers import TTEinsumDense
from keras_tt.layers import TTEmbedding
from keras_tt.layers import TTMultiHeadAttention

# Initialisers.
from keras_tt.initializers import TTVarianceScaling

# TT-matrix mathematics on plain arrays and tensors.
from keras_tt.contraction import contraction_plan
from keras_tt.contraction import tt_matmul
from keras_tt.modes import TTLayout
from keras_tt.modes import auto_modes
from keras_tt.modes import fast_modes
from keras_tt.modes import max_tt_ranks
from keras_tt.modes import resolve_layout
from keras_tt.tt_matrix import full_matrix

# Compressing trained models: TT-SVD and TT-rounding, the pass, its report.
from keras_tt.decomposition import TTDecomposition
from keras_tt.decomposition import tt_error
from keras_tt.decomposition import tt_round
from keras_tt.decomposition import tt_svd
from keras_tt.report import CompressionReport
from keras_tt.report import LayerRecord
from keras_tt.report import model_report
from keras_tt.tensorize import tensorize

# Export to TFLite/LiteRT (needs the `ai-edge-litert` package at call time).
from keras_tt.export import export_tflite
from keras_tt.export import inspect_tflite

__all__ = [
    # Layers.
    "LowRankDense",
    "TTConv1D",
    "TTConv2D",
    "TTDense",
    "TTEinsumDense",
    "TTEmbedding",
    "TTMultiHeadAttention",
    # Initialisers.
    "TTVarianceScaling",
    # TT-matrix mathematics.
    "TTLayout",
    "auto_modes",
    "fast_modes",
    "contraction_plan",
    "full_matrix",
    "max_tt_ranks",
    "resolve_layout",
    "tt_matmul",
    # Compressing trained models.
    "CompressionReport",
    "LayerRecord",
    "TTDecomposition",
    "model_report",
    "tensorize",
    "tt_error",
    "tt_round",
    "tt_svd",
    # Export.
    "export_tflite",
    "inspect_tflite",
]
