"""`TTConv1D` and `TTConv2D`: convolutions whose kernel is held in TT form.

A convolution kernel of shape ``(*kernel_size, c_in, c_out)`` is read as a
matrix of ``c_in * s`` rows (``s = prod(kernel_size)``, the input channel
first, then the kernel position) and ``c_out`` columns, and that matrix is
held as a TT-matrix (`keras_tt.full_matrix`) whose modes depend on ``s``:

the chain ``(n_1, 1) ... (n_d, 1), (s, 1), (1, m_1) ... (1, m_d)`` with
``c_in = n_1 ... n_d`` and ``c_out = m_1 ... m_d`` (the channel modes, chosen
as for `TTDense`): ``d`` input cores that only see input channels, one
spatial core, then ``d`` output cores that only see output channels. The
forward pass contracts the input channels through the input cores down to
``r`` channels (the rank at the spatial core), runs one dense
``kernel_size`` convolution from ``r`` to ``r'`` channels with the spatial
core as its kernel (strides, padding and dilation applied there), and
expands ``r'`` to ``c_out`` through the output cores. With one mode per
side it is the Tucker-2 decomposition of Kim et al. (2016) (for a 1x1
kernel, a low-rank ``U S V``); more modes factor its two projection
matrices further. Every op has a static weight, which is what TFLite's
CONV_2D and FULLY_CONNECTED kernels (and XNNPACK) want.

This layout was chosen over the others, the spatial dimensions merged into
the first input mode, a separate spatial core at the start of the chain
(Garipov et al., 2016), and for 1x1 kernels the `TTDense` TT-matrix pairing
input and output modes, on the reconstruction error of TT-SVD on trained
kernels at equal size and on LiteRT speed; the measurement is in the
convolutions guide and ``benchmarks/conv_speed.py``.
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import activations

from keras_tt import modes as modes_lib
from keras_tt.contraction import tt_matmul
from keras_tt.contraction_plans import UNKNOWN_BATCH
from keras_tt.contraction_plans import UNKNOWN_LITERT_BATCH
from keras_tt.contraction_plans import check_contraction
from keras_tt.contraction_plans import choose_plan
from keras_tt.contraction_plans import in_litert_scope
from keras_tt.decomposition import TTDecomposition
from keras_tt.layer_decomposition import decompose_for_layer
from keras_tt.layer_decomposition import float_matrix
from keras_tt.layers._tt_base import TTLayerMixin
from keras_tt.layers._tt_base import as_list
from keras_tt.layers._tt_base import assign_copy
from keras_tt.layers._tt_base import check_core_count
from keras_tt.layers._tt_base import check_given_modes
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import core_initializers
from keras_tt.layers._tt_base import float_input
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import warn_per_core

CHANNEL_NAMES = ("input_channels", "filters", "in_modes", "out_modes")
# The paddings the TT convolutions run and export, by spatial rank.
PADDINGS = {1: ("valid", "same", "causal"), 2: ("valid", "same")}


def _int_tuple(value, rank, name, allow_zero=False):
    """An int or a ``rank``-long sequence of ints, as a checked tuple."""
    received = value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * rank
    try:
        value = tuple(value)
    except TypeError:
        value = ()
    ok = len(value) == rank and all(
        isinstance(v, numbers.Integral)
        and not isinstance(v, bool)
        and (v >= 1 or (allow_zero and v == 0))
        for v in value
    )
    if not ok:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive "
            f"integer or a sequence of {rank} positive integers. "
            f"Received: {name}={received!r}"
        )
    return tuple(int(v) for v in value)


def _data_format(data_format):
    if data_format is None:
        return keras.config.image_data_format()
    value = str(data_format).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            "Received an invalid value for `data_format`, expected "
            "'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return value


def conv_matrix(kernel) -> np.ndarray:
    """A ``(*kernel_size, c_in, c_out)`` kernel as the ``(c_in * s, c_out)``
    matrix the TT convolutions decompose (rows: channel, then position)."""
    kernel = np.asarray(kernel)
    c_in, c_out = kernel.shape[-2:]
    return np.moveaxis(kernel, -2, 0).reshape(-1, c_out)


def matrix_kernel(matrix, kernel_size) -> np.ndarray:
    """The inverse of `conv_matrix`."""
    matrix = np.asarray(matrix)
    c_out = matrix.shape[1]
    c_in = matrix.shape[0] // math.prod(kernel_size)
    return np.moveaxis(matrix.reshape(c_in, *kernel_size, c_out), 0, -2)


def chain_modes(kernel_size, in_modes, out_modes):
    """The TT-matrix modes of a convolution kernel for these channel modes.

    Example:

    >>> chain_modes((1, 1), (4, 4), (8, 4))
    ((4, 4, 1, 1, 1), (1, 1, 1, 8, 4))
    >>> chain_modes((3, 3), (4, 4), (8, 4))
    ((4, 4, 9, 1, 1), (1, 1, 1, 8, 4))
    """
    s = math.prod(kernel_size)
    in_modes, out_modes = tuple(in_modes), tuple(out_modes)
    return (
        in_modes + (s,) + (1,) * len(out_modes),
        (1,) * len(in_modes) + (1,) + out_modes,
    )


def resolve_conv_layout(
    input_channels, filters, kernel_size, tt_rank, in_modes, out_modes
):
    """Channel modes, chain modes and ranks of a TT convolution.

    Returns:
        ``(channel_layout, layout)``: the `keras_tt.modes.TTLayout` of the
        channels alone (its modes, padded widths) and the TT-matrix layout of
        the ``(c_in * s, c_out)`` kernel matrix (chain modes and ranks).
    """
    channels = modes_lib.resolve_layout(
        input_channels,
        filters,
        None,
        in_modes,
        out_modes,
        warn=False,
        names=CHANNEL_NAMES,
    )
    chain_in, chain_out = chain_modes(
        kernel_size, channels.in_modes, channels.out_modes
    )
    if tt_rank is None:
        ranks = modes_lib.max_tt_ranks(chain_in, chain_out)
    else:
        ranks = modes_lib.resolve_tt_ranks(
            tt_rank,
            chain_in,
            chain_out,
            warn=not modes_lib.is_positive_int(tt_rank),
        )
    layout = modes_lib.TTLayout(
        input_channels * math.prod(kernel_size),
        filters,
        chain_in,
        chain_out,
        ranks,
    )
    return channels, layout


class BaseTTConv(TTLayerMixin, keras.layers.Layer):
    """The convolution of `TTConv1D` and `TTConv2D`; see `TTConv2D`."""

    rank: int = 2
    _layout_fields = ("kernel_rows", "filters", "chain_in_modes", "chain_out")

    def __init__(
        self,
        filters,
        kernel_size,
        tt_rank,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        in_modes=None,
        out_modes=None,
        contraction="auto",
        **kwargs,
    ):
        cls = type(self).__name__
        filters = modes_lib.check_width(filters, "filters")
        kernel_size = _int_tuple(kernel_size, self.rank, "kernel_size")
        strides = _int_tuple(strides, self.rank, "strides")
        dilation_rate = _int_tuple(dilation_rate, self.rank, "dilation_rate")
        allowed = PADDINGS[self.rank]
        padding_name = padding.lower() if isinstance(padding, str) else None
        if padding_name not in allowed:
            raise ValueError(
                f"Received an invalid value for `padding`, expected one of "
                f"{allowed} (what `{cls}` runs and exports). "
                f"Received: padding={padding!r}"
            )
        if max(strides) > 1 and max(dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` is not compatible with `dilation_rate > 1`. "
                f"Received: strides={strides}, dilation_rate={dilation_rate}"
            )
        if groups != 1:
            raise ValueError(
                f"Received an invalid value for `groups`: `{cls}` holds one "
                "kernel over all channels (a grouped convolution has one "
                "small kernel per group, with no channel matrix to factor), "
                f"so it takes only groups=1. Received: groups={groups!r}"
            )
        check_contraction(contraction)
        modes_lib.check_tt_rank_argument(tt_rank)
        in_modes, out_modes = check_given_modes(filters, 1, in_modes, out_modes)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding_name
        self.data_format = _data_format(data_format)
        self.dilation_rate = dilation_rate
        self.groups = 1
        self.tt_rank = normalize_tt_rank(tt_rank)
        self._given_in_modes = in_modes
        self._given_out_modes = out_modes
        self.in_modes = in_modes
        self.out_modes = out_modes
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
        self.input_spec = keras.layers.InputSpec(min_ndim=self.rank + 2)
        self.input_channels = None
        self.kernel_rows = None
        self.chain_in_modes = None
        self.chain_out = None
        self.tt_ranks = None
        self.cores = []
        self.bias = None

    # ------------------------------------------------------------------ build

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    @property
    def kernel_shape(self):
        """``(*kernel_size, input_channels, filters)`` (once built)."""
        self._check_built("kernel_shape")
        return (*self.kernel_size, self.input_channels, self.filters)

    @property
    def is_pointwise(self) -> bool:
        """Whether the kernel is 1x1."""
        return math.prod(self.kernel_size) == 1

    def build(self, input_shape):
        cls = type(self).__name__
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"`{cls}` expects inputs of rank {self.rank + 2}. "
                f"Received: input_shape={input_shape}"
            )
        channels = input_shape[self._channel_axis]
        if channels is None or not modes_lib.is_positive_int(channels):
            raise ValueError(
                f"The channel dimension of the input to `{cls}` must be "
                f"known and at least 1. Received: input_shape={input_shape}"
            )
        self.input_channels = int(channels)
        channel_layout, layout = resolve_conv_layout(
            self.input_channels,
            self.filters,
            self.kernel_size,
            self.tt_rank,
            self._given_in_modes,
            self._given_out_modes,
        )
        check_core_count(layout, self.tt_rank)
        self.in_modes = channel_layout.in_modes
        self.out_modes = channel_layout.out_modes
        self.kernel_rows = layout.input_dim
        self.chain_in_modes, self.chain_out = layout.in_modes, layout.out_modes
        self.tt_ranks = layout.ranks
        s = math.prod(self.kernel_size)
        self._add_cores(
            core_initializers(
                self.kernel_initializer,
                self.input_channels * s,
                self.filters * s,
                layout.ranks,
            ),
            self.kernel_regularizer,
            self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        axis = self._channel_axis % (self.rank + 2)
        self.input_spec = keras.layers.InputSpec(
            ndim=self.rank + 2, axes={axis: self.input_channels}
        )

    # ------------------------------------------------------------- properties

    @property
    def padded_input_channels(self) -> int:
        """Input channels after zero-padding: the product of `in_modes`."""
        self._check_built("padded_input_channels")
        return math.prod(self.in_modes)

    @property
    def padded_filters(self) -> int:
        """Output channels before the extra ones are dropped."""
        self._check_built("padded_filters")
        return math.prod(self.out_modes)

    def full_kernel(self):
        """The ``(*kernel_size, c_in, c_out)`` kernel the cores stand for."""
        self._check_built("full_kernel")
        return matrix_kernel(
            self._full_matrix(self._core_arrays()), self.kernel_size
        )

    # ------------------------------------------------------------------- call

    def _chain(self, x, cores, in_modes, out_modes):
        """``x @ W`` over the last axis of ``x`` for a run of the cores."""
        ops = keras.ops
        spatial = tuple(x.shape[1:-1])
        width = math.prod(in_modes)
        flat = ops.reshape(x, (-1, width))
        pixels = None
        if None not in spatial:
            unknown = UNKNOWN_BATCH
            if in_litert_scope():
                unknown = UNKNOWN_LITERT_BATCH
            batch = x.shape[0] or unknown
            pixels = int(batch) * math.prod(spatial)
        ranks = (1,) + tuple(int(c.shape[-1]) for c in cores)
        plan = choose_plan(
            in_modes,
            out_modes,
            ranks,
            batch=pixels,
            contraction=self.contraction,
            itemsize=self._compute_itemsize,
        )
        y = tt_matmul(flat, cores, in_modes, out_modes, plan=plan)
        if None in spatial:
            shape = ops.shape(x)
            target = (shape[0], *shape[1:-1], math.prod(out_modes))
        else:
            target = (-1, *spatial, math.prod(out_modes))
        return ops.reshape(y, target)

    def _spatial_kernel(self):
        """The spatial core as a ``(*kernel_size, r, r')`` conv kernel."""
        core = self.cores[len(self.in_modes)]
        r_in, r_out = int(core.shape[0]), int(core.shape[-1])
        kernel = keras.ops.reshape(core, (r_in, *self.kernel_size, r_out))
        order = (*range(1, self.rank + 1), 0, self.rank + 1)
        return keras.ops.transpose(kernel, order)

    def call(self, inputs):
        ops = keras.ops
        x = float_input(inputs, self.compute_dtype)
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, *range(2, self.rank + 2), 1))
        extra_in = self.padded_input_channels - self.input_channels
        if extra_in:
            x = ops.pad(x, [[0, 0]] * (self.rank + 1) + [[0, extra_in]])
        y = self._spatial_call(x)
        if self.padded_filters > self.filters:
            y = y[..., : self.filters]
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, self.rank + 1, *range(1, self.rank + 1)))
        return y

    def _spatial_call(self, x):
        ops = keras.ops
        d_in = len(self.in_modes)
        # Input cores (r, n, 1, r') -> (r, n, r', 1): the last rank becomes
        # the output width of a TT-matrix over the input channels.
        in_cores = list(self.cores[:d_in])
        last = in_cores[-1]
        in_cores[-1] = ops.reshape(
            last, (last.shape[0], last.shape[1], last.shape[3], 1)
        )
        r_in = int(last.shape[3])
        z = self._chain(x, in_cores, self.in_modes, (1,) * (d_in - 1) + (r_in,))
        padding = self.padding
        if padding == "causal":
            left = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            z = ops.pad(z, [[0, 0], [left, 0], [0, 0]])
            padding = "valid"
        z = ops.conv(
            z,
            self._spatial_kernel(),
            strides=self.strides,
            padding=padding,
            data_format="channels_last",
            dilation_rate=self.dilation_rate,
        )
        # Output cores (r, 1, m, r') -> (1, r, m, r') for the first.
        out_cores = list(self.cores[d_in + 1 :])
        first = out_cores[0]
        out_cores[0] = ops.reshape(
            first, (1, first.shape[0], first.shape[2], first.shape[3])
        )
        r_out = int(first.shape[0])
        d_out = len(self.out_modes)
        return self._chain(
            z, out_cores, (r_out,) + (1,) * (d_out - 1), self.out_modes
        )

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.data_format == "channels_first":
            spatial = input_shape[2:]
        else:
            spatial = input_shape[1:-1]
        out = []
        for size, k, s, d in zip(
            spatial, self.kernel_size, self.strides, self.dilation_rate
        ):
            if size is None:
                out.append(None)
            elif self.padding == "valid":
                out.append((size - d * (k - 1) - 1) // s + 1)
            else:
                out.append((size - 1) // s + 1)
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters, *out)
        return (input_shape[0], *out, self.filters)

    # ---------------------------------------------------------- serialisation

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "tt_rank": self._config_tt_rank(),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_arguments_config(),
            "in_modes": as_list(self._given_in_modes),
            "out_modes": as_list(self._given_out_modes),
            "contraction": self.contraction,
        }
        return {**base_config, **config}

    @classmethod
    def from_conv(
        cls,
        conv,
        tt_rank=None,
        rel_error: float | None = None,
        in_modes=None,
        out_modes=None,
        name: str | None = None,
    ):
        """A TT convolution initialised from a trained Keras convolution.

        The cores are a TT-SVD (`keras_tt.tt_svd`) of the kernel read as a
        matrix (see the module doc), zero-padded first when the channel
        modes pad the widths. Strides, padding, data format, dilation,
        activation, bias, dtype policy, trainability, regularisers and
        constraints are copied (the kernel regulariser and constraint then
        apply to each core, with a warning), and the name unless ``name``
        is given. The convolution is not modified.

        Args:
            conv: a built `keras.layers.Conv2D` (for `TTConv2D`) or
                `keras.layers.Conv1D` (for `TTConv1D`) with ``groups=1``.
            tt_rank: positive integer capping every inner TT-rank, or a
                sequence of the inner ranks.
            rel_error: relative Frobenius error allowed on the kernel,
                strictly between 0 and 1 (see `keras_tt.TTDense.from_dense`).
                At least one of ``tt_rank`` and ``rel_error`` is required.
            in_modes: optional modes of the input channels.
            out_modes: optional modes of the output channels (``filters``).
            name: optional name of the new layer.

        Returns:
            A built layer of this class, not attached to any model.
        """
        layer, _ = conv_to_tt_conv(
            conv,
            tt_rank=tt_rank,
            rel_error=rel_error,
            in_modes=in_modes,
            out_modes=out_modes,
            name=name,
            target=cls,
        )
        return layer


@keras.saving.register_keras_serializable(package="keras_tt")
class TTConv2D(BaseTTConv):
    """2-D convolution layer with its kernel stored in TT format.

    `TTConv2D` takes the arguments of `keras.layers.Conv2D` and computes the
    same function for the kernel that its cores stand for (`full_kernel`),
    plus ``tt_rank`` and the channel modes ``in_modes`` / ``out_modes``,
    which are chosen as in `keras_tt.TTDense` (``c_in`` and ``filters``
    split into balanced modes, padded when their prime factors exceed 7).

    The kernel, seen as a ``(c_in * kh * kw, filters)`` matrix, is a
    TT-matrix. The layer runs as: input channels contracted through
    TT-cores to ``r`` channels, one dense ``kh x kw`` convolution
    ``r -> r'``, then TT-cores from ``r'`` to ``filters`` (see the module
    doc of
    `keras_tt.layers.tt_conv`). Every op has a static weight, so the layer
    exports to TFLite builtins (CONV_2D, FULLY_CONNECTED, RESHAPE,
    TRANSPOSE).

    Args:
        filters: positive integer, the number of output channels.
        kernel_size: integer or pair of integers.
        tt_rank: positive integer capping every inner TT-rank, or a sequence
            of the ``d_in + d_out`` inner ranks for ``d_in`` input and
            ``d_out`` output channel modes.
        strides: integer or pair of integers.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults
            to `keras.config.image_data_format()`.
        dilation_rate: integer or pair of integers.
        groups: only 1 (a grouped kernel has no channel matrix to factor);
            any other value is refused.
        activation: as in `keras.layers.Conv2D`.
        use_bias: as in `keras.layers.Conv2D`.
        kernel_initializer: as in `keras.layers.Conv2D`; variance-scaling
            initialisers target the variance of the full kernel.
        bias_initializer: as in `keras.layers.Conv2D`.
        kernel_regularizer: as in `keras.layers.Conv2D`, applied to each
            core.
        bias_regularizer: as in `keras.layers.Conv2D`.
        activity_regularizer: as in `keras.layers.Conv2D`.
        kernel_constraint: as in `keras.layers.Conv2D`, applied to each
            core.
        bias_constraint: as in `keras.layers.Conv2D`.
        in_modes: optional modes of the input channels (their product is
            the number of input channels).
        out_modes: optional modes of ``filters``, as many as ``in_modes``.
        contraction: how each chain of cores is multiplied, as in
            `keras_tt.TTDense` (``"auto"``, ``"chain"``, ``"dense"``).
        **kwargs: base layer keyword arguments, such as ``name``.

    Example:

    >>> import keras, keras_tt
    >>> layer = keras_tt.TTConv2D(64, 3, tt_rank=8, padding="same")
    >>> y = layer(keras.ops.ones((2, 16, 16, 64)))
    >>> tuple(y.shape)
    (2, 16, 16, 64)
    >>> layer.in_modes, layer.out_modes, layer.tt_ranks
    ((4, 4, 4), (4, 4, 4), (1, 4, 8, 8, 8, 8, 4, 1))
    >>> layer.full_kernel().shape
    (3, 3, 64, 64)
    >>> round(layer.compression_ratio, 1)
    26.8
    """

    rank = 2


@keras.saving.register_keras_serializable(package="keras_tt")
class TTConv1D(BaseTTConv):
    """1-D convolution layer with its kernel stored in TT format.

    The 1-D form of `TTConv2D`, with the arguments of
    `keras.layers.Conv1D`; ``padding`` may also be ``"causal"`` (left
    zero-padding, then ``"valid"``).

    Example:

    >>> import keras, keras_tt
    >>> layer = keras_tt.TTConv1D(32, 5, tt_rank=4, padding="causal")
    >>> tuple(layer(keras.ops.ones((2, 50, 16))).shape)
    (2, 50, 32)
    >>> layer.full_kernel().shape
    (5, 16, 32)
    """

    rank = 1


def conv_to_tt_conv(
    conv,
    tt_rank=None,
    rel_error=None,
    in_modes=None,
    out_modes=None,
    name=None,
    callback=None,
    target=None,
) -> tuple[BaseTTConv, TTDecomposition]:
    """A built TT convolution initialised from a convolution, and its TT-SVD.

    The work behind `TTConv2D.from_conv` / `TTConv1D.from_conv`, which
    `keras_tt.tensorize` uses too. ``target`` is the class to build
    (default: from the convolution's rank); ``callback`` goes to
    `keras_tt.tt_svd`.
    """
    if target is None:
        target = TTConv1D if isinstance(conv, keras.layers.Conv1D) else TTConv2D
    expected = keras.layers.Conv1D if target.rank == 1 else keras.layers.Conv2D
    check_trained_layer(conv, expected, "conv")
    check_convertible_conv(conv)
    kernel = float_matrix(conv.kernel)
    c_in, c_out = (int(s) for s in kernel.shape[-2:])
    kernel_size = tuple(int(s) for s in kernel.shape[:-2])
    channels, layout = resolve_conv_layout(
        c_in, c_out, kernel_size, tt_rank, in_modes, out_modes
    )
    s = math.prod(kernel_size)
    matrix = conv_matrix(kernel).reshape(c_in, s, c_out)
    matrix = np.pad(
        matrix,
        [
            (0, channels.padded_input_dim - c_in),
            (0, 0),
            (0, channels.padded_units - c_out),
        ],
    ).reshape(-1, channels.padded_units)
    result = decompose_for_layer(
        matrix,
        tt_rank=tt_rank,
        rel_error=rel_error,
        in_modes=layout.in_modes,
        out_modes=layout.out_modes,
        callback=callback,
        layer_name=conv.name,
    )
    warn_per_core(
        conv.name,
        "kernel",
        conv.kernel_regularizer,
        conv.kernel_constraint,
        whole="kernel",
        stacklevel=3,
    )
    layer = target(
        conv.filters,
        kernel_size,
        tt_rank=result.tt_rank,
        strides=conv.strides,
        padding=conv.padding,
        data_format=conv.data_format,
        dilation_rate=conv.dilation_rate,
        activation=conv.activation,
        use_bias=conv.use_bias,
        kernel_regularizer=conv.kernel_regularizer,
        bias_regularizer=conv.bias_regularizer,
        activity_regularizer=conv.activity_regularizer,
        kernel_constraint=conv.kernel_constraint,
        bias_constraint=conv.bias_constraint,
        in_modes=in_modes,
        out_modes=out_modes,
        name=name or conv.name,
        dtype=conv.dtype_policy,
        trainable=conv.trainable,
    )
    shape = [None] * (target.rank + 2)
    shape[-1 if layer.data_format == "channels_last" else 1] = c_in
    layer.build(tuple(shape))
    layer._assign_cores(result.decomposition.cores)
    if conv.use_bias:
        assign_copy(layer.bias, conv.bias)
    return layer, result.decomposition


def check_convertible_conv(conv) -> None:
    """Refuse a convolution the TT convolutions cannot stand for."""
    kind = type(conv).__name__
    if getattr(conv, "groups", 1) != 1:
        raise ValueError(
            f"The {kind} layer '{conv.name}' is grouped (groups="
            f"{conv.groups}): a grouped convolution has one small kernel per "
            "group, with no channel matrix to factor, so it is not converted."
        )
    allowed = PADDINGS[conv.rank]
    if conv.padding not in allowed:
        raise ValueError(
            f"The {kind} layer '{conv.name}' uses padding={conv.padding!r}; "
            f"the TT convolutions take {allowed}."
        )
