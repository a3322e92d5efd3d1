"""`TTDense` for `tf_keras` (Keras 2) models.

The same layer as `keras_tt.TTDense`, built on ``tf_keras.layers.Layer``:
modes and ranks come from `keras_tt.modes.resolve_layout`, the einsum chain
from `keras_tt.contraction.contraction_plan`, the initial variance from
`keras_tt.TTVarianceScaling` and the conversion of a trained ``Dense`` layer
from `keras_tt.tt_svd`, so both layers hold and compute the same thing.

On top of that it carries the hooks tensorflow-model-optimization needs:
``get_prunable_weights`` (magnitude pruning), ``get_clusterable_weights``
(weight clustering) and a per-step hook that
`keras_tt.tf_keras.TTDenseQuantizeConfig` uses to fake-quantize the result
of every contraction step.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras

from keras_tt import modes as modes_lib
from keras_tt.contraction import contraction_plan
from keras_tt.decomposition import TTDecomposition
from keras_tt.initializers import _TRUNCATED_NORMAL_STDDEV_CORRECTION
from keras_tt.initializers import TTVarianceScaling
from keras_tt.layer_decomposition import decompose_for_layer
from keras_tt.layer_decomposition import float_matrix
from keras_tt.layers._tt_base import TTMatrixMixin
from keras_tt.layers._tt_base import as_list
from keras_tt.layers._tt_base import check_given_modes
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import warn_per_core
from keras_tt.tf_keras import _tfmot


def tt_chain(x, cores, in_modes, out_modes, after_step=None):
    """``x @ W`` in TensorFlow ops, ``x`` of shape ``(batch, N)``.

    Runs the steps of `keras_tt.contraction.contraction_plan` (one
    ``tf.einsum`` per core); ``after_step(state, step_number)`` is applied to
    the result of every einsum when given.
    """
    ranks = (1,) + tuple(int(c.shape[-1]) for c in cores)
    state = x
    for number, step in enumerate(contraction_plan(in_modes, out_modes, ranks)):
        core = cores[step.core_index]
        if step.squeeze_core_axes:
            core = tf.squeeze(core, axis=step.squeeze_core_axes)
        state = tf.einsum(
            step.equation, tf.reshape(state, step.state_shape), core
        )
        if after_step is not None:
            state = after_step(state, number)
    return tf.reshape(state, (-1, math.prod(out_modes)))


def _core_initializer(initializer, core_index, input_dim, units, ranks):
    """A tf_keras initialiser for one core.

    Variance-scaling initialisers (``"glorot_uniform"``, ``"he_normal"``, ...)
    target the variance of the full matrix, with the per-core standard
    deviation of `keras_tt.TTVarianceScaling`; others apply to each core.
    """
    if not isinstance(initializer, tf_keras.initializers.VarianceScaling):
        return initializer
    distribution = initializer.distribution
    tt_init = TTVarianceScaling(scale=initializer.scale, mode=initializer.mode)
    stddev = tt_init.core_stddev(input_dim, units, ranks)
    seed = initializer.seed
    seed = None if seed is None else seed + core_index
    if distribution == "truncated_normal":
        return tf_keras.initializers.TruncatedNormal(
            stddev=stddev / _TRUNCATED_NORMAL_STDDEV_CORRECTION, seed=seed
        )
    if distribution in ("untruncated_normal", "normal"):
        return tf_keras.initializers.RandomNormal(stddev=stddev, seed=seed)
    limit = math.sqrt(3.0) * stddev
    return tf_keras.initializers.RandomUniform(-limit, limit, seed=seed)


@tf_keras.utils.register_keras_serializable(package="keras_tt")
class TTDense(TTMatrixMixin, tf_keras.layers.Layer):
    """Densely-connected `tf_keras` layer with a TT-matrix kernel.

    Computes ``output = activation(dot(input, W) + bias)`` where the
    ``input_dim x units`` kernel ``W`` is held as ``d`` cores of shape
    ``(r_{k-1}, n_k, m_k, r_k)`` with ``input_dim = n_1 * ... * n_d`` and
    ``units = m_1 * ... * m_d`` (widths that factor badly are zero-padded):

        W[(i_1..i_d), (j_1..j_d)] =
            G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

    Arguments, modes, ranks, initialisation and the computation are those of
    `keras_tt.TTDense` (see there); this class is its twin for models built
    with ``tf_keras`` (Keras 2), such as the models
    tensorflow-model-optimization works on. The cores are the attributes
    ``core_0`` ... ``core_{d-1}`` (also listed by `cores`).

    For tensorflow-model-optimization the layer implements
    ``get_prunable_weights`` (the cores, for ``prune_low_magnitude``),
    ``get_clusterable_weights`` (the cores, for ``cluster_weights``), and
    `keras_tt.tf_keras.TTDenseQuantizeConfig` is its quantization config.

    Args:
        units: positive integer, dimensionality of the output space.
        tt_rank: positive integer, the TT-rank of every inner bond, or a
            sequence of the ``d - 1`` inner ranks.
        in_modes: optional factors of the input width.
        out_modes: optional factors of ``units``.
        activation: activation function to use.
        use_bias: boolean, whether the layer uses a bias vector.
        kernel_initializer: initialiser for the cores; variance-scaling
            initialisers set the variance of the full matrix.
        bias_initializer: initialiser for the bias vector.
        kernel_regularizer: regulariser applied to each core.
        bias_regularizer: regulariser applied to the bias vector.
        activity_regularizer: regulariser applied to the output.
        kernel_constraint: constraint applied to each core.
        bias_constraint: constraint applied to the bias vector.
        **kwargs: base layer keyword arguments, such as ``name``.

    Input shape:
        N-D tensor with shape ``(batch_size, ..., input_dim)``, N >= 2.

    Output shape:
        N-D tensor with shape ``(batch_size, ..., units)``.

    Example:

    >>> import tf_keras
    >>> from keras_tt.tf_keras import TTDense
    >>> layer = TTDense(64, tt_rank=4, in_modes=(4, 8, 4), out_modes=(4, 4, 4))
    >>> tuple(layer(tf_keras.backend.ones((2, 128))).shape)
    (2, 64)
    >>> layer.tt_ranks, [tuple(c.shape) for c in layer.cores]
    ((1, 4, 4, 1), [(1, 4, 4, 4), (4, 8, 4, 4), (4, 4, 4, 1)])
    """

    def __init__(
        self,
        units,
        tt_rank,
        in_modes=None,
        out_modes=None,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        units = modes_lib.check_width(units, "units")
        modes_lib.check_tt_rank_argument(tt_rank)
        in_modes, out_modes = check_given_modes(
            units, tt_rank, in_modes, out_modes
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        self.tt_rank = normalize_tt_rank(tt_rank)
        self._given_in_modes = in_modes
        self._given_out_modes = out_modes
        self.in_modes = in_modes
        self.out_modes = out_modes
        self.activation = tf_keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = tf_keras.initializers.get(kernel_initializer)
        self.bias_initializer = tf_keras.initializers.get(bias_initializer)
        self.kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = tf_keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = tf_keras.constraints.get(kernel_constraint)
        self.bias_constraint = tf_keras.constraints.get(bias_constraint)
        self.input_spec = tf_keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True
        self.input_dim = None
        self.tt_ranks = None
        self.bias = None
        # Set by `TTDenseQuantizeConfig`: one callable per contraction step.
        self.step_quantizers = None
        _tfmot.register_if_loaded()

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank is None or input_shape.rank < 2:
            raise ValueError(
                "`TTDense` expects inputs of rank >= 2, (batch_size, ..., "
                f"input_dim). Received: input_shape={input_shape}"
            )
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the input to `TTDense` must be known. "
                f"Received: input_shape={input_shape}"
            )
        self.input_dim = modes_lib.check_width(int(input_dim), "input_dim")
        layout = self._resolve_kernel_layout()
        for k, shape in enumerate(layout.core_shapes):
            core = self.add_weight(
                name=f"core_{k}",
                shape=shape,
                initializer=_core_initializer(
                    self.kernel_initializer,
                    k,
                    self.input_dim,
                    self.units,
                    self.tt_ranks,
                ),
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
                trainable=True,
            )
            setattr(self, f"core_{k}", core)
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                trainable=True,
            )
        self.input_spec = tf_keras.layers.InputSpec(
            min_ndim=2, axes={-1: self.input_dim}
        )
        self.built = True

    # ------------------------------------------------------------- properties

    @property
    def core_names(self):
        """Names of the attributes holding the cores: ``core_0``, ..."""
        return [f"core_{k}" for k in range(len(self.in_modes or ()))]

    @property
    def cores(self):
        """The cores, in order (variables, or the tensors a wrapper set)."""
        return [getattr(self, name) for name in self.core_names]

    def full_kernel(self):
        """The ``(input_dim, units)`` kernel the cores stand for, as NumPy."""
        self._check_built("full_kernel")
        return self._full_matrix([np.asarray(c) for c in self.cores])

    # -------------------------------------------------- model optimization

    def get_prunable_weights(self):
        """The cores, for ``tfmot.sparsity.keras.prune_low_magnitude``."""
        return self.cores

    def get_clusterable_weights(self):
        """``(name, core)`` pairs, for ``tfmot.clustering.keras``."""
        return [(name, getattr(self, name)) for name in self.core_names]

    def get_clusterable_algorithm(self, weight_name):
        """``None``: tfmot's default lookup suits cores of any shape."""
        return None

    # ------------------------------------------------------------------ call

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        if not inputs.dtype.is_floating:
            inputs = tf.cast(inputs, self.compute_dtype)
        x = tf.reshape(inputs, (-1, self.input_dim))
        if self.padded_input_dim > self.input_dim:
            x = tf.pad(x, [[0, 0], [0, self.padded_input_dim - self.input_dim]])
        after_step = None
        if self.step_quantizers:
            quantizers = self.step_quantizers

            def after_step(state, number):
                return quantizers[number](state)

        y = tt_chain(x, self.cores, self.in_modes, self.out_modes, after_step)
        if self.padded_units > self.units:
            y = y[:, : self.units]
        if inputs.shape.rank != 2:
            y = tf.reshape(
                y, tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0)
            )
        if self.bias is not None:
            y = tf.nn.bias_add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.units])

    # --------------------------------------------------------- serialisation

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "tt_rank": self._config_tt_rank(),
                "in_modes": as_list(self._given_in_modes),
                "out_modes": as_list(self._given_out_modes),
                "activation": tf_keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": tf_keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": tf_keras.initializers.serialize(
                    self.bias_initializer
                ),
                "kernel_regularizer": tf_keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "bias_regularizer": tf_keras.regularizers.serialize(
                    self.bias_regularizer
                ),
                "kernel_constraint": tf_keras.constraints.serialize(
                    self.kernel_constraint
                ),
                "bias_constraint": tf_keras.constraints.serialize(
                    self.bias_constraint
                ),
            }
        )
        return config


def dense_to_tt_dense(
    dense_layer,
    tt_rank=None,
    rel_error=None,
    in_modes=None,
    out_modes=None,
    name=None,
    callback=None,
) -> tuple[TTDense, TTDecomposition]:
    """A built tf_keras `TTDense` from a trained ``tf_keras`` ``Dense`` layer.

    The twin of `keras_tt.TTDense.from_dense` for ``tf_keras``: the cores are
    a TT-SVD (`keras_tt.tt_svd`) of the Dense kernel (zero-padded first when
    the modes pad the widths); bias, activation, regularisers, constraints,
    dtype and trainability are copied, the name too unless ``name`` is
    given. The Dense layer is not modified.

    Args:
        dense_layer: a built ``tf_keras.layers.Dense`` layer.
        tt_rank: positive integer capping every inner TT-rank, or a sequence
            of the ``d - 1`` inner ranks.
        rel_error: relative Frobenius error allowed, strictly between 0 and
            1; the smallest ranks that meet it are used.
        in_modes: optional input modes.
        out_modes: optional output modes.
        name: optional name of the new layer.
        callback: passed to `keras_tt.tt_svd`.

    Returns:
        ``(layer, decomposition)``: the built `TTDense` and the
        `keras_tt.TTDecomposition` it holds.
    """
    check_trained_layer(dense_layer, tf_keras.layers.Dense, "dense_layer")
    result = decompose_for_layer(
        float_matrix(dense_layer.kernel.numpy()),
        tt_rank=tt_rank,
        rel_error=rel_error,
        in_modes=in_modes,
        out_modes=out_modes,
        callback=callback,
        layer_name=dense_layer.name,
    )
    input_dim, units = result.layout.input_dim, result.layout.units
    warn_per_core(
        dense_layer.name,
        "kernel",
        dense_layer.kernel_regularizer,
        dense_layer.kernel_constraint,
        whole="kernel",
        stacklevel=3,
    )
    layer = TTDense(
        units,
        tt_rank=result.tt_rank,
        in_modes=in_modes,
        out_modes=out_modes,
        activation=dense_layer.activation,
        use_bias=dense_layer.use_bias,
        kernel_regularizer=dense_layer.kernel_regularizer,
        bias_regularizer=dense_layer.bias_regularizer,
        activity_regularizer=dense_layer.activity_regularizer,
        kernel_constraint=dense_layer.kernel_constraint,
        bias_constraint=dense_layer.bias_constraint,
        name=name or dense_layer.name,
        dtype=dense_layer.dtype_policy,
        trainable=dense_layer.trainable,
    )
    layer.build((None, input_dim))
    for variable, core in zip(layer.cores, result.decomposition.cores):
        variable.assign(np.asarray(core, variable.dtype.as_numpy_dtype))
    if dense_layer.use_bias:
        layer.bias.assign(dense_layer.bias)
    return layer, result.decomposition
