"""Keras layers with TT-matrix weights."""

from keras_tt.layers.low_rank_dense import LowRankDense
from keras_tt.layers.tt_attention import TTMultiHeadAttention
from keras_tt.layers.tt_conv import TTConv1D
from keras_tt.layers.tt_conv import TTConv2D
from keras_tt.layers.tt_dense import TTDense
from keras_tt.layers.tt_einsum_dense import TTEinsumDense
from keras_tt.layers.tt_embedding import TTEmbedding

__all__ = [
    "LowRankDense",
    "TTConv1D",
    "TTConv2D",
    "TTDense",
    "TTEinsumDense",
    "TTEmbedding",
    "TTMultiHeadAttention",
]
