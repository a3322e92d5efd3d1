"""Converters: how `tensorize` turns one kind of trained layer into TT form.

A converter is a `LayerConverter` subclass instance registered with
`register_converter`. The pass asks every registered converter, newest
first, whether it ``handles`` a layer; the first that does owns it:

- ``kind``: a short string shown in the report's "kind" column and stored
  in every `keras_tt.LayerRecord` the converter returns (``"Dense"``).
- ``handles(layer) -> bool``: whether the converter can replace this layer.
  Called on every layer of the model (also inside nested models, wrappers
  and custom layers), before any work; must be cheap and must not modify
  the layer. A handled layer is a leaf: the pass does not look inside it.
- ``kernels(layer) -> list[tuple[str, int, int]]``: one
  ``(sub_name, rows, cols)`` per matrix that ``convert`` would decompose.
  ``sub_name`` is ``""`` for a layer with one kernel, otherwise a short
  name (``"query"``). The pass uses these sizes to select layers by
  ``min_params`` (a layer is selected when its largest kernel has at least
  that many entries), to count progress steps, to check modes and
  ``target_ratio`` before any work, and in error messages.
- ``check(layer)`` (optional): raise a ValueError when the layer cannot
  be converted (not built, quantized, ...). Called for every selected
  layer before any decomposition, so that the pass fails early.
- ``convert(layer, settings, callback) -> (new_layer, records)``: build
  the replacement, a new built layer holding the TT form of the trained
  weights (plus copies of every other weight), never modifying ``layer``.
  ``settings`` is a dict with the keys ``tt_rank``, ``rel_error``,
  ``target_ratio``, ``in_modes`` and ``out_modes`` (each possibly
  ``None``) as the pass resolved them for this layer from its arguments
  and per-layer settings: at least one of ``tt_rank`` and ``rel_error`` is
  set; when ``target_ratio`` was asked for, the pass has already turned it
  into ``tt_rank`` for a one-kernel layer, and for several kernels has
  checked that each can reach it (`rank_for_ratio` gives each kernel's
  rank). ``callback`` must be passed on to `keras_tt.tt_svd` (it draws
  the progress bar). ``records`` is a list of `keras_tt.LayerRecord`, one
  per decomposed kernel, each with ``name`` set to its ``sub_name`` (the
  pass prefixes the layer's path) and ``kind`` set.

A converter whose layers cannot be copied on their own (built by their
holder, with no config) sets ``in_place = True`` and returns, instead of a
new layer, a change with ``apply(layer)`` (made to the layer of the pass's
copy of the model) that saving records (see the experts converter).

A converter whose kernels are matrices the input is multiplied by sets
``takes_fast_modes = True``: its ``settings`` may then carry
``in_modes="fast"`` (`keras_tt.fast_modes`), which ``convert`` passes on
like any modes. The others keep automatic modes under
``tensorize(modes="fast")`` and refuse ``"fast"`` asked for them alone.

The replacement must be usable wherever the original was called (same
call signature, same output), keep the original's name, and be
serializable (``get_config``, registered with
`keras.saving.register_keras_serializable`) so that the model saves.

Example, a converter for a hypothetical layer class ``MyProjection``
holding a ``kernel``:

```python
class MyProjectionConverter(LayerConverter):
    kind = "MyProjection"

    def handles(self, layer):
        return isinstance(layer, MyProjection)

    def kernels(self, layer):
        rows, cols = layer.kernel.shape
        return [("", int(rows), int(cols))]

    def convert(self, layer, settings, callback):
        new_layer, decomposition = ...  # TT-SVD with `callback`
        return new_layer, [keras_tt.LayerRecord(name="", kind=self.kind, ...)]

register_converter(MyProjectionConverter())
```
"""

from __future__ import annotations

import dataclasses

import keras

from keras_tt.layers.tt_dense import dense_to_tt_dense
from keras_tt.modes import resolve_layout
from keras_tt.report import LayerRecord
from keras_tt.report import layer_record


class KernelModesError(ValueError):
    """Modes that do not fit a kernel of a layer.

    Attributes:
        sub_name: the kernel's name inside the layer (``""`` for its only
            kernel).
        shape: the kernel's shape, as the error message shows it.
    """

    def __init__(self, message: str, sub_name: str = "", shape: str = ""):
        super().__init__(message)
        self.sub_name = sub_name
        self.shape = shape


class LayerConverter:
    """Base class of the converters `tensorize` uses; see the module doc."""

    kind: str = ""
    # True when `convert` returns a change applied to a copy of the layer.
    in_place: bool = False
    # True when the layer's kernels take ``in_modes="fast"`` (see
    # `keras_tt.fast_modes`): matrices the input is multiplied by.
    takes_fast_modes: bool = False

    def handles(self, layer: keras.layers.Layer) -> bool:
        """Whether this converter replaces ``layer``."""
        raise NotImplementedError

    def kernels(self, layer: keras.layers.Layer) -> list[tuple[str, int, int]]:
        """``(sub_name, rows, cols)`` of every matrix ``convert`` decomposes."""
        raise NotImplementedError

    def kernel_layouts(self, layer: keras.layers.Layer, in_modes, out_modes):
        """``(sub_name, layout)`` for every kernel ``convert`` decomposes.

        ``layout`` is the `keras_tt.modes.TTLayout` (its modes, with the
        padding, and the largest TT-ranks) its cores get for the modes
        given by the user (``None`` for automatic ones). By default the
        modes factor the rows and columns of `kernels`; a converter whose
        modes factor something else (a convolution's channels) overrides
        this. Raises a `KernelModesError` when the modes do not fit.
        """
        layouts = []
        for sub_name, rows, cols in self.kernels(layer):
            try:
                layout = resolve_layout(rows, cols, None, in_modes, out_modes)
            except ValueError as error:
                raise KernelModesError(
                    str(error), sub_name, f"{rows}x{cols}"
                ) from None
            layouts.append((sub_name, layout))
        return layouts

    def check(self, layer: keras.layers.Layer) -> None:
        """Raise a ValueError if ``layer`` cannot be converted."""

    def convert(
        self, layer: keras.layers.Layer, settings: dict, callback
    ) -> tuple[keras.layers.Layer, list[LayerRecord]]:
        """The TT replacement of ``layer`` and one record per kernel."""
        raise NotImplementedError


_CONVERTERS: list[LayerConverter] = []


def register_converter(converter: LayerConverter) -> LayerConverter:
    """Make `tensorize` use ``converter``; later ones take precedence.

    Registering a second instance of the same class replaces the first.

    Args:
        converter: a `LayerConverter` instance.

    Returns:
        ``converter``.
    """
    if not isinstance(converter, LayerConverter):
        raise TypeError(
            "Received an invalid value for `converter`, expected a "
            "`LayerConverter` instance. "
            f"Received: converter={converter!r}"
        )
    if not isinstance(converter.kind, str) or not converter.kind:
        raise ValueError(
            "Received an invalid value for `converter`, expected a non-empty "
            f"string `kind`. Received: kind={converter.kind!r}"
        )
    _CONVERTERS[:] = [c for c in _CONVERTERS if type(c) is not type(converter)]
    _CONVERTERS.append(converter)
    return converter


def registered_converters() -> list[LayerConverter]:
    """The registered converters, newest first."""
    return list(reversed(_CONVERTERS))


def converter_for(layer) -> LayerConverter | None:
    """The converter that owns ``layer``, or None."""
    if not isinstance(layer, keras.layers.Layer):
        return None
    for converter in registered_converters():
        if converter.handles(layer):
            return converter
    return None


class DenseConverter(LayerConverter):
    """`keras.layers.Dense` -> `keras_tt.TTDense` (TT-SVD of the kernel)."""

    kind = "Dense"
    takes_fast_modes = True

    def handles(self, layer):
        return isinstance(layer, keras.layers.Dense)

    def check(self, layer):
        if not layer.built:
            raise ValueError(
                f"The Dense layer '{layer.name}' is not built, so it has no "
                "kernel to decompose: call the model on data first."
            )
        if getattr(layer, "quantization_mode", None):
            raise ValueError(
                f"The Dense layer '{layer.name}' is quantized "
                f"({layer.quantization_mode!r}); tensorize the float model "
                "before quantizing it."
            )
        dtype = keras.backend.standardize_dtype(layer.kernel.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"The Dense layer '{layer.name}' has a {dtype} kernel; "
                "tensorize handles float16, bfloat16, float32 and float64 "
                "kernels."
            )

    def kernels(self, layer):
        if not layer.built:
            return []
        rows, cols = (int(s) for s in layer.kernel.shape)
        return [("", rows, cols)]

    def convert(self, layer, settings, callback):
        new_layer, decomposition = dense_to_tt_dense(
            layer,
            settings.get("tt_rank"),
            settings.get("rel_error"),
            settings.get("in_modes"),
            settings.get("out_modes"),
            callback=callback,
        )
        record = layer_record(
            new_layer, rel_error=decomposition.rel_error, kind=self.kind
        )
        return new_layer, [dataclasses.replace(record, name="")]


register_converter(DenseConverter())
