"""`TTDense` takes `tf.SparseTensor` inputs, as `keras.layers.Dense` does."""

import keras
import numpy as np
import tensorflow as tf

import keras_tt


def test_sparse_inputs_equal_dense_inputs():
    layer = keras_tt.TTDense(6, 2, in_modes=(2, 4))
    layer.build((None, 8))
    dense = np.zeros((3, 8), "float32")
    dense[0, 1], dense[2, 7] = 2.0, -1.5
    sparse = tf.sparse.from_dense(dense)
    expected = dense @ layer.full_kernel() + layer.bias.numpy()
    np.testing.assert_allclose(layer(sparse).numpy(), expected, atol=1e-6)
    inputs = keras.Input((8,), sparse=True)
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_allclose(model(sparse).numpy(), expected, atol=1e-6)
