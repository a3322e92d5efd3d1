"""`tensorize`: swap the `Dense` layers of a trained model for `TTDense`.

The pass clones the model with `keras.models.clone_model`, replacing each
selected `Dense` layer by a `TTDense` layer whose cores come from a TT-SVD
of the trained kernel (`keras_tt.tt_svd`), and copying the weights of every
other layer. It never touches the model it is given.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_tt import modes as modes_lib
from keras_tt.decomposition import check_rel_error
from keras_tt.layers.tt_dense import dense_to_tt_dense
from keras_tt.report import CompressionReport
from keras_tt.report import iter_layers
from keras_tt.report import layer_record
from keras_tt.report import model_report
from keras_tt.tt_matrix import num_tt_params

__all__ = ["tensorize", "model_report", "DEFAULT_MIN_PARAMS"]

# Dense kernels smaller than this (128 x 128) are left alone by default:
# their share of a model is small and a TT-SVD of them gains little.
DEFAULT_MIN_PARAMS = 16_384

_SETTING_KEYS = (
    "tt_rank",
    "rel_error",
    "target_ratio",
    "in_modes",
    "out_modes",
)


@dataclasses.dataclass
class _Plan:
    """What to do with one selected `Dense` layer."""

    name: str
    layer: Any
    tt_rank: Any = None
    rel_error: float | None = None
    target_ratio: float | None = None
    in_modes: tuple | None = None
    out_modes: tuple | None = None
    given_in_modes: tuple | None = None
    given_out_modes: tuple | None = None


# ---------------------------------------------------------- one Dense layer


def _resolve_layer_modes(units, input_dim, in_modes, out_modes):
    """Modes exactly as `TTDense.build` picks them."""
    layout = modes_lib.resolve_layout(
        input_dim, units, None, in_modes, out_modes
    )
    return layout.in_modes, layout.out_modes


def _rank_for_ratio(name, input_dim, units, in_modes, out_modes, target_ratio):
    """The largest uniform TT-rank compressing the layer >= ``target_ratio``."""
    dense = input_dim * units
    limits = modes_lib.max_tt_ranks(in_modes, out_modes)
    best = None
    for rank in range(1, max(limits) + 1):
        ranks = modes_lib.resolve_tt_ranks(
            rank, in_modes, out_modes, warn=False
        )
        if dense / num_tt_params(in_modes, out_modes, ranks) < target_ratio:
            break
        best = rank
    if best is None:
        ranks = (1,) * (len(in_modes) + 1)
        ratio = dense / num_tt_params(in_modes, out_modes, ranks)
        raise ValueError(
            f"Received an invalid value for `target_ratio`: layer '{name}' "
            f"({input_dim}x{units}, modes {in_modes} x {out_modes}) is "
            f"compressed at most {ratio:.1f}x (at TT-rank 1). "
            f"Received: target_ratio={target_ratio!r}"
        )
    return best


# --------------------------------------------------------------- selection


def _check_settings(settings, where):
    """Validate one ``{tt_rank, rel_error, ...}`` dict; return a clean dict."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ValueError(
            f"Received an invalid value for `layers`, expected per-layer "
            f"settings as a dict with keys among {_SETTING_KEYS}. "
            f"Received: {where}: {settings!r}"
        )
    unknown = sorted(set(settings) - set(_SETTING_KEYS))
    if unknown:
        raise ValueError(
            f"Received an invalid value for `layers`: unknown setting(s) "
            f"{unknown} for {where}; expected keys among {_SETTING_KEYS}. "
            f"Received: {dict(settings)!r}"
        )
    clean = dict(settings)
    _check_rank_arguments(
        clean.get("tt_rank"), clean.get("rel_error"), clean.get("target_ratio")
    )
    for key in ("in_modes", "out_modes"):
        if clean.get(key) is not None:
            clean[key] = modes_lib.validate_modes(clean[key], key)
    return clean


def _check_rank_arguments(tt_rank, rel_error, target_ratio):
    if tt_rank is not None:
        modes_lib.check_tt_rank_argument(tt_rank)
    check_rel_error(rel_error)
    if target_ratio is not None and (
        isinstance(target_ratio, bool)
        or not isinstance(target_ratio, numbers.Real)
        or not target_ratio > 0
        or not math.isfinite(target_ratio)
    ):
        raise ValueError(
            "Received an invalid value for `target_ratio`, expected a "
            f"positive number. Received: target_ratio={target_ratio!r}"
        )
    if tt_rank is not None and target_ratio is not None:
        raise ValueError(
            "Received both `tt_rank` and `target_ratio`; pass one of them "
            "(either one fixes the ranks). Received: "
            f"tt_rank={tt_rank!r}, target_ratio={target_ratio!r}"
        )


def _check_modes_argument(modes):
    """``modes``: None, a pair ``(in_modes, out_modes)`` or ``{name: pair}``."""
    if modes is None:
        return None
    if isinstance(modes, Mapping):
        return {
            key: _check_modes_argument(value) for key, value in modes.items()
        }
    if (
        isinstance(modes, Sequence)
        and not isinstance(modes, (str, bytes))
        and len(modes) == 2
        and all(isinstance(m, Sequence) for m in modes)
    ):
        return (
            modes_lib.validate_modes(modes[0], "in_modes"),
            modes_lib.validate_modes(modes[1], "out_modes"),
        )
    raise ValueError(
        "Received an invalid value for `modes`, expected a pair "
        "(in_modes, out_modes) or a dict {layer name: (in_modes, out_modes)}."
        f" Received: modes={modes!r}"
    )


def _select(model, layers, min_params):
    """``[(qualified name, Dense layer, settings dict)]`` to replace."""
    all_layers = list(iter_layers(model))
    dense = [(n, l) for n, l in all_layers if isinstance(l, keras.layers.Dense)]
    dense_names = [n for n, _ in dense]

    def find(key):
        if isinstance(key, keras.layers.Layer):
            for name, layer in all_layers:
                if layer is key:
                    break
            else:
                raise ValueError(
                    "Received an invalid value for `layers`: the layer "
                    f"'{key.name}' is not part of the model. "
                    f"Received: layers=[{key.name!r} ({type(key).__name__})]"
                )
        elif isinstance(key, str):
            matches = [
                (n, l) for n, l in all_layers if n == key or l.name == key
            ]
            if not matches:
                raise ValueError(
                    f"Received an invalid value for `layers`: the model has no "
                    f"layer named {key!r}. Its Dense layers are {dense_names}."
                    f" Received: layers={key!r}"
                )
            name, layer = matches[0]
        else:
            raise ValueError(
                "Received an invalid value for `layers`, expected layer "
                "names, layer objects, a predicate or a dict of per-layer "
                f"settings. Received: layers entry {key!r}"
            )
        if not isinstance(layer, keras.layers.Dense):
            raise ValueError(
                f"Received an invalid value for `layers`: '{name}' is a "
                f"{type(layer).__name__}, not a Dense layer. The model's "
                f"Dense layers are {dense_names}. Received: layers={key!r}"
            )
        return name, layer

    if layers is None:
        return [(n, l, {}) for n, l in dense if _kernel_size(l) >= min_params]
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    if isinstance(layers, Mapping):
        chosen = [
            (*find(key), _check_settings(value, f"layer {key!r}"))
            for key, value in layers.items()
        ]
    elif callable(layers):
        chosen = [(n, l, {}) for n, l in dense if layers(l)]
    elif isinstance(layers, Sequence) or hasattr(layers, "__iter__"):
        chosen = [(*find(key), {}) for key in layers]
    else:
        raise ValueError(
            "Received an invalid value for `layers`, expected layer names, "
            "layer objects, a predicate or a dict of per-layer settings. "
            f"Received: layers={layers!r}"
        )
    unique, seen = [], set()
    for name, layer, settings in chosen:
        if id(layer) not in seen:
            seen.add(id(layer))
            unique.append((name, layer, settings))
    return unique


def _kernel_size(layer):
    if not layer.built:
        return 0
    return int(np.prod(layer.kernel.shape))


# ------------------------------------------------------------------ cloning


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Received an invalid value for `model`, expected a Keras model. "
            f"Received: model={type(model).__name__}"
        )
    if not isinstance(model, (keras.Sequential,)) and not _is_functional(model):
        raise ValueError(
            f"`tensorize` cannot clone the subclassed model "
            f"'{model.name}' ({type(model).__name__}): its layer graph is "
            "only known to its `call` method. Either build the model with the "
            "Sequential or Functional API, or replace its Dense layers "
            "yourself, e.g. in `__init__` or after loading the weights: "
            "`self.fc = keras_tt.TTDense.from_dense(self.fc, tt_rank=8)`."
        )
    if not model.built:
        raise ValueError(
            f"The model '{model.name}' is not built, so its Dense layers have "
            "no kernels to decompose: call it on data or build it first."
        )


def _is_functional(model):
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def _clone_layer(layer):
    try:
        return layer.__class__.from_config(layer.get_config())
    except Exception as error:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"`tensorize` could not clone layer '{layer.name}' "
            f"({type(layer).__name__}) from its config: {error}. Layers "
            "must implement `get_config` (and `from_config` when their "
            "constructor needs it), as `keras.models.clone_model` requires."
        ) from error


def _copy_weights(pairs):
    for old, new in pairs:
        old_weights = old.get_weights()
        if len(new.weights) != len(old_weights):
            raise ValueError(
                f"`tensorize` could not copy the weights of layer "
                f"'{old.name}': its clone has {len(new.weights)} weights, the "
                f"original {len(old_weights)}."
            )
        new.set_weights(old_weights)


# -------------------------------------------------------------------- pass


def tensorize(
    model: keras.Model,
    tt_rank: int | Sequence[int] | None = None,
    rel_error: float | None = None,
    target_ratio: float | None = None,
    layers: Any = None,
    min_params: int = DEFAULT_MIN_PARAMS,
    modes: Any = None,
    verbose: int = 1,
) -> keras.Model:
    """Return a copy of ``model`` with its large `Dense` layers in TT format.

    Each selected `keras.layers.Dense` becomes a `keras_tt.TTDense` with the
    same name, units, activation, bias, dtype policy and trainability, whose
    cores are a TT-SVD (`keras_tt.tt_svd`) of the trained kernel; the kernel
    is zero-padded first when the layer's modes pad its widths. Fine-tune
    the returned model briefly to recover most of the accuracy lost to the
    truncation.

    What happens to the model you pass. Nothing: it is only read, also when
    the pass fails half-way (all arguments are checked and every layer is
    planned before any work starts). The returned model is a new
    `keras.models.clone_model` clone: every layer that is not replaced is a
    new object holding copies of the original weights (equal values, not
    shared variables), so training one model never changes the other.
    Shared layers stay shared (one new layer), nested Sequential and
    Functional models are cloned recursively.

    Optimizer. If ``model`` was compiled, the clone is compiled from its
    compile config: same loss and metrics, and a fresh optimizer of the same
    configuration without the old state (slots refer to the old
    variables). Otherwise it is not compiled. Call ``compile`` again to use
    another optimizer for fine-tuning.

    Ranks. Give ``tt_rank`` (a cap on every inner TT-rank, or a sequence of
    ``d - 1`` caps), ``rel_error`` (the relative Frobenius error
    ``||W - W_tt||_F / ||W||_F`` allowed per kernel; smallest ranks that
    meet it) or ``target_ratio`` (the largest uniform rank that compresses
    each kernel at least that much). ``rel_error`` combines with either of
    the others: both bounds hold where they can, and the error achieved is
    reported.

    The report. A `keras_tt.report.CompressionReport` (per layer: modes,
    ranks, kernel parameters before and after, compression, achieved
    relative error; totals for the replaced kernels and the whole model) is
    attached as ``tt_model.tensorize_report``, and printed when
    ``verbose`` is 1.

    Args:
        model: a built Sequential or Functional Keras model. Subclassed
            models cannot be cloned: replace their layers with
            `TTDense.from_dense` instead.
        tt_rank: positive integer or sequence of inner TT-ranks.
        rel_error: relative error budget per kernel, strictly between 0
            and 1.
        target_ratio: positive number, the least compression
            ``input_dim * units / core parameters`` of each kernel.
        layers: which Dense layers to replace. ``None``: every Dense layer
            with at least ``min_params`` kernel entries. Otherwise a layer
            name (nested layers also as ``"outer/inner"``), a layer object,
            a list of either, a predicate ``layer -> bool`` applied to the
            Dense layers, or a dict ``{name or layer: settings}`` where
            ``settings`` is ``None`` or a dict with keys among ``tt_rank``,
            ``rel_error``, ``target_ratio``, ``in_modes`` and ``out_modes``
            that override the global arguments for that layer.
            ``min_params`` applies only when ``layers`` is ``None``.
        min_params: non-negative integer, the smallest kernel size replaced
            by default.
        modes: ``None`` for automatic modes (`keras_tt.auto_modes`), a pair
            ``(in_modes, out_modes)`` for every selected layer, or a dict
            ``{layer name: (in_modes, out_modes)}``.
        verbose: 0 for silence; 1 for a progress bar (one step per
            truncation) and the printed report; 2 for the report and a
            one-line progress summary, as in `fit`.

    Returns:
        A new, built `keras.Model` with the ``tensorize_report`` attribute.

    Raises:
        ValueError: for bad arguments (unknown layer names, non-Dense layers,
            ranks < 1, ``rel_error`` outside (0, 1), modes that do not fit),
            a subclassed or unbuilt model, or a model with no Dense layer to
            replace.

    Example:

    >>> import keras
    >>> from keras_tt.tensorize import tensorize
    >>> model = keras.Sequential([keras.Input((64,)),
    ...                           keras.layers.Dense(256, activation="relu",
    ...                                              name="fc1"),
    ...                           keras.layers.Dense(10, name="head")])
    >>> tt_model = tensorize(model, tt_rank=4, verbose=0)
    >>> [type(layer).__name__ for layer in tt_model.layers]
    ['TTDense', 'Dense']
    >>> record = tt_model.tensorize_report.layers[0]
    >>> record.name, record.in_modes, record.out_modes, record.ranks
    ('fc1', (4, 4, 2, 2), (4, 4, 4, 4), (1, 4, 4, 4, 1))
    >>> record.dense_params, record.tt_params
    (16384, 480)
    """
    # 1. Check every argument before doing any work.
    _check_model(model)
    _check_rank_arguments(tt_rank, rel_error, target_ratio)
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
    modes = _check_modes_argument(modes)

    # 2. Select the Dense layers and plan each one (modes, rank caps).
    selected = _select(model, layers, min_params)
    if not selected:
        dense_sizes = {
            n: _kernel_size(l)
            for n, l in iter_layers(model)
            if isinstance(l, keras.layers.Dense)
        }
        raise ValueError(
            f"The model '{model.name}' has no Dense layer to replace"
            + (
                f": its Dense kernels {dense_sizes} are all smaller than "
                f"min_params={min_params}. Lower `min_params` or name the "
                "layers with `layers=`."
                if dense_sizes
                else "."
            )
        )
    if isinstance(modes, dict):
        known = {n for n, _, _ in selected} | {l.name for _, l, _ in selected}
        unknown = sorted(str(key) for key in modes if key not in known)
        if unknown:
            raise ValueError(
                f"Received an invalid value for `modes`: {unknown} are not "
                f"among the selected Dense layers {sorted(known)}. "
                f"Received: modes={modes!r}"
            )
    plans = [
        _plan(name, layer, settings, tt_rank, rel_error, target_ratio, modes)
        for name, layer, settings in selected
    ]

    # 3. Decompose the kernels into new TTDense layers.
    steps = sum(max(1, len(p.in_modes) - 1) for p in plans)
    progbar = (
        keras.utils.Progbar(steps, verbose=verbose, unit_name="step")
        if verbose
        else None
    )
    done = [0]

    def advance(_):
        done[0] += 1
        if progbar is not None:
            progbar.update(done[0])

    replacements, errors = {}, {}
    for plan in plans:
        before = done[0]
        new_layer, decomposition = dense_to_tt_dense(
            plan.layer,
            plan.tt_rank,
            plan.rel_error,
            plan.given_in_modes,
            plan.given_out_modes,
            callback=advance,
        )
        if done[0] == before:
            advance(None)
        replacements[id(plan.layer)] = new_layer
        errors[id(plan.layer)] = decomposition.rel_error
        if new_layer.compression_ratio < 1:
            warnings.warn(
                f"Layer '{plan.name}': its TT-cores hold "
                f"{new_layer.num_core_params:,} parameters, more than the "
                f"{new_layer.input_dim * new_layer.units:,} of the dense "
                f"kernel, at TT-ranks {new_layer.tt_ranks}. Use a lower "
                "`tt_rank`, a larger `rel_error` or `target_ratio`.",
                UserWarning,
                stacklevel=2,
            )

    # 4. Clone the model, swapping in the TTDense layers.
    copied = []

    def clone_function(layer):
        if id(layer) in replacements:
            return replacements[id(layer)]
        new_layer = _clone_layer(layer)
        copied.append((layer, new_layer))
        return new_layer

    tt_model = keras.models.clone_model(
        model, clone_function=clone_function, recursive=True
    )
    if not tt_model.built:
        tt_model.build(model.input_shape)

    # 5. Copy the weights of every layer that was not replaced.
    _copy_weights(copied)

    # 6. Report.
    records = [
        layer_record(replacements[id(p.layer)], p.name, errors[id(p.layer)])
        for p in plans
    ]
    report = CompressionReport(
        records, int(model.count_params()), int(tt_model.count_params())
    )
    tt_model.tensorize_report = report
    if verbose:
        report.print_table()
    return tt_model


def _plan(name, layer, settings, tt_rank, rel_error, target_ratio, modes):
    settings = dict(settings)
    if "tt_rank" in settings or "target_ratio" in settings:
        layer_rank = settings.get("tt_rank")
        layer_ratio = settings.get("target_ratio")
    else:
        layer_rank, layer_ratio = tt_rank, target_ratio
    layer_error = settings.get("rel_error", rel_error)
    if layer_rank is None and layer_error is None and layer_ratio is None:
        raise ValueError(
            f"No TT-ranks for layer '{name}': pass `tt_rank`, `rel_error` or "
            "`target_ratio`, to `tensorize` or in the layer's settings. "
            "Received: tt_rank=None, rel_error=None, target_ratio=None"
        )
    if isinstance(modes, dict):
        layer_modes = modes.get(name, modes.get(layer.name))
    else:
        layer_modes = modes
    in_modes = settings.get("in_modes")
    out_modes = settings.get("out_modes")
    if layer_modes is not None and in_modes is None and out_modes is None:
        in_modes, out_modes = layer_modes
    input_dim, units = (int(s) for s in layer.kernel.shape)
    given_in_modes, given_out_modes = in_modes, out_modes
    try:
        in_modes, out_modes = _resolve_layer_modes(
            units, input_dim, in_modes, out_modes
        )
    except ValueError as error:
        raise ValueError(
            f"Layer '{name}' ({input_dim}x{units}): {error}"
        ) from None
    if layer_ratio is not None:
        layer_rank = _rank_for_ratio(
            name, input_dim, units, in_modes, out_modes, layer_ratio
        )
    if layer_rank is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                modes_lib.resolve_tt_ranks(layer_rank, in_modes, out_modes)
            except ValueError as error:
                raise ValueError(f"Layer '{name}': {error}") from None
    return _Plan(
        name,
        layer,
        layer_rank,
        layer_error,
        layer_ratio,
        in_modes,
        out_modes,
        given_in_modes,
        given_out_modes,
    )
