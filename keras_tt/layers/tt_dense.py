"""`TTDense`: a fully-connected layer whose kernel is a TT-matrix."""

from __future__ import annotations

import math
import numbers

import keras
import tensorflow as tf
from keras import activations
from keras import constraints
from keras import initializers
from keras import regularizers

from keras_tt import modes as modes_lib
from keras_tt.contraction import tt_matmul
from keras_tt.initializers import as_tt_initializer
from keras_tt.tt_matrix import full_matrix
from keras_tt.tt_matrix import num_tt_params


@keras.saving.register_keras_serializable(package="keras_tt")
class TTDense(keras.layers.Layer):
    """Densely-connected layer with its kernel stored in TT-matrix format.

    `TTDense` computes ``output = activation(dot(input, W) + bias)`` like
    `keras.layers.Dense`, but never stores the ``input_dim x units`` kernel
    ``W``. Instead the input width factors into modes
    ``N = n_1 * ... * n_d`` and ``units`` into ``M = m_1 * ... * m_d``, and
    ``W`` is kept as ``d`` small cores ``G_k`` of shape
    ``(r_{k-1}, n_k, m_k, r_k)`` (Novikov et al., *Tensorizing Neural
    Networks*, 2015):

        W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

    with row and column indices flattened in C order and ``r_0 = r_d = 1``.
    The ``r_k`` are the TT-ranks: they trade accuracy for size. The layer
    holds ``sum_k r_{k-1} n_k m_k r_k`` kernel parameters instead of ``N M``,
    and multiplies by ``W`` through a chain of ``d`` einsum contractions
    without forming it.

    Modes. When ``in_modes`` / ``out_modes`` are not given, each width is
    split into the same number ``d`` of balanced modes, each at most 8 where
    possible (25088 becomes ``(8, 7, 7, 4, 4, 4)``). A width whose prime
    factors are not all at most 7 (a prime such as 1021) is first padded to
    the nearest larger width that has this property (1024): the input is
    zero-padded and the extra outputs are dropped, which the user never sees
    except in `padded_input_dim` and `padded_units`. Modes given explicitly
    must multiply to the width exactly.

    Args:
        units: positive integer, dimensionality of the output space.
        tt_rank: positive integer, the TT-rank of every inner bond, or a
            sequence of the ``d - 1`` inner ranks. Ranks above the largest
            useful one at a bond, ``min(prod_{i<=k} n_i m_i,
            prod_{i>k} n_i m_i)``, are lowered to it with a warning.
        in_modes: optional sequence of positive integers whose product is the
            input width.
        out_modes: optional sequence of positive integers whose product is
            ``units``, of the same length as ``in_modes``.
        activation: activation function to use. If you don't specify
            anything, no activation is applied.
        use_bias: boolean, whether the layer uses a bias vector.
        kernel_initializer: initialiser for the cores. Keras's
            variance-scaling initialisers (``"glorot_uniform"``, the default,
            ``"glorot_normal"``, ``"he_normal"``, ``"lecun_normal"``, ...)
            set the variance of the *full* matrix ``W`` (see
            `keras_tt.initializers.TTVarianceScaling`); any other initialiser
            is applied to each core as it is.
        bias_initializer: initialiser for the bias vector.
        kernel_regularizer: regulariser applied to each core.
        bias_regularizer: regulariser applied to the bias vector.
        activity_regularizer: regulariser applied to the output.
        kernel_constraint: constraint applied to each core.
        bias_constraint: constraint applied to the bias vector.
        **kwargs: base layer keyword arguments, such as ``name`` and
            ``dtype``.

    Input shape:
        N-D tensor with shape ``(batch_size, ..., input_dim)``, N >= 2.

    Output shape:
        N-D tensor with shape ``(batch_size, ..., units)``.

    Example:

    >>> import keras, keras_tt
    >>> layer = keras_tt.TTDense(64, tt_rank=4, in_modes=(4, 8, 4),
    ...                          out_modes=(4, 4, 4))
    >>> y = layer(keras.ops.ones((2, 128)))
    >>> tuple(y.shape)
    (2, 64)
    >>> layer.tt_ranks
    (1, 4, 4, 1)
    >>> [tuple(c.shape) for c in layer.cores]
    [(1, 4, 4, 4), (4, 8, 4, 4), (4, 4, 4, 1)]
    >>> round(layer.compression_ratio, 1)
    12.8
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
        if not modes_lib.is_positive_int(units):
            raise ValueError(
                "Received an invalid value for `units`, expected a positive "
                f"integer. Received: units={units!r}"
            )
        modes_lib.check_tt_rank_argument(tt_rank)
        if in_modes is not None:
            in_modes = modes_lib.validate_modes(in_modes, "in_modes")
        if out_modes is not None:
            out_modes = modes_lib.validate_modes(out_modes, "out_modes", units)
        if (
            in_modes is not None
            and out_modes is not None
            and len(in_modes) != len(out_modes)
        ):
            raise ValueError(
                "Received invalid values for `in_modes` and `out_modes`, "
                "expected sequences of the same length. Received: "
                f"in_modes={in_modes} (length {len(in_modes)}), "
                f"out_modes={out_modes} (length {len(out_modes)})"
            )
        num_cores = len(in_modes or out_modes or ())
        if num_cores and not isinstance(tt_rank, numbers.Integral):
            modes_lib.resolve_tt_ranks(
                tt_rank, (1,) * num_cores, (1,) * num_cores, warn=False
            )

        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        self.tt_rank = (
            tt_rank
            if isinstance(tt_rank, numbers.Integral)
            else (tuple(int(r) for r in tt_rank))
        )
        self.in_modes = in_modes
        self.out_modes = out_modes
        self._given_in_modes = in_modes
        self._given_out_modes = out_modes
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True
        self.input_dim = None
        self.tt_ranks = None
        self.cores = []
        self.bias = None

    # ------------------------------------------------------------------ build

    def _resolve_modes(self, input_dim):
        in_modes, out_modes = self._given_in_modes, self._given_out_modes
        if in_modes is not None:
            in_modes = modes_lib.validate_modes(in_modes, "in_modes", input_dim)
        if in_modes is None and out_modes is None:
            return modes_lib.auto_modes(input_dim, self.units)
        if out_modes is None:
            out_modes = modes_lib.split_width(self.units, len(in_modes))
        if in_modes is None:
            in_modes = modes_lib.split_width(input_dim, len(out_modes))
        return in_modes, out_modes

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the input to `TTDense` must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.input_dim = int(input_dim)
        self.in_modes, self.out_modes = self._resolve_modes(self.input_dim)
        self.tt_ranks = modes_lib.resolve_tt_ranks(
            self.tt_rank, self.in_modes, self.out_modes
        )
        tt_init = as_tt_initializer(self.kernel_initializer)
        self.cores = []
        for k, (n, m) in enumerate(zip(self.in_modes, self.out_modes)):
            if tt_init is None:
                initializer = self.kernel_initializer
            else:
                initializer = tt_init.core_initializer(
                    k, self.input_dim, self.units, self.tt_ranks
                )
            self.cores.append(
                self.add_weight(
                    name=f"core_{k}",
                    shape=(self.tt_ranks[k], n, m, self.tt_ranks[k + 1]),
                    initializer=initializer,
                    regularizer=self.kernel_regularizer,
                    constraint=self.kernel_constraint,
                )
            )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(
            min_ndim=2, axes={-1: self.input_dim}
        )

    # ------------------------------------------------------------- properties

    @property
    def padded_input_dim(self):
        """Input width after zero-padding: the product of `in_modes`."""
        return math.prod(self.in_modes) if self.in_modes else None

    @property
    def padded_units(self):
        """Output width before the extra outputs are dropped."""
        return math.prod(self.out_modes) if self.out_modes else None

    @property
    def num_core_params(self):
        """Number of kernel parameters held in the cores."""
        self._check_built("num_core_params")
        return num_tt_params(self.in_modes, self.out_modes, self.tt_ranks)

    @property
    def compression_ratio(self):
        """Dense kernel size ``input_dim * units`` over the total core size."""
        self._check_built("compression_ratio")
        return self.input_dim * self.units / self.num_core_params

    def full_kernel(self):
        """The ``(input_dim, units)`` kernel the cores stand for, as NumPy."""
        self._check_built("full_kernel")
        matrix = full_matrix([c.numpy() for c in self.cores])
        return matrix[: self.input_dim, : self.units]

    def _check_built(self, what):
        if not self.built:
            raise ValueError(
                f"`{what}` is only known once the layer is built; call the "
                "layer on an input or call `build(input_shape)` first."
            )

    @classmethod
    def from_dense(
        cls,
        dense_layer: keras.layers.Dense,
        tt_rank=None,
        rel_error: float | None = None,
        in_modes=None,
        out_modes=None,
        name: str | None = None,
    ) -> TTDense:
        """A `TTDense` layer initialised from a trained `Dense` layer.

        The cores are a TT-SVD (`keras_tt.tt_svd`) of the Dense kernel,
        zero-padded first when the modes pad the widths; bias, activation,
        dtype policy, trainability, bias regulariser/constraint and activity
        regulariser are copied, and the name too unless ``name`` is given.
        The Dense layer is not modified. Its kernel regulariser and
        constraint are not carried over (they were defined on the dense
        kernel, not on cores).

        Args:
            dense_layer: a built `keras.layers.Dense` layer.
            tt_rank: positive integer capping every inner TT-rank, or a
                sequence of the ``d - 1`` inner ranks.
            rel_error: relative Frobenius error allowed,
                ``||W - W_tt||_F <= rel_error * ||W||_F``, strictly between 0
                and 1; the smallest ranks that meet it are used (capped by
                ``tt_rank`` when both are given). At least one of ``tt_rank``
                and ``rel_error`` is required.
            in_modes: optional input modes (see `TTDense`).
            out_modes: optional output modes.
            name: optional name of the new layer.

        Returns:
            A built `TTDense` layer, not attached to any model.

        Example:

        >>> import keras, keras_tt
        >>> dense = keras.layers.Dense(64, activation="relu")
        >>> dense.build((None, 128))
        >>> tt = keras_tt.TTDense.from_dense(dense, tt_rank=64)
        >>> x = keras.random.normal((3, 128), seed=0)
        >>> bool(keras.ops.all(keras.ops.isclose(tt(x), dense(x), atol=1e-5)))
        True
        >>> tt.in_modes, tt.out_modes, tt.tt_ranks
        ((8, 4, 4), (4, 4, 4), (1, 32, 16, 1))
        """
        from keras_tt.tensorize import _convert_dense

        layer, _ = _convert_dense(
            dense_layer,
            tt_rank=tt_rank,
            rel_error=rel_error,
            in_modes=in_modes,
            out_modes=out_modes,
            name=name,
        )
        return layer

    # ------------------------------------------------------------------- call

    def call(self, inputs):
        cores = [tf.convert_to_tensor(core) for core in self.cores]
        x = tf.reshape(inputs, (-1, self.input_dim))
        if self.padded_input_dim > self.input_dim:
            x = tf.pad(x, [[0, 0], [0, self.padded_input_dim - self.input_dim]])
        y = tt_matmul(x, cores, self.in_modes, self.out_modes)
        if self.padded_units > self.units:
            y = y[:, : self.units]
        y = self._restore_leading_axes(y, inputs)
        if self.bias is not None:
            y = tf.add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def _restore_leading_axes(self, y, inputs):
        rank = inputs.shape.rank
        if rank == 2:
            return y
        inner = inputs.shape[1:-1]
        if all(dim is not None for dim in inner):
            return tf.reshape(y, (-1, *inner, self.units))
        leading = tf.shape(inputs)[:-1]
        return tf.reshape(y, tf.concat([leading, [self.units]], axis=0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # ---------------------------------------------------------- serialisation

    def get_config(self):
        base_config = super().get_config()
        tt_rank = self.tt_rank
        if self.built:
            inner = self.tt_ranks[1:-1]
            given = (
                (tt_rank,) * len(inner)
                if isinstance(tt_rank, numbers.Integral)
                else tuple(tt_rank)
            )
            if given != inner:
                # Ranks were clamped: store those in use, so reloading is quiet.
                tt_rank = inner
        if isinstance(tt_rank, tuple):
            tt_rank = list(tt_rank)
        config = {
            "units": self.units,
            "tt_rank": tt_rank,
            "in_modes": _as_list(self._given_in_modes),
            "out_modes": _as_list(self._given_out_modes),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(
                self.kernel_regularizer
            ),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
        return {**base_config, **config}


def _as_list(modes):
    return None if modes is None else [int(m) for m in modes]
