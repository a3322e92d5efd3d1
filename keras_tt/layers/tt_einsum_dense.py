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
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import float_input
from keras_tt.layers._tt_base import leading_shape
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import warn_per_core

_EQUATION = re.compile(
    r"^(\.\.\.)?([a-zA-Z]*),([a-zA-Z]+)->(\.\.\.)?([a-zA-Z]*)$"
)


def _permutation(order, spec):
    """Positions in ``spec`` of the letters of ``order``; None if identity."""
    perm = tuple(spec.index(c) for c in order)
    return None if perm == tuple(range(len(perm))) else perm


@dataclasses.dataclass(frozen=True)
class EquationParts:
    """An `EinsumDense` equation that is a matrix product, by groups of axes.

    The kernel is the matrix ``W`` of ``prod(contracted)`` rows and
    ``prod(free)`` columns; the input, viewed with its kept axes first and
    its contracted axes last, is multiplied by ``W``, and the result (kept
    axes then free axes) is put in the output's order.

    Attributes:
        prefix: the input axes kept in the output (in input order),
            ellipsis excluded.
        contracted: the axes summed between input and kernel, in kernel
            order (the rows of ``W``).
        free: the kernel axes that go to the output, in kernel order (the
            columns of ``W``).
        ellipsis: whether the equation starts its input and output with
            ``...``.
        input_spec: the input axes as written, ellipsis excluded.
        kernel_spec: the kernel axes as written.
        output_spec: the output axes as written, ellipsis excluded.
    """

    prefix: str
    contracted: str
    free: str
    ellipsis: bool
    input_spec: str = None
    kernel_spec: str = None
    output_spec: str = None

    def __post_init__(self):
        # Parts built from the four groups alone: the ordered equation.
        for name, value in (
            ("input_spec", self.prefix + self.contracted),
            ("kernel_spec", self.contracted + self.free),
            ("output_spec", self.prefix + self.free),
        ):
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)

    @property
    def input_permutation(self):
        """Input axes (explicit ones) to kept + contracted; None if
        already so."""
        return _permutation(self.prefix + self.contracted, self.input_spec)

    @property
    def kernel_permutation(self):
        """Kernel axes to contracted + free; None if already so."""
        return _permutation(self.contracted + self.free, self.kernel_spec)

    @property
    def output_permutation(self):
        """Kept + free axes to the output's order; None if already so."""
        return _permutation(self.output_spec, self.prefix + self.free)

    def kernel_sizes(self, kernel_shape):
        """``(contracted sizes, free sizes)`` of a kernel of this shape."""
        sizes = dict(zip(self.kernel_spec, (int(s) for s in kernel_shape)))
        return (
            tuple(sizes[c] for c in self.contracted),
            tuple(sizes[c] for c in self.free),
        )

    def build_shape(self, kernel_shape):
        """An input shape to build a layer with this kernel shape: the
        contracted axes sized, the kept ones (and a batch axis for '...'
        with no kept axis) None."""
        sizes = dict(zip(self.kernel_spec, (int(s) for s in kernel_shape)))
        shape = tuple(sizes.get(c) for c in self.input_spec)
        if self.ellipsis and not self.prefix:
            shape = (None,) + shape
        return shape


def parse_equation(equation) -> EquationParts:
    """Split an `EinsumDense` equation that is a matrix product.

    `TTEinsumDense` takes one input and one kernel where each input axis is
    either kept (it appears in the output, not in the kernel) or contracted
    (it appears in the kernel, not in the output), and each kernel axis is
    either contracted or free (it appears in the output, not in the input).
    The output holds the kept and the free axes in any order, and the axes
    may come in any order in the input and the kernel: ``"abc,cd->abd"``,
    ``"abcd,cde->abe"``, ``"abc,dc->abd"``, ``"...d,hd->...h"``, and
    Gemma's projections ``"btd,ndh->btnh"``, ``"btnh,nhd->btd"``. The kernel
    is then a matrix (contracted axes x free axes, each group in kernel
    order). What is not a matrix product is refused with the reason: an
    axis in the input, the kernel and the output (a batched kernel), an
    input axis missing from the output and the kernel or a kernel axis
    missing from the output and the input (a plain sum), repeated axes, no
    contracted or no free axis, a '...' on one side only.

    Example:

    >>> parse_equation("abcd,cde->abe")
    EquationParts(prefix='ab', contracted='cd', free='e', ellipsis=False, \
input_spec='abcd', kernel_spec='cde', output_spec='abe')
    >>> parts = parse_equation("btd,ndh->btnh")
    >>> parts.prefix, parts.contracted, parts.free
    ('bt', 'd', 'nh')
    >>> parts.kernel_permutation, parts.output_permutation
    ((1, 0, 2), None)
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
            "`TTEinsumDense` handles equations that are a matrix product: "
            "each input axis kept (in the output, not the kernel) or "
            "contracted (in the kernel, not the output), each kernel axis "
            "contracted or free (in the output, not the input), in any "
            "order (such as 'abc,cd->abd' or 'btd,ndh->btnh'). "
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
    batched = [c for c in kernel if c in inputs and c in output]
    if batched:
        refuse(
            f"axes {batched} appear in the input, the kernel and the output "
            "(a batched kernel);"
        )
    summed = [c for c in inputs if c not in kernel and c not in output]
    if summed:
        refuse(
            f"the input axes {summed} are in neither the kernel nor the "
            "output (a plain sum over the input);"
        )
    summed = [c for c in kernel if c not in inputs and c not in output]
    if summed:
        refuse(
            f"the kernel axes {summed} are in neither the input nor the "
            "output (a plain sum over the kernel);"
        )
    unknown = [c for c in output if c not in inputs and c not in kernel]
    if unknown:
        refuse(
            f"the output axes {unknown} are in neither the input nor the "
            "kernel;"
        )
    contracted = "".join(c for c in kernel if c in inputs)
    free = "".join(c for c in kernel if c not in inputs)
    if not contracted:
        refuse("no axis is contracted;")
    if not free:
        refuse("the kernel has no output axis;")
    prefix = "".join(c for c in inputs if c in output)
    return EquationParts(
        prefix, contracted, free, bool(in_ellipsis), inputs, kernel, output
    )


def _free_shape(output_shape, parts, name="output_shape"):
    """Sizes of the free axes (kernel order), read from ``output_shape``.

    As in `keras.layers.EinsumDense`, ``output_shape`` lines up with the end
    of the output's axes.
    """
    shape = (
        [output_shape]
        if isinstance(output_shape, numbers.Integral)
        else list(output_shape)
        if isinstance(output_shape, (list, tuple))
        else None
    )
    offset = None if shape is None else len(shape) - len(parts.output_spec)
    positions = [parts.output_spec.index(c) for c in parts.free]
    if shape is None or offset + min(positions) < 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected an integer or "
            "a sequence of the output sizes (without the batch axis) that "
            f"covers the kernel output axes '{parts.free}' of the output "
            f"'{parts.output_spec}'. Received: {name}={output_shape!r}"
        )
    free = [shape[offset + i] for i in positions]
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

    For equations that are a matrix product (see
    `keras_tt.layers.tt_einsum_dense.parse_equation`): each input axis is
    kept (in the output, not in the kernel) or contracted (``C``, in the
    kernel, not in the output), each kernel axis is contracted or free
    (``F``, in the output, not in the input), the output holds the kept and
    the free axes in any order, and the axes come in any order in the input
    and the kernel. This covers every projection inside
    `keras.layers.MultiHeadAttention` (``"abc,cde->abde"``,
    ``"abcd,cde->abe"``) and keras_hub's Gemma and Llama attention
    (``"btd,ndh->btnh"``, ``"bsd,kdh->bskh"``, ``"btnh,nhd->btd"``). The
    kernel is a matrix ``W`` of ``prod(C)`` rows and ``prod(F)`` columns
    (each group in kernel order), and the layer computes what
    `keras.layers.EinsumDense` does,

        output = activation(einsum(equation, input, kernel) + bias),

    with ``W`` held as TT-cores as in `keras_tt.TTDense`: the input is
    transposed to its kept axes then ``C`` (when it is not so already),
    reshaped to ``(-1, prod(C))``, multiplied by ``W`` by the plan
    ``contraction`` picks, reshaped to the kept axes then ``F`` and
    transposed to the output's order (again only when needed). Other
    equations (a batched kernel, a plain sum) are refused with the reason.

    Modes, ranks and padding work as in `keras_tt.TTDense`; ``in_modes``
    factor ``prod(C)`` and ``out_modes`` factor ``prod(F)``. Variance-
    scaling initialisers set the variance of ``W`` with ``fan_in = prod(C)``
    and ``fan_out = prod(F)``, the fans of the equivalent `Dense` layer.

    Args:
        equation: the einsum equation, as for `keras.layers.EinsumDense`.
        output_shape: the output shape without the batch axis, as for
            `keras.layers.EinsumDense`: it lines up with the end of the
            output's axes and gives the sizes of the free axes ``F``.
        tt_rank: positive integer, the TT-rank of every inner bond, or a
            sequence of the ``d - 1`` inner ranks.
        in_modes: optional factors of ``prod(C)``, or ``"fast"`` for the
            two-core modes of `keras_tt.fast_modes` (on both sides).
        out_modes: optional factors of ``prod(F)``, or ``"fast"``.
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
        contraction: ``"auto"`` (the default), ``"chain"`` or ``"dense"``:
            how ``x @ W`` is computed, as in `keras_tt.TTDense`; ``"auto"``
            plans for the static number of rows (the product of the kept
            input axes), in TensorFlow and in LiteRT export.
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

    A Gemma query projection, whose kernel has the heads axis first:

    >>> import numpy as np
    >>> query = keras_tt.TTEinsumDense("btd,ndh->btnh", (None, 4, 8),
    ...                                tt_rank=4)
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 16))
    >>> y = query(x)
    >>> tuple(y.shape), query.full_kernel().shape
    ((2, 5, 4, 8), (4, 16, 8))
    >>> expected = np.einsum("btd,ndh->btnh", x, query.full_kernel())
    >>> bool(np.allclose(keras.ops.convert_to_numpy(y), expected, atol=1e-5))
    True
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
        contraction="auto",
        **kwargs,
    ):
        check_contraction(contraction)
        parts = parse_equation(equation)
        free_shape = _free_shape(output_shape, parts)
        units = math.prod(free_shape)
        modes_lib.check_tt_rank_argument(tt_rank)
        modes_lib.check_fast_pair(in_modes, out_modes)
        if in_modes is not None:
            in_modes = modes_lib.validate_modes(
                in_modes, "in_modes", allow_fast=True
            )
        if out_modes is not None:
            out_modes = modes_lib.validate_modes(
                out_modes, "out_modes", units, allow_fast=True
            )
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
        self.contraction = contraction
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
        output = self.parts.output_spec
        sizes = dict(zip(self.parts.free, self.free_shape))
        first = min(output.index(c) for c in self.bias_axes)
        return tuple(
            sizes[c] if c in self.bias_axes else 1 for c in output[first:]
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        parts = self.parts
        explicit = len(parts.input_spec)
        if len(input_shape) < explicit or (
            not self.parts.ellipsis and len(input_shape) != explicit
        ):
            raise ValueError(
                f"`TTEinsumDense` with equation '{self.equation}' expects "
                f"inputs of rank {explicit}"
                + (" or more" if self.parts.ellipsis else "")
                + f". Received: input_shape={input_shape}"
            )
        # Explicit input axes line up with the end (after any '...').
        position = {c: i - explicit for i, c in enumerate(parts.input_spec)}
        contracted = [input_shape[position[c]] for c in parts.contracted]
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
                position[c]: size
                for c, size in zip(parts.contracted, self.contracted_shape)
            },
        )

    def full_kernel(self) -> np.ndarray:
        """The kernel as `EinsumDense` holds it (its axes in the equation's
        kernel order), as NumPy."""
        self._check_built("full_kernel")
        matrix = self._full_matrix(self._core_arrays())
        kernel = matrix.reshape(self.contracted_shape + self.free_shape)
        perm = self.parts.kernel_permutation
        if perm is not None:
            kernel = np.transpose(kernel, np.argsort(perm))
        return kernel

    def contraction_plan(self, batch=None):
        """The `TTPlan` a call with ``batch`` rows runs.

        ``batch`` counts the rows of the flattened input (the product of
        the input axes that are not contracted); ``None`` when unknown.
        """
        self._check_built("contraction_plan")
        return layer_plan(self, batch)

    def call(self, inputs):
        ops = keras.ops
        inputs = float_input(inputs, self.compute_dtype)
        parts = self.parts
        elided = len(inputs.shape) - len(parts.input_spec)
        perm = parts.input_permutation
        if perm is not None:
            inputs = ops.transpose(
                inputs, list(range(elided)) + [elided + p for p in perm]
            )
        x = ops.reshape(inputs, (-1, self.input_dim))
        kept_axes = len(inputs.shape) - len(self.contracted_shape)
        plan = self.contraction_plan(rows_for_plan(inputs.shape[:kept_axes]))
        kept = leading_shape(inputs, len(self.contracted_shape))
        y = planned_matmul(self, x, plan, out_shape=kept + self.free_shape)
        perm = parts.output_permutation
        if perm is not None:
            y = ops.transpose(
                y, list(range(elided)) + [elided + p for p in perm]
            )
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        parts = self.parts
        input_shape = tuple(input_shape)
        elided = len(input_shape) - len(parts.input_spec)
        sizes = dict(zip(parts.input_spec, input_shape[elided:]))
        sizes.update(zip(parts.free, self.free_shape))
        return input_shape[:elided] + tuple(sizes[c] for c in parts.output_spec)

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

        The kernel, transposed to its contracted then its free axes and
        viewed as a ``prod(C) x prod(F)`` matrix, is decomposed by
        `keras_tt.tt_svd`; bias, activation, dtype policy, trainability
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
            "contraction": self.contraction,
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
    _, free_shape = parts.kernel_sizes(kernel_shape)
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
    new.build(parts.build_shape(kernel_shape))
    new._assign_cores(result.decomposition.cores)
    if new.bias is not None:
        bias = keras.ops.convert_to_numpy(layer.bias)
        assign_copy(new.bias, np.reshape(bias, new.bias_shape))
    return new, result.decomposition


def input_rows(parts, x) -> np.ndarray:
    """A NumPy input as the rows ``W`` multiplies: its kept axes then its
    contracted axes (kernel order), flattened to ``(-1, prod(C))``."""
    x = np.asarray(x)
    perm = parts.input_permutation
    if perm is not None:
        elided = x.ndim - len(parts.input_spec)
        x = np.transpose(x, list(range(elided)) + [elided + p for p in perm])
    rows = math.prod(x.shape[x.ndim - len(parts.contracted) :])
    return x.reshape(-1, rows)


def kernel_matrix(layer) -> np.ndarray:
    """An `EinsumDense` kernel as a ``prod(C) x prod(F)`` NumPy matrix,
    its rows the contracted axes and its columns the free axes, each group
    in kernel order."""
    parts = parse_equation(layer.equation)
    array = float_matrix(layer.kernel)
    if parts.kernel_permutation is not None:
        array = np.transpose(array, parts.kernel_permutation)
    rows = math.prod(array.shape[: len(parts.contracted)])
    return np.ascontiguousarray(array.reshape(rows, -1))
