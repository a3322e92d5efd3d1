"""What the TT layers share: layout properties, cores, config and checks.

A TT layer holds one matrix of ``rows x cols`` entries (a kernel or an
embedding table) as the cores of a TT-matrix. `TTMatrixMixin` gives such a
layer its layout and the numbers derived from it, in any Keras (it reads
plain attributes only, so the ``tf_keras`` `TTDense` uses it too);
`TTLayerMixin` adds the Keras 3 weight plumbing: creating the cores with
the TT initialiser, assigning decomposed cores and checking stored shapes
on load. The functions below serve the layers' ``__init__``, ``call``,
``get_config`` and ``from_*`` conversions.
"""

from __future__ import annotations

import math
import numbers
import warnings

import keras
import numpy as np

from keras_tt import modes as modes_lib
from keras_tt.initializers import as_tt_initializer
from keras_tt.tt_matrix import full_matrix


def check_trained_layer(layer, expected, argument, weights="kernel"):
    """Refuse a layer that has no trained float weights to decompose.

    ``expected`` is the class the conversion takes (``keras.layers.Dense``,
    ``tf_keras.layers.Dense``, ...); ``argument`` the name of the argument
    that held ``layer``, for the message; ``weights`` what is decomposed.
    """
    kind = expected.__name__
    if not isinstance(layer, expected):
        module = expected.__module__.split(".")[0]
        raise ValueError(
            f"Received an invalid value for `{argument}`, expected a "
            f"`{module}.layers.{kind}` layer. "
            f"Received: {argument}={type(layer).__name__}"
        )
    if not layer.built:
        raise ValueError(
            f"The {kind} layer '{layer.name}' is not built, so it has no "
            f"{weights} to decompose: call it on an input or build it first."
        )
    if getattr(layer, "quantization_mode", None):
        raise ValueError(
            f"The {kind} layer '{layer.name}' is quantized "
            f"({layer.quantization_mode!r}); tensorize the float model "
            "before quantizing it."
        )


def float_input(inputs, compute_dtype):
    """Inputs as a dense floating tensor, as `keras.layers.Dense` takes them.

    Sparse inputs are densified and integer or boolean inputs are cast to
    the layer's compute dtype.
    """
    inputs = keras.ops.convert_to_tensor(inputs, sparse=False)
    if not keras.backend.is_float_dtype(inputs.dtype):
        inputs = keras.ops.cast(inputs, compute_dtype)
    return inputs


def assign_copy(variable, value) -> None:
    """Assign a copy of ``value`` (a variable or tensor) to ``variable``.

    Never the same buffer: on JAX, assigning one variable to another
    shares the array, and the buffers a jitted ``fit`` or ``predict``
    donates would then be deleted under the other model too.
    """
    variable.assign(np.array(keras.ops.convert_to_numpy(value)))


def as_list(modes):
    """Modes as a list of ints for a config, ``"fast"`` or ``None``."""
    if modes is None or modes_lib.is_fast(modes):
        return modes
    return [int(m) for m in modes]


def normalize_tt_rank(tt_rank):
    """A checked ``tt_rank`` argument as an int or a tuple of ints."""
    if isinstance(tt_rank, numbers.Integral):
        return int(tt_rank)
    return tuple(int(r) for r in tt_rank)


# The most entries the cores of one TT layer (or the factors of a low-rank
# layer) may hold: 8 GiB of float32, and TFLite indexes tensors with 32-bit
# integers.
MAX_CORE_PARAMS = 2**31
# Cores may hold at most this many times the entries of the dense matrix
# they stand for. Ranks capped at `keras_tt.modes.max_tt_ranks` keep full-
# rank cores of automatic modes within about 4.6 times the dense matrix
# (padding and the size-1 cores of a convolution's chain included); only a
# config that was damaged or edited asks for more.
MAX_CORE_TO_DENSE = 8


class _TooManyParamsError(ValueError):
    """The `ValueError` of `check_param_count`.

    Its own class so that `TTLayerMixin.from_config` can tell it from the
    other errors of a layer's ``__init__``.
    """


def _short(values, limit=8):
    """``values`` as a tuple for a message, elided past ``limit`` entries."""
    values = tuple(values)
    if len(values) <= limit:
        return str(values)
    head = ", ".join(str(v) for v in values[:limit])
    return f"({head}, ...: {len(values)} entries)"


def check_param_count(num_params, dense_params, argument, value, what):
    """Refuse weights that would hold more entries than they stand for.

    Called before any variable is created: ``num_params`` are the entries
    the weights would hold, ``dense_params`` those of the dense matrix they
    replace, ``what`` describes the weights for the message and
    ``argument``/``value`` the argument that sets their size. The limit is
    `MAX_CORE_TO_DENSE` times ``dense_params``, and never more than
    `MAX_CORE_PARAMS`.
    """
    limit = MAX_CORE_TO_DENSE * dense_params
    if num_params <= min(limit, MAX_CORE_PARAMS):
        return
    if num_params > limit:
        bound = (
            f"more than {MAX_CORE_TO_DENSE} times the {dense_params:,} of the "
            "dense kernel they stand for"
        )
    else:
        bound = (
            f"more than the {MAX_CORE_PARAMS:,} (2**31) a layer of keras_tt "
            "may hold"
        )
    raise _TooManyParamsError(
        f"Received an invalid value for `{argument}`: {what} would hold "
        f"{num_params:,} parameters, {bound}; if it comes from a saved "
        f"model, the file may be damaged or edited. Received: "
        f"{argument}={value!r}"
    )


def check_core_count(layout, tt_rank, argument="tt_rank"):
    """Refuse a TT layout whose cores would be too large to create.

    Every TT layer calls it before creating its cores (in `_add_cores`, and
    earlier where the layout is known in ``__init__``), so a tampered
    ``.keras`` file fails with this error instead of allocating. The
    limits are those of `check_param_count`, against the ``input_dim x
    units`` matrix of ``layout``.
    """
    check_param_count(
        layout.num_params,
        layout.input_dim * layout.units,
        argument,
        tt_rank,
        f"cores of ranks {_short(layout.ranks)} over modes "
        f"{_short(layout.in_modes)} x {_short(layout.out_modes)}",
    )


def check_given_modes(units, tt_rank, in_modes, out_modes):
    """Modes given to a dense TT layer, checked before the input is known.

    The modes are checked against each other and against ``units`` now; the
    input side is checked again in ``build``, once its width is known.

    ``"fast"`` (see `keras_tt.fast_modes`) is kept as it is: the modes
    depend on the input width too.

    Returns:
        ``(in_modes, out_modes)`` as tuples (or ``"fast"``), each ``None``
        when not given.
    """
    if in_modes is None and out_modes is None:
        return None, None
    if modes_lib.is_fast(in_modes) or modes_lib.is_fast(out_modes):
        modes_lib.check_fast_pair(in_modes, out_modes)
        return in_modes, out_modes
    probe_dim = (
        math.prod(
            modes_lib.validate_modes(in_modes, "in_modes", allow_fast=True)
        )
        if in_modes is not None
        else 1
    )
    layout = modes_lib.resolve_layout(
        probe_dim, units, tt_rank, in_modes, out_modes, warn=False
    )
    if in_modes is not None and out_modes is not None:
        check_core_count(layout, tt_rank)
    return (
        layout.in_modes if in_modes is not None else None,
        layout.out_modes if out_modes is not None else None,
    )


def leading_shape(inputs, num_trailing=1):
    """The axes of ``inputs`` before the last ``num_trailing``, as a target.

    A reshape target for the output of a layer that flattened those axes.
    When they are all known it is that constant shape; when only the batch
    axis (the first) is unknown it is ``(-1, *rest)``, still a constant: the
    exported graph then has no shape arithmetic, which LiteRT's
    ``CompiledModel`` does not evaluate for a batch it was not resized to.
    Otherwise it is read from ``keras.ops.shape`` at run time.
    """
    shape = tuple(inputs.shape)
    kept = shape[: len(shape) - num_trailing]
    if all(dim is not None for dim in kept):
        return tuple(int(dim) for dim in kept)
    rest = kept[1:]
    if all(dim is not None for dim in rest) and 0 not in rest:
        return (-1, *(int(dim) for dim in rest))
    return tuple(keras.ops.shape(inputs)[: len(kept)])


def core_initializers(initializer, fan_in, fan_out, ranks):
    """One initialiser per core for a TT-matrix with these fans and ranks.

    Keras variance-scaling initialisers target the variance of the full
    matrix (`keras_tt.initializers.TTVarianceScaling`); any other
    initialiser is applied to each core as it is.
    """
    num_cores = len(ranks) - 1
    tt_init = as_tt_initializer(initializer)
    if tt_init is None:
        return [initializer] * num_cores
    return [
        tt_init.core_initializer(k, fan_in, fan_out, ranks)
        for k in range(num_cores)
    ]


def warn_per_core(
    layer_name, weight, regularizer, constraint, whole, stacklevel
):
    """Warn that a dense weight's regulariser/constraint now acts per core.

    A penalty on the cores is not the same penalty on the full matrix.
    ``weight`` names the argument (``"kernel"`` for ``kernel_regularizer``)
    and ``whole`` the matrix (``"kernel"``, ``"table"``).
    """
    given = [
        what
        for what, value in (
            ("regularizer", regularizer),
            ("constraint", constraint),
        )
        if value is not None
    ]
    if not given:
        return
    warnings.warn(
        f"Layer '{layer_name}': its {weight} "
        + " and ".join(given)
        + f" now apply to each TT-core, not to the full {whole}.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


class TTMatrixMixin:
    """Layout properties of a layer holding a TT-matrix.

    A layer using it names, in `_layout_fields`, its attributes for the
    rows, the columns, the row modes and the column modes of the matrix,
    and holds the ranks in ``tt_ranks`` (``None`` until they are resolved)
    and the requested ranks in ``tt_rank``.
    """

    _layout_fields = ("input_dim", "units", "in_modes", "out_modes")

    def _check_built(self, what):
        if getattr(self, "tt_ranks", None) is None:
            raise ValueError(
                f"`{what}` is only known once the layer is built; call the "
                "layer on an input or call `build(input_shape)` first."
            )

    @property
    def layout(self) -> modes_lib.TTLayout:
        """The `keras_tt.modes.TTLayout` of the TT-matrix (once built)."""
        self._check_built("layout")
        rows, cols, row_modes, col_modes = (
            getattr(self, field) for field in self._layout_fields
        )
        return modes_lib.TTLayout(
            rows, cols, row_modes, col_modes, self.tt_ranks
        )

    @property
    def padded_input_dim(self):
        """Input width after zero-padding: the product of the row modes."""
        modes = getattr(self, self._layout_fields[2])
        return math.prod(modes) if modes else None

    @property
    def padded_units(self):
        """Output width before the extra outputs are dropped."""
        modes = getattr(self, self._layout_fields[3])
        return math.prod(modes) if modes else None

    @property
    def num_core_params(self) -> int:
        """Number of parameters held in the cores."""
        self._check_built("num_core_params")
        return self.layout.num_params

    @property
    def compression_ratio(self) -> float:
        """Dense matrix size over the total core size."""
        self._check_built("compression_ratio")
        return self.layout.compression_ratio

    def _full_matrix(self, cores) -> np.ndarray:
        """The unpadded matrix that NumPy ``cores`` stand for."""
        layout = self.layout
        return full_matrix(cores)[: layout.input_dim, : layout.units]

    def _resolve_kernel_layout(self) -> modes_lib.TTLayout:
        """Set `in_modes`, `out_modes` and `tt_ranks` once `input_dim` is known.

        The modes and ranks come from the requested ones (``tt_rank`` and
        the modes given to ``__init__``) through
        `keras_tt.modes.resolve_layout`, which warns when it clamps ranks
        that were chosen explicitly; cores too large to create are refused
        (`check_core_count`).
        """
        layout = modes_lib.resolve_layout(
            self.input_dim,
            self.units,
            self.tt_rank,
            self._given_in_modes,
            self._given_out_modes,
        )
        check_core_count(layout, self.tt_rank)
        self.in_modes, self.out_modes = layout.in_modes, layout.out_modes
        self.tt_ranks = layout.ranks
        return layout

    def _config_tt_rank(self):
        """``tt_rank`` for `get_config`: the ranks in use if they were clamped.

        Storing the ranks in use when they differ from the request makes
        reloading quiet and gives the same cores.
        """
        if self.tt_ranks is None:
            tt_rank = self.tt_rank
            return list(tt_rank) if isinstance(tt_rank, tuple) else tt_rank
        return rank_for_config(self.tt_rank, self.tt_ranks)


def rank_for_config(requested, ranks):
    """A requested TT-rank for a config: ``ranks``'s inner ranks when the
    request was clamped to them, else the request (a list for sequences)."""
    inner = tuple(ranks[1:-1])
    given = (
        (requested,) * len(inner)
        if isinstance(requested, numbers.Integral)
        else tuple(requested)
    )
    if given != inner:
        requested = inner
    return list(requested) if isinstance(requested, tuple) else requested


class TTLayerMixin(TTMatrixMixin):
    """`TTMatrixMixin` plus the Keras 3 weight plumbing of the TT layers."""

    @classmethod
    def from_config(cls, config):
        """The layer of ``config``; cores too large are a `ValueError`.

        Keras turns any error of ``__init__`` into a ``TypeError`` about
        deserialization; the size check of `check_core_count` is raised as
        the ``ValueError`` it is, so that loading a damaged or edited file
        says what is wrong with it.
        """
        try:
            return super().from_config(config)
        except TypeError as error:
            if isinstance(error.__context__, _TooManyParamsError):
                raise error.__context__ from None
            raise

    @property
    def _compute_itemsize(self) -> int:
        """Bytes per element in the layer's compute dtype."""
        dtype = keras.backend.standardize_dtype(self.compute_dtype)
        return np.dtype(dtype).itemsize

    def _set_weight_arguments(
        self,
        kernel_initializer,
        bias_initializer,
        kernel_regularizer,
        bias_regularizer,
        kernel_constraint,
        bias_constraint,
    ):
        """The ``kernel_*`` / ``bias_*`` arguments, resolved as Keras does."""
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def _weight_arguments_config(self) -> dict:
        """The config entries of `_set_weight_arguments`'s arguments."""
        return {
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint
            ),
            "bias_constraint": keras.constraints.serialize(
                self.bias_constraint
            ),
        }

    def _add_cores(self, initializers, regularizer, constraint):
        """Create the weights ``core_0`` ... ``core_{d-1}`` in `cores`.

        The size of the cores is checked first (`check_core_count`).
        """
        check_core_count(self.layout, self.tt_rank)
        self.cores = [
            self.add_weight(
                name=f"core_{k}",
                shape=shape,
                initializer=initializer,
                regularizer=regularizer,
                constraint=constraint,
            )
            for k, (shape, initializer) in enumerate(
                zip(self.layout.core_shapes, initializers)
            )
        ]

    def _build_kernel_cores(self):
        """Resolve the modes and ranks of a kernel and create its cores.

        For the layers with a ``kernel_*`` family of arguments, once
        ``input_dim`` is known: `_resolve_kernel_layout`, then the cores
        with the kernel's initialiser (fans ``input_dim`` and ``units``),
        regulariser and constraint.
        """
        layout = self._resolve_kernel_layout()
        self._add_cores(
            core_initializers(
                self.kernel_initializer,
                self.input_dim,
                self.units,
                layout.ranks,
            ),
            self.kernel_regularizer,
            self.kernel_constraint,
        )

    def _assign_cores(self, cores):
        """Set the cores to decomposed values, cast to each core's dtype."""
        for variable, core in zip(self.cores, cores):
            variable.assign(keras.ops.cast(core, variable.dtype))

    def _core_arrays(self):
        return [keras.ops.convert_to_numpy(c) for c in self.cores]

    def load_own_variables(self, store):
        """Load the weights, checking their shapes first.

        A ``.keras`` file whose config disagrees with its stored weights
        (edited by hand, or written by another version) is refused with the
        shapes it holds, before any value is assigned.
        """
        expected = [tuple(v.shape) for v in self.weights]
        stored = [tuple(store[str(i)].shape) for i in range(len(store.keys()))]
        if stored != expected:
            _, _, row_modes, col_modes = (
                getattr(self, field) for field in self._layout_fields
            )
            raise ValueError(
                f"Cannot load the weights of layer '{self.name}': its config "
                f"describes weights of shapes {expected} (TT-ranks "
                f"{self.tt_ranks}, modes {row_modes} x {col_modes}), but the "
                f"file stores shapes {stored}."
            )
        super().load_own_variables(store)
