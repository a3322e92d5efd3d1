"""`TTDense`: a fully-connected layer whose kernel is a TT-matrix."""

from __future__ import annotations

import keras
from keras import activations

from keras_tt import modes as modes_lib
from keras_tt.contraction_plans import check_contraction
from keras_tt.decomposition import TTDecomposition
from keras_tt.layer_decomposition import decompose_for_layer
from keras_tt.layer_decomposition import float_matrix
from keras_tt.layers._planned_matmul import layer_plan
from keras_tt.layers._planned_matmul import planned_matmul
from keras_tt.layers._planned_matmul import rows_for_plan
from keras_tt.layers._tt_base import TTLayerMixin
from keras_tt.layers._tt_base import as_list
from keras_tt.layers._tt_base import assign_copy
from keras_tt.layers._tt_base import check_given_modes
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import float_input
from keras_tt.layers._tt_base import leading_shape
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import warn_per_core


@keras.saving.register_keras_serializable(package="keras_tt")
class TTDense(TTLayerMixin, keras.layers.Layer):
    """Densely-connected layer with its kernel stored in TT-matrix format.

    `TTDense` computes ``output = activation(dot(input, W) + bias)`` like
    `keras.layers.Dense`, but never stores the ``input_dim x units`` kernel
    ``W``. Instead the input width factors into modes
    ``N = n_1 * ... * n_d`` and ``units`` into ``M = m_1 * ... * m_d``, and
    ``W`` is kept as ``d`` small cores ``G_k`` of shape
    ``(r_{k-1}, n_k, m_k, r_k)`` (Novikov et al., *Tensorizing Neural
    Networks*, 2015):

        W[(i_1..i_d), (j_1..j_d)] =
            G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

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
    must multiply to the width exactly. ``in_modes="fast"`` (or
    ``out_modes="fast"``, or both) picks the two-core modes of
    `keras_tt.fast_modes` instead: the large modes outside, the small ones
    inside, which computes ``x @ W`` in two matrix products with constant
    weights and runs several times faster in LiteRT and TensorFlow at the
    same number of weights.

    Args:
        units: positive integer, dimensionality of the output space.
        tt_rank: positive integer, the TT-rank of every inner bond, or a
            sequence of the ``d - 1`` inner ranks. Ranks above the largest
            useful one at a bond, ``min(prod_{i<=k} n_i m_i,
            prod_{i>k} n_i m_i)``, are lowered to it (with a warning when
            the modes or per-bond ranks were given explicitly).
        in_modes: optional sequence of positive integers whose product is the
            input width, or ``"fast"`` (see above).
        out_modes: optional sequence of positive integers whose product is
            ``units``, of the same length as ``in_modes``, or ``"fast"``.
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
        contraction: how ``x @ W`` is computed. ``"auto"`` (the default)
            picks, from the static shapes and the batch size, the cheapest
            plan under `keras_tt.contraction_plans.plan_cost`: the chain of one
            einsum per core (either direction), the chain after merging
            runs of neighbouring cores, or rebuilding the kernel and one
            matrix product, never materialising more than
            `keras_tt.contraction_plans.DEFAULT_MEMORY_BUDGET` bytes of merged
            cores. ``"chain"`` always runs the plain chain, ``"dense"``
            always rebuilds the kernel. The result is the same up to
            rounding. LiteRT export (`keras_tt.export_tflite`) keeps
            ``"chain"`` and ``"dense"`` and gives ``"auto"`` the plan of
            least cost under the LiteRT cost model
            (`keras_tt.contraction_plans.LITERT_COSTS`) for the exported shapes;
            merged cores and rebuilt kernels are computed in the file from
            the cores, so the file stays as small as the cores.
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
    >>> fast = keras_tt.TTDense(768, tt_rank=16, in_modes="fast")
    >>> fast.build((None, 768))
    >>> fast.in_modes, fast.out_modes, fast.contraction_plan(1).name
    ((96, 8), (8, 96), 'chain, left_to_right')
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
        contraction="auto",
        **kwargs,
    ):
        units = modes_lib.check_width(units, "units")
        check_contraction(contraction)
        modes_lib.check_tt_rank_argument(tt_rank)
        in_modes, out_modes = check_given_modes(
            units, tt_rank, in_modes, out_modes
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        self.tt_rank = normalize_tt_rank(tt_rank)
        self.in_modes = in_modes
        self.out_modes = out_modes
        self._given_in_modes = in_modes
        self._given_out_modes = out_modes
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self._set_weight_arguments(
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            kernel_constraint,
            bias_constraint,
        )
        self.contraction = contraction
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True
        self.input_dim = None
        self.tt_ranks = None
        self.cores = []
        self.bias = None

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
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
        if not modes_lib.is_positive_int(input_dim):
            raise ValueError(
                "`TTDense` expects an input width (the last dimension) of at "
                f"least 1. Received: input_shape={input_shape}"
            )
        if input_dim > modes_lib.MAX_WIDTH:
            raise ValueError(
                "`TTDense` expects an input width (the last dimension) of at "
                f"most {modes_lib.MAX_WIDTH:,}. Received: "
                f"input_shape={input_shape}"
            )
        self.input_dim = int(input_dim)
        self._build_kernel_cores()
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

    def full_kernel(self):
        """The ``(input_dim, units)`` kernel the cores stand for, as NumPy."""
        self._check_built("full_kernel")
        return self._full_matrix(self._core_arrays())

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
        constraint are carried over and, as in `TTDense`, apply to each core
        (a warning says so: a penalty on the cores is not the same penalty
        on the full matrix).

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
        layer, _ = dense_to_tt_dense(
            dense_layer,
            tt_rank=tt_rank,
            rel_error=rel_error,
            in_modes=in_modes,
            out_modes=out_modes,
            name=name,
        )
        return layer

    # ------------------------------------------------------------------- call

    def contraction_plan(self, batch=None):
        """The `TTPlan` a call with ``batch`` rows runs.

        ``batch`` counts the rows of the flattened input (all axes but the
        last); ``None`` when unknown.
        """
        self._check_built("contraction_plan")
        return layer_plan(self, batch)

    def call(self, inputs):
        ops = keras.ops
        inputs = float_input(inputs, self.compute_dtype)
        x, out_shape = inputs, None
        if len(inputs.shape) != 2:
            x = ops.reshape(inputs, (-1, self.input_dim))
            out_shape = leading_shape(inputs) + (self.units,)
        plan = self.contraction_plan(rows_for_plan(inputs.shape[:-1]))
        y = planned_matmul(self, x, plan, out_shape=out_shape)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # ---------------------------------------------------------- serialisation

    def get_config(self):
        base_config = super().get_config()
        config = {
            "units": self.units,
            "tt_rank": self._config_tt_rank(),
            "in_modes": as_list(self._given_in_modes),
            "out_modes": as_list(self._given_out_modes),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_arguments_config(),
            "contraction": self.contraction,
        }
        return {**base_config, **config}


def dense_to_tt_dense(
    dense_layer,
    tt_rank=None,
    rel_error=None,
    in_modes=None,
    out_modes=None,
    name=None,
    callback=None,
) -> tuple[TTDense, TTDecomposition]:
    """A built `TTDense` initialised from a `Dense` layer, and its TT-SVD.

    The work behind `TTDense.from_dense`, which `keras_tt.tensorize` uses
    too; see there for the arguments. ``callback`` is passed to
    `keras_tt.tt_svd` (called once per truncation).
    """
    check_trained_layer(dense_layer, keras.layers.Dense, "dense_layer")
    result = decompose_for_layer(
        float_matrix(dense_layer.kernel),
        tt_rank=tt_rank,
        rel_error=rel_error,
        in_modes=in_modes,
        out_modes=out_modes,
        callback=callback,
        layer_name=dense_layer.name,
    )
    input_dim, units = result.layout.input_dim, result.layout.units
    kernel_regularizer = dense_layer.kernel_regularizer
    kernel_constraint = dense_layer.kernel_constraint
    warn_per_core(
        dense_layer.name,
        "kernel",
        kernel_regularizer,
        kernel_constraint,
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
        kernel_regularizer=kernel_regularizer,
        bias_regularizer=dense_layer.bias_regularizer,
        activity_regularizer=dense_layer.activity_regularizer,
        kernel_constraint=kernel_constraint,
        bias_constraint=dense_layer.bias_constraint,
        name=name or dense_layer.name,
        dtype=dense_layer.dtype_policy,
        trainable=dense_layer.trainable,
    )
    layer.build((None, input_dim))
    layer._assign_cores(result.decomposition.cores)
    if dense_layer.use_bias:
        assign_copy(layer.bias, dense_layer.bias)
    return layer, result.decomposition
