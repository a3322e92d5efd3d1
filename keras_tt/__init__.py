"""keras_tt: Tensor-Train layers for Keras 3.

Fully-connected layers whose weight matrix is stored in TT-matrix format
(Novikov et al., *Tensorizing Neural Networks*, NeurIPS 2015).
"""

__version__ = "0.1.0"

# First: in the `keras-tt` process this answers --help and argument errors
# before the imports below load TensorFlow (other imports: no effect).
from keras_tt import cli as _cli

# Layers.
# TT-matrix mathematics on plain arrays and tensors.
from keras_tt.contraction import contraction_plan
from keras_tt.contraction import tt_matmul

# Compressing trained models: TT-SVD, the Dense -> TTDense pass, its report.
from keras_tt.decomposition import TTDecomposition
from keras_tt.decomposition import tt_error
from keras_tt.decomposition import tt_round
from keras_tt.decomposition import tt_svd

# Export to TFLite/LiteRT (needs the `ai-edge-litert` package at call time).
from keras_tt.export import export_tflite
from keras_tt.export import inspect_tflite

# Initialisers.
from keras_tt.initializers import TTVarianceScaling
from keras_tt.layers import TTDense
from keras_tt.layers import TTEinsumDense
from keras_tt.layers import TTEmbedding
from keras_tt.layers import TTMultiHeadAttention
from keras_tt.modes import auto_modes
from keras_tt.modes import max_tt_ranks
from keras_tt.report import CompressionReport
from keras_tt.report import LayerRecord
from keras_tt.report import model_report
from keras_tt.tensorize import tensorize
from keras_tt.tt_matrix import full_matrix

__all__ = [
    "CompressionReport",
    "LayerRecord",
    "TTDecomposition",
    "TTDense",
    "TTEinsumDense",
    "TTEmbedding",
    "TTMultiHeadAttention",
    "TTVarianceScaling",
    "auto_modes",
    "contraction_plan",
    "export_tflite",
    "full_matrix",
    "inspect_tflite",
    "max_tt_ranks",
    "model_report",
    "tensorize",
    "tt_error",
    "tt_matmul",
    "tt_round",
    "tt_svd",
]
