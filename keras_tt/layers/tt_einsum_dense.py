"""`TTEinsumDense`: an `EinsumDense` whose kernel is a TT-matrix."""

from __future__ import annotations

import dataclasses
import math
import numbers
import re

import keras
import numpy as np
from keras import activations

from keras_tt import modes as modes_lib
from keras_tt.contraction import tt_matmul
from keras_tt.decomposition import TTDecomposition
from keras_tt.decomposition import decompose_for_layer
from keras_tt.decomposition import float_matrix
from keras_tt.layers._tt_base import TTLayerMixin
from keras_tt.layers._tt_base import as_list
from keras_tt.layers._tt_base import assign_copy
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import float_input
from keras_tt.layers._tt_base import leading_shape
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import warn_per_core

_EQUATION = re.compile(
    r"^(\.\.\.)?([a-zA-Z]*),([a-zA-Z]+)->(\.\.\.)?([a-zA-Z]*)$"
)


@dataclasses.dataclass(frozen=True)
class EquationParts:
    """An equation ``P C, C F -> P F`` split into its groups of axes.

    Attributes:
        prefix: the input axes carried to the output (``P``), ellipsis
            excluded.
        contracted: the trailing input axes summed with the leading kernel
            axes (``C``).
        free: the trailing kernel axes that end the output (``F``).
        ellipsis: whether the equation starts its input and output with
            ``...``.
    """

    prefix: str
    contracted: str
    free: str
    ellipsis: bool


def parse_equation(equation) -> EquationParts:
    """Split an `EinsumDense` equation that `TTEinsumDense` can express.

    The equation must contract the trailing axes of the input with the
    leading axes of the kernel, in the same order, and produce the other
    input axes followed by the other kernel axes: ``"abc,cd->abd"``,
    ``"abc,cde->abde"``, ``"abcd,cde->abe"``, ``"...b,bc->...c"``. The
    kernel is then a matrix (contracted axes x free axes). Anything else is
    refused with the reason.

    Example:

    >>> parse_equation("abcd,cde->abe")
    EquationParts(prefix='ab', contracted='cd', free='e', ellipsis=False)
    """
    received = equation
    if not isinstance(equation, str):
        raise ValueError(
            "Received an invalid value for `equation`, expected a string "
            f"such as 'abc,cd->abd'. Received: equation={received!r}"
        )
    match = _EQUATION.match(equation.replace(" ", ""))

    def refuse(reason):
        raise ValueError(
            f"Received an invalid value for `equation`: {reason} "
            "`TTEinsumDense` handles equations that contract the trailing "
            "input axes with the leading kernel axes, in order, and output "
            "the other input axes then the other kernel axes (such as "
            "'abc,cd->abd' or 'abcd,cde->abe'). "
            f"Received: equation={received!r}"
        )

    if match is None:
        refuse(
            "expected 'input,kernel->output' with letters only and an "
            "optional leading '...' on the input and the output;"
        )
    in_ellipsis, inputs, kernel, out_ellipsis, output = match.groups()
    if bool(in_ellipsis) != bool(out_ellipsis):
        refuse("'...' must start both the input and the output;")
    for name, spec in (
        ("input", inputs),
        ("kernel", kernel),
        ("output", output),
    ):
        if len(set(spec)) != len(spec):
            refuse(f"the {name} repeats an axis;")
    contracted = "".join(c for c in kernel if c in inputs)
    free = "".join(c for c in kernel if c not in inputs)
    if any(c in output for c in contracted):
        refuse(
            f"axes {sorted(set(contracted) & set(output))} appear in the "
            "input, the kernel and the output (a batched kernel);"
        )
    if not contracted:
        refuse("no axis is contracted;")
    if not free:
        refuse("the kernel has no output axis;")
    if kernel != contracted + free:
        refuse(
            f"the kernel '{kernel}' does not start with the contracted axes "
            f"'{contracted}';"
        )
    if not inputs.endswith(contracted):
        refuse(
            f"the contracted axes '{contracted}' are not the trailing axes of "
            f"the input '{inputs}', in the same order;"
        )
    prefix = inputs[: len(inputs) - len(contracted)]
    if output != prefix + free:
        refuse(
            f"the output '{output}' is not the kept input axes '{prefix}' "
            f"followed by the kernel's free axes '{free}';"
        )
    return EquationParts(prefix, contracted, free, bool(in_ellipsis))


def _free_shape(output_shape, parts, name="output_shape"):
    """Sizes of the free axes: the trailing entries of ``output_shape``."""
    shape = (
        [output_shape]
        if isinstance(output_shape, numbers.Integral)
        else list(output_shape)
        if isinstance(output_shape, (list, tuple))
        else None
    )
    if shape is None or len(shape) < len(parts.free):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected an integer or "
            f"a sequence ending with the sizes of the {len(parts.free)} "
            f"kernel output axes '{parts.free}'. Received: "
            f"{name}={output_shape!r}"
        )
    free = shape[len(shape) - len(parts.free) :]
    if not all(modes_lib.is_positive_int(s) for s in free):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected positive "
            f"integer sizes for the kernel output axes '{parts.free}'. "
            f"Received: {name}={output_shape!r}"
        )
    return tuple(int(s) for s in free)


@keras.saving.register_keras_serializable(package="keras_tt")
class TTEinsumDense(TTLayerMixin, keras.layers.Layer):
    """`EinsumDense` with its kernel stored in TT-matrix format.

    For equations of the form ``P C, C F -> P F``, which contract the
    trailing input axes ``C`` with the leading kernel axes and output the
    remaining input axes ``P`` followed by the kernel's free axes ``F``
    (``"abc,cd->abd"``, ``"abc,cde->abde"``, ``"abcd,cde->abe"``: every
    projection inside `keras.layers.MultiHeadAttention`), the kernel is a
    matrix ``W`` of ``prod(C)`` rows and ``prod(F)`` columns, and the layer
    computes what `keras.layers.EinsumDense` does,

        output = activation(einsum(equation, input, kernel) + bias),

    with ``W`` held as TT-cores as in `keras_tt.TTDense`: the input is
    reshaped to ``(-1, prod(C))``, multiplied by ``W`` through the chain of
    `keras_tt.tt_matmul`, and reshaped to ``P + F``. Other equations are
    refused with the reason.

    Modes, ranks and padding work as in `keras_tt.TTDense`; ``in_modes``
    factor ``prod(C)`` and ``out_modes`` factor ``prod(F)``. Variance-
    scaling initialisers set the variance of ``W`` with ``fan_in = prod(C)``
    and ``fan_out = prod(F)``, the fans of the equivalent `Dense` layer.

    Args:
        equation: the einsum equation, as for `keras.layers.EinsumDense`.
        output_shape: the output shape without the batch axis, as for
            `keras.layers.EinsumDense`; its trailing entries give the sizes
            of the free axes ``F``.
        tt_rank: positive integer, the TT-rank of every inner bond, or a
            sequence of the ``d - 1`` inner ranks.
        in_modes: optional factors of ``prod(C)``.
        out_modes: optional factors of ``prod(F)``.
        activation: activation function, none by default.
        bias_axes: optional string of free-axis letters that get a bias, as
            in `keras.layers.EinsumDense`.
        kernel_initializer: initialiser of ``W`` (see above).
        bias_initializer: initialiser of the bias.
        kernel_regularizer: regulariser applied to each core.
        bias_regularizer: regulariser of the bias.
        activity_regularizer: regulariser of the output.
        kernel_constraint: constraint applied to each core.
        bias_constraint: constraint of the bias.
        **kwargs: base layer keyword arguments.

    Example:

    >>> import keras, keras_tt
    >>> layer = keras_tt.TTEinsumDense("abc,cde->abde", (None, 4, 16),
    ...                                tt_rank=4, bias_axes="de")
    >>> y = layer(keras.ops.ones((2, 5, 32)))
    >>> tuple(y.shape)
    (2, 5, 4, 16)
    >>> layer.in_modes, layer.out_modes, tuple(layer.bias.shape)
    ((4, 4, 2), (4, 4, 4), (4, 16))
    """

    def __init__(
        self,
        equation,
        output_shape,
        tt_rank,
        in_modes=None,
        out_modes=None,
        activation=None,
        bias_axes=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        parts = parse_equation(equation)
        free_shape = _free_shape(output_shape, parts)
        units = math.prod(free_shape)
        modes_lib.check_tt_rank_argument(tt_rank)
        if in_modes is not None:
            in_modes = modes_lib.validate_modes(in_modes, "in_modes")
        if out_modes is not None:
            out_modes = modes_lib.validate_modes(out_modes, "out_modes", units)
        if bias_axes is not None:
            if not isinstance(bias_axes, str) or not all(
                c in parts.free for c in bias_axes
            ):
                raise ValueError(
                    "Received an invalid value for `bias_axes`, expected a "
                    f"string of letters among the kernel output axes "
                    f"'{parts.free}'. Received: bias_axes={bias_axes!r}"
                )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.equation = equation
        self.partial_output_shape = (
            output_shape
            if isinstance(output_shape, numbers.Integral)
            else tuple(output_shape)
        )
        self.parts = parts
        self.free_shape = free_shape
        self.units = units
        self.tt_rank = normalize_tt_rank(tt_rank)
        self._given_in_modes = in_modes
        self._given_out_modes = out_modes
        self.in_modes = in_modes
        self.out_modes = out_modes
        self.activation = activations.get(activation)
        self.bias_axes = bias_axes
        self._set_weight_arguments(
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            kernel_constraint,
            bias_constraint,
        )
        self.contracted_shape = None
        self.input_dim = None
        self.tt_ranks = None
        self.cores = []
        self.bias = None

    @property
    def bias_shape(self):
        """Shape of the bias, as `keras.layers.EinsumDense` gives it."""
        if not self.bias_axes:
            return None
        free = self.parts.free
        first = min(free.index(c) for c in self.bias_axes)
        return tuple(
            size if c in self.bias_axes else 1
            for c, size in zip(free[first:], self.free_shape[first:])
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        num_c = len(self.parts.contracted)
        explicit = len(self.parts.prefix) + num_c
        if len(input_shape) < explicit or (
            not self.parts.ellipsis and len(input_shape) != explicit
        ):
            raise ValueError(
                f"`TTEinsumDense` with equation '{self.equation}' expects "
                f"inputs of rank {explicit}"
                + (" or more" if self.parts.ellipsis else "")
                + f". Received: input_shape={input_shape}"
            )
        contracted = input_shape[len(input_shape) - num_c :]
        if not all(modes_lib.is_positive_int(s) for s in contracted):
            raise ValueError(
                f"The contracted axes '{self.parts.contracted}' of the input "
                "to `TTEinsumDense` must have known sizes. Received: "
                f"input_shape={input_shape}"
            )
        self.contracted_shape = tuple(int(s) for s in contracted)
        self.input_dim = math.prod(self.contracted_shape)
        self._build_kernel_cores()
        if self.bias_axes:
            self.bias = self.add_weight(
                name="bias",
                shape=self.bias_shape,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(
            min_ndim=explicit,
            axes={
                i - num_c: size for i, size in enumerate(self.contracted_shape)
            },
        )

    def full_kernel(self) -> np.ndarray:
        """The kernel in `EinsumDense`'s shape ``C + F``, as NumPy."""
        self._check_built("full_kernel")
        matrix = self._full_matrix(self._core_arrays())
        return matrix.reshape(self.contracted_shape + self.free_shape)

    def call(self, inputs):
        ops = keras.ops
        inputs = float_input(inputs, self.compute_dtype)
        x = ops.reshape(inputs, (-1, self.input_dim))
        if self.padded_input_dim > self.input_dim:
            x = ops.pad(
                x, [[0, 0], [0, self.padded_input_dim - self.input_dim]]
            )
        y = tt_matmul(x, self.cores, self.in_modes, self.out_modes)
        if self.padded_units > self.units:
            y = y[:, : self.units]
        kept = leading_shape(inputs, len(self.contracted_shape))
        y = ops.reshape(y, kept + self.free_shape)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        num_c = len(self.parts.contracted)
        return tuple(input_shape[: len(input_shape) - num_c]) + self.free_shape

    @classmethod
    def from_einsum_dense(
        cls,
        layer: keras.layers.EinsumDense,
        tt_rank=None,
        rel_error: float | None = None,
        in_modes=None,
        out_modes=None,
        name: str | None = None,
    ) -> TTEinsumDense:
        """A `TTEinsumDense` initialised from a trained `EinsumDense` layer.

        The kernel, viewed as a ``prod(C) x prod(F)`` matrix, is decomposed
        by `keras_tt.tt_svd`; bias, activation, dtype policy, trainability
        and name (unless ``name`` is given) are copied. The original layer
        is not modified. Arguments as in `keras_tt.TTDense.from_dense`.

        Example:

        >>> import keras, keras_tt
        >>> dense = keras.layers.EinsumDense("abc,cd->abd", (None, 24),
        ...                                  bias_axes="d")
        >>> dense.build((None, 5, 32))
        >>> tt = keras_tt.TTEinsumDense.from_einsum_dense(dense, tt_rank=64)
        >>> x = keras.random.normal((2, 5, 32), seed=0)
        >>> bool(keras.ops.all(keras.ops.isclose(tt(x), dense(x), atol=1e-5)))
        True
        """
        new, _ = einsum_dense_to_tt(
            layer,
            tt_rank=tt_rank,
            rel_error=rel_error,
            in_modes=in_modes,
            out_modes=out_modes,
            name=name,
        )
        return new

    def get_config(self):
        base_config = super().get_config()
        output_shape = self.partial_output_shape
        if isinstance(output_shape, tuple):
            output_shape = list(output_shape)
        config = {
            "equation": self.equation,
            "output_shape": output_shape,
            "tt_rank": self._config_tt_rank(),
            "in_modes": as_list(self._given_in_modes),
            "out_modes": as_list(self._given_out_modes),
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            **self._weight_arguments_config(),
        }
        return {**base_config, **config}


def check_einsum_dense_layer(layer, name="layer") -> EquationParts:
    """Refuse what `TTEinsumDense` cannot stand in for, with the reason."""
    check_trained_layer(layer, keras.layers.EinsumDense, name)
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            f"The EinsumDense layer '{layer.name}' has LoRA enabled; merge or "
            "disable it first."
        )
    parts = parse_equation(layer.equation)
    if layer.bias_axes and not all(c in parts.free for c in layer.bias_axes):
        raise ValueError(
            f"The EinsumDense layer '{layer.name}' has a bias over the axes "
            f"'{layer.bias_axes}'; `TTEinsumDense` supports biases over the "
            f"kernel output axes '{parts.free}' only."
        )
    return parts


def einsum_dense_to_tt(
    layer,
    tt_rank=None,
    rel_error=None,
    in_modes=None,
    out_modes=None,
    name=None,
    callback=None,
) -> tuple[TTEinsumDense, TTDecomposition]:
    """A built `TTEinsumDense` from an `EinsumDense` layer, and its TT-SVD.

    The work behind `TTEinsumDense.from_einsum_dense`, which
    `keras_tt.tensorize` uses too; ``callback`` goes to `keras_tt.tt_svd`.
    """
    parts = check_einsum_dense_layer(layer)
    result = decompose_for_layer(
        kernel_matrix(layer),
        tt_rank=tt_rank,
        rel_error=rel_error,
        in_modes=in_modes,
        out_modes=out_modes,
        callback=callback,
        layer_name=layer.name,
    )
    warn_per_core(
        layer.name,
        "kernel",
        layer.kernel_regularizer,
        layer.kernel_constraint,
        whole="kernel",
        stacklevel=3,
    )
    kernel_shape = tuple(int(s) for s in layer.kernel.shape)
    free_shape = kernel_shape[len(parts.contracted) :]
    new = TTEinsumDense(
        layer.equation,
        layer.partial_output_shape,
        tt_rank=result.tt_rank,
        in_modes=in_modes,
        out_modes=out_modes,
        activation=layer.activation,
        bias_axes=layer.bias_axes,
        kernel_regularizer=layer.kernel_regularizer,
        bias_regularizer=layer.bias_regularizer,
        activity_regularizer=layer.activity_regularizer,
        kernel_constraint=layer.kernel_constraint,
        bias_constraint=layer.bias_constraint,
        name=name or layer.name,
        dtype=layer.dtype_policy,
        trainable=layer.trainable,
    )
    if new.free_shape != free_shape:
        raise ValueError(
            f"The EinsumDense layer '{layer.name}' has a kernel of shape "
            f"{kernel_shape} whose output axes {free_shape} differ from its "
            f"`output_shape` {layer.partial_output_shape}."
        )
    contracted = kernel_shape[: len(parts.contracted)]
    build_shape = (None,) * len(parts.prefix) + contracted
    if parts.ellipsis and not parts.prefix:
        build_shape = (None,) + contracted
    new.build(build_shape)
    new._assign_cores(result.decomposition.cores)
    if new.bias is not None:
        bias = keras.ops.convert_to_numpy(layer.bias)
        assign_copy(new.bias, np.reshape(bias, new.bias_shape))
    return new, result.decomposition


def kernel_matrix(layer) -> np.ndarray:
    """An `EinsumDense` kernel as a ``prod(C) x prod(F)`` NumPy matrix."""
    parts = parse_equation(layer.equation)
    array = float_matrix(layer.kernel)
    rows = math.prod(array.shape[: len(parts.contracted)])
    return array.reshape(rows, -1)
