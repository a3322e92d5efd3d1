"""`LowRankDense`: the low-rank ("matrix rank") baseline for TT layers."""

from __future__ import annotations

import math

import keras

from keras_tt.layers._tt_base import check_param_count
from keras_tt.modes import is_positive_int


@keras.saving.register_keras_serializable(package="keras_tt")
class LowRankDense(keras.layers.Layer):
    """Densely-connected layer whose kernel is a product of two thin factors.

    `LowRankDense` computes ``output = activation(dot(dot(input, U), V) +
    bias)``: the ``input_dim x units`` kernel ``W = U V`` is stored as
    ``U`` of shape ``(input_dim, rank)`` and ``V`` of shape
    ``(rank, units)``, so it has rank at most ``rank`` and holds
    ``rank * (input_dim + units)`` parameters. This is the "matrix rank"
    (MR) baseline that *Tensorizing Neural Networks* (Novikov et al., 2015)
    compares TT layers with at equal parameter counts.

    Initialisation. ``U`` and ``V`` are drawn uniformly with the same
    variance ``s^2 = sqrt(v / rank)``, where ``v = 2 / (input_dim + units)``
    is Glorot's, so every entry of ``W`` (a sum of ``rank`` products of two
    such entries) has variance ``rank * s^4 = v``, like `keras.layers.Dense`
    and `keras_tt.TTDense` with their default ``"glorot_uniform"``.

    Args:
        units: positive integer, dimensionality of the output space.
        rank: positive integer, the inner dimension of ``U V``.
        activation: activation function to use. If you don't specify
            anything, no activation is applied.
        use_bias: boolean, whether the layer uses a bias vector.
        bias_initializer: initialiser for the bias vector.
        **kwargs: base layer keyword arguments, such as ``name`` and
            ``dtype``.

    Input shape:
        N-D tensor with shape ``(batch_size, ..., input_dim)``, N >= 2.

    Output shape:
        N-D tensor with shape ``(batch_size, ..., units)``.

    Example:

    >>> import keras, numpy as np, keras_tt
    >>> layer = keras_tt.layers.LowRankDense(32, rank=4)
    >>> x = np.ones((2, 64), "float32")
    >>> y = layer(x)
    >>> tuple(y.shape), layer.num_factor_params
    ((2, 32), 384)
    >>> np.linalg.matrix_rank(layer.full_kernel())
    np.int64(4)
    >>> bool(np.allclose(y, x @ layer.full_kernel(), atol=1e-5))
    True
    """

    def __init__(
        self,
        units,
        rank,
        activation=None,
        use_bias=True,
        bias_initializer="zeros",
        **kwargs,
    ):
        for name, value in (("units", units), ("rank", rank)):
            if not is_positive_int(value):
                raise ValueError(
                    f"Received an invalid value for `{name}`, expected a "
                    f"positive integer. Received: {name}={value!r}"
                )
        if not isinstance(use_bias, bool):
            raise TypeError(
                "Received an invalid value for `use_bias`, expected a "
                f"boolean. Received: use_bias={use_bias!r}"
            )
        super().__init__(**kwargs)
        self.units = int(units)
        self.rank = int(rank)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None or not is_positive_int(input_dim):
            raise ValueError(
                "Received an invalid input shape, expected a known positive "
                f"last dimension. Received: input_shape={input_shape}"
            )
        input_dim = int(input_dim)
        # Factors of a rank above min(input_dim, units) add nothing; allow
        # up to the factor-times-dense bound of the TT layers.
        check_param_count(
            self.rank * (input_dim + self.units),
            input_dim * self.units,
            "rank",
            self.rank,
            f"factors of rank {self.rank} for a {input_dim} x {self.units} "
            "kernel",
        )
        variance = 2.0 / (input_dim + self.units)
        limit = math.sqrt(3.0) * (variance / self.rank) ** 0.25
        initializer = keras.initializers.RandomUniform(-limit, limit)
        self.u = self.add_weight(
            name="u", shape=(input_dim, self.rank), initializer=initializer
        )
        self.v = self.add_weight(
            name="v", shape=(self.rank, self.units), initializer=initializer
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
            )
        self.input_spec = keras.layers.InputSpec(
            min_ndim=2, axes={-1: input_dim}
        )

    @property
    def num_factor_params(self):
        """Parameters of ``U`` and ``V``: ``rank * (input_dim + units)``."""
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet; `num_factor_params` "
                "is known once the input width is."
            )
        return int(self.u.shape[0] + self.units) * self.rank

    def full_kernel(self):
        """The ``(input_dim, units)`` kernel ``U V``, as NumPy."""
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet; call it on an input "
                "before asking for `full_kernel()`."
            )
        ops = keras.ops
        return ops.convert_to_numpy(ops.matmul(self.u, self.v))

    def call(self, inputs):
        ops = keras.ops
        y = ops.matmul(ops.matmul(inputs, self.u), self.v)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "rank": self.rank,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
        }
