"""`tensorize` for tf_keras models: Dense layers to tf_keras `TTDense`.

The same pass as `keras_tt.tensorize`, with the same arguments and the same
`keras_tt.report.CompressionReport`, for the `tf_keras` (Keras 2) models
that tensorflow-model-optimization works on.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np
import tf_keras

from keras_tt import modes as modes_lib
from keras_tt.report import CompressionReport
from keras_tt.report import layer_record
from keras_tt.tensorize._arguments import check_rank_arguments
from keras_tt.tensorize._arguments import check_settings
from keras_tt.tensorize._planning import rank_for_ratio
from keras_tt.tf_keras.layers import TTDense
from keras_tt.tf_keras.layers import dense_to_tt_dense

# Dense kernels smaller than this (128 x 128) are left alone by default, as
# in `keras_tt.tensorize`.
DEFAULT_MIN_PARAMS = 16_384

_SETTING_KEYS = (
    "tt_rank",
    "rel_error",
    "target_ratio",
    "in_modes",
    "out_modes",
)


def model_report(model) -> CompressionReport:
    """The `keras_tt.report.CompressionReport` of a tf_keras model's TT layers.

    ``params_before`` counts the model as if every `TTDense` kernel were a
    dense matrix; approximation errors are unknown (``None``).
    """
    records = [
        layer_record(layer)
        for layer in model.layers
        if isinstance(layer, TTDense) and layer.built
    ]
    after = int(model.count_params())
    extra = sum(r.dense_params - r.tt_params for r in records)
    return CompressionReport(records, after + extra, after)


def _check_settings(settings, key):
    if settings is None:
        return {}
    if not isinstance(settings, Mapping) or set(settings) - set(_SETTING_KEYS):
        raise ValueError(
            "Received an invalid value for `layers`, expected per-layer "
            f"settings as a dict with keys among {_SETTING_KEYS}. "
            f"Received: {key!r}: {settings!r}"
        )
    return check_settings(settings, f"layer {key!r}")


def _kernel_size(layer) -> int:
    return int(np.prod(layer.kernel.shape)) if layer.built else 0


def _select(model, layers, min_params):
    """``[(Dense layer, settings)]`` to replace, in model order."""
    dense = [
        layer
        for layer in model.layers
        if isinstance(layer, tf_keras.layers.Dense)
    ]
    names = [layer.name for layer in dense]

    def find(key):
        for layer in model.layers:
            if layer is key or layer.name == key:
                if not isinstance(layer, tf_keras.layers.Dense):
                    raise ValueError(
                        f"Received an invalid value for `layers`: "
                        f"'{layer.name}' is a {type(layer).__name__}, not a "
                        f"Dense layer. The model's Dense layers are {names}. "
                        f"Received: layers={key!r}"
                    )
                return layer
        raise ValueError(
            "Received an invalid value for `layers`, expected names or "
            f"objects of the model's top-level Dense layers {names}. "
            f"Received: layers={key!r}"
        )

    if layers is None:
        return [(l, {}) for l in dense if _kernel_size(l) >= min_params]
    if isinstance(layers, (str, tf_keras.layers.Layer)):
        layers = [layers]
    if isinstance(layers, Mapping):
        chosen = [
            (find(key), _check_settings(value, key))
            for key, value in layers.items()
        ]
    elif callable(layers):
        chosen = [(l, {}) for l in dense if layers(l)]
    elif isinstance(layers, Sequence):
        chosen = [(find(key), {}) for key in layers]
    else:
        raise ValueError(
            "Received an invalid value for `layers`, expected layer names, "
            "layer objects, a predicate or a dict of per-layer settings. "
            f"Received: layers={layers!r}"
        )
    unique = {}
    for layer, settings in chosen:
        unique.setdefault(id(layer), (layer, settings))
    return list(unique.values())


def _plan(layer, settings, tt_rank, rel_error, target_ratio, modes):
    """``(tt_rank, rel_error, in_modes, out_modes)`` for one Dense layer."""
    if "tt_rank" in settings or "target_ratio" in settings:
        tt_rank = settings.get("tt_rank")
        target_ratio = settings.get("target_ratio")
    rel_error = settings.get("rel_error", rel_error)
    if tt_rank is None and rel_error is None and target_ratio is None:
        raise ValueError(
            f"No TT-ranks for layer '{layer.name}': pass `tt_rank`, "
            "`rel_error` or `target_ratio`. Received: tt_rank=None, "
            "rel_error=None, target_ratio=None"
        )
    if isinstance(modes, Mapping):
        modes = modes.get(layer.name)
    in_modes = settings.get("in_modes")
    out_modes = settings.get("out_modes")
    if modes is not None and in_modes is None and out_modes is None:
        in_modes, out_modes = modes
    input_dim, units = (int(s) for s in layer.kernel.shape)
    try:
        layout = modes_lib.resolve_layout(
            input_dim, units, None, in_modes, out_modes
        )
    except ValueError as error:
        raise ValueError(
            f"Layer '{layer.name}' ({input_dim}x{units}): {error}"
        ) from None
    if target_ratio is not None:
        tt_rank = rank_for_ratio(
            layer.name,
            input_dim,
            units,
            layout.in_modes,
            layout.out_modes,
            target_ratio,
        )
    return tt_rank, rel_error, in_modes, out_modes


def _compile_like(model, tt_model):
    """Compile ``tt_model`` as ``model`` was, with a fresh optimizer."""
    if getattr(model, "optimizer", None) is None:
        return
    args = model._get_compile_args(user_metrics=True)
    optimizer = model.optimizer
    args["optimizer"] = optimizer.__class__.from_config(optimizer.get_config())
    tt_model.compile(**args)


def tensorize(
    model,
    tt_rank=None,
    rel_error=None,
    target_ratio=None,
    layers=None,
    min_params: int = DEFAULT_MIN_PARAMS,
    modes=None,
    verbose: int = 1,
):
    """A copy of a tf_keras ``model`` with its large Dense layers in TT format.

    The `tf_keras` twin of `keras_tt.tensorize`, with the same arguments and
    report: each selected ``tf_keras.layers.Dense`` becomes a
    `keras_tt.tf_keras.TTDense` with the same name, units, activation, bias
    and trainability, whose cores are a TT-SVD of the trained kernel.

    What happens to the model you pass: nothing. The result is a
    ``tf_keras.models.clone_model`` clone; the layers not replaced hold
    copies of the original weights. If ``model`` was compiled, the clone is
    compiled with the same loss and metrics and a fresh optimizer of the
    same configuration.

    Args:
        model: a built tf_keras Sequential or Functional model.
        tt_rank: positive integer or sequence of inner TT-ranks.
        rel_error: relative Frobenius error budget per kernel, in (0, 1).
        target_ratio: the least compression of each kernel.
        layers: ``None`` (every top-level Dense layer with at least
            ``min_params`` kernel entries), a layer name or object, a list
            of them, a predicate, or ``{name or layer: settings}`` with keys
            among ``tt_rank``, ``rel_error``, ``target_ratio``, ``in_modes``
            and ``out_modes``.
        min_params: smallest kernel replaced when ``layers`` is ``None``.
        modes: ``None``, a pair ``(in_modes, out_modes)`` or
            ``{layer name: (in_modes, out_modes)}``.
        verbose: 0 (silent) or 1 or 2 (print the report).

    Returns:
        The new model, with the `keras_tt.report.CompressionReport` as
        ``tt_model.tensorize_report``.
    """
    # 1. Check every argument before doing any work.
    if not isinstance(model, tf_keras.Model) or not (
        isinstance(model, tf_keras.Sequential)
        or getattr(model, "_is_graph_network", False)
    ):
        raise ValueError(
            "Received an invalid value for `model`, expected a tf_keras "
            "Sequential or Functional model (for a Keras 3 model, use "
            f"`keras_tt.tensorize`). Received: model={type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"The model '{model.name}' is not built, so its Dense layers have "
            "no kernels to decompose: call it on data or build it first."
        )
    check_rank_arguments(tt_rank, rel_error, target_ratio)
    if (
        isinstance(min_params, bool)
        or not isinstance(min_params, numbers.Integral)
        or min_params < 0
    ):
        raise ValueError(
            "Received an invalid value for `min_params`, expected a "
            f"non-negative integer. Received: min_params={min_params!r}"
        )
    if verbose not in (0, 1, 2):
        raise ValueError(
            "Received an invalid value for `verbose`, expected 0, 1 or 2. "
            f"Received: verbose={verbose!r}"
        )

    # 2. Select and plan the Dense layers.
    selected = _select(model, layers, min_params)
    if not selected:
        raise ValueError(
            f"The model '{model.name}' has no Dense layer to replace with "
            f"min_params={min_params}: lower `min_params` or name the "
            "layers with `layers=`."
        )
    plans = [
        (layer, _plan(layer, settings, tt_rank, rel_error, target_ratio, modes))
        for layer, settings in selected
    ]

    # 3. Decompose the kernels into new TTDense layers.
    replacements, errors = {}, {}
    for layer, (rank, error, in_modes, out_modes) in plans:
        new_layer, decomposition = dense_to_tt_dense(
            layer, rank, error, in_modes, out_modes
        )
        replacements[id(layer)] = new_layer
        errors[id(layer)] = decomposition.rel_error
        if new_layer.compression_ratio < 1:
            warnings.warn(
                f"Layer '{layer.name}': its TT-cores hold "
                f"{new_layer.num_core_params:,} parameters, more than the "
                f"dense kernel's {new_layer.input_dim * new_layer.units:,}.",
                UserWarning,
                stacklevel=2,
            )

    # 4. Clone the model, swapping in the TTDense layers.
    copied = []

    def clone_function(layer):
        if id(layer) in replacements:
            return replacements[id(layer)]
        new_layer = layer.__class__.from_config(layer.get_config())
        copied.append((layer, new_layer))
        return new_layer

    tt_model = tf_keras.models.clone_model(model, clone_function=clone_function)

    # 5. Copy the weights of every layer that was not replaced.
    for old, new in copied:
        new.set_weights(old.get_weights())
    _compile_like(model, tt_model)

    # 6. Report.
    report = CompressionReport(
        [
            layer_record(replacements[id(layer)], rel_error=errors[id(layer)])
            for layer, _ in plans
        ],
        int(model.count_params()),
        int(tt_model.count_params()),
    )
    tt_model.tensorize_report = report
    if verbose:
        report.print_table()
    return tt_model
