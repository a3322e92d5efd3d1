"""Keras layers with TT-matrix weights."""

from keras_tt.layers.tt_dense import TTDense

__all__ = ["TTDense"]
