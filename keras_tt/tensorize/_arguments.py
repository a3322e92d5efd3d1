"""Checks of `tensorize`'s arguments, run before any work."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from collections.abc import Sequence

import keras

from keras_tt import modes as modes_lib
from keras_tt.decomposition import check_rel_error

SETTING_KEYS = (
    "tt_rank",
    "rel_error",
    "target_ratio",
    "in_modes",
    "out_modes",
)


def check_model(model) -> None:
    """A built Keras model."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Received an invalid value for `model`, expected a Keras model. "
            f"Received: model={type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"The model '{model.name}' is not built, so its layers have no "
            "kernels to decompose: call it on data or build it first."
        )


def check_min_params(min_params) -> int:
    if (
        isinstance(min_params, bool)
        or not isinstance(min_params, numbers.Integral)
        or min_params < 0
    ):
        raise ValueError(
            "Received an invalid value for `min_params`, expected a "
            f"non-negative integer. Received: min_params={min_params!r}"
        )
    return int(min_params)


def check_verbose(verbose) -> int:
    if not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError(
            "Received an invalid value for `verbose`, expected 0, 1 or 2. "
            f"Received: verbose={verbose!r}"
        )
    return int(verbose)


def check_rank_arguments(tt_rank, rel_error, target_ratio) -> None:
    """The form of ``tt_rank``, ``rel_error`` and ``target_ratio``."""
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


def check_settings(settings, where: str) -> dict:
    """Validate one ``{tt_rank, rel_error, ...}`` dict; return a clean dict."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ValueError(
            f"Received an invalid value for `layers`, expected per-layer "
            f"settings as a dict with keys among {SETTING_KEYS}. "
            f"Received: {where}: {settings!r}"
        )
    unknown = sorted(str(key) for key in set(settings) - set(SETTING_KEYS))
    if unknown:
        raise ValueError(
            f"Received an invalid value for `layers`: unknown setting(s) "
            f"{unknown} for {where}; expected keys among {SETTING_KEYS}. "
            f"Received: {dict(settings)!r}"
        )
    clean = dict(settings)
    check_rank_arguments(
        clean.get("tt_rank"), clean.get("rel_error"), clean.get("target_ratio")
    )
    modes_lib.check_fast_pair(clean.get("in_modes"), clean.get("out_modes"))
    for key in ("in_modes", "out_modes"):
        if clean.get(key) is not None:
            clean[key] = modes_lib.validate_modes(
                clean[key], key, allow_fast=True
            )
    return clean


def check_modes_argument(modes):
    """``modes``: None, ``"fast"``, a pair ``(in_modes, out_modes)`` or
    ``{name: pair or "fast"}``."""
    if modes is None:
        return None
    if isinstance(modes, Mapping):
        return {
            key: _check_modes_pair(value, modes) for key, value in modes.items()
        }
    return _check_modes_pair(modes, modes)


def _check_modes_pair(pair, received):
    if modes_lib.is_fast(pair):
        return modes_lib.FAST
    if (
        isinstance(pair, Sequence)
        and not isinstance(pair, (str, bytes))
        and len(pair) == 2
        and all(
            isinstance(m, Sequence) and not isinstance(m, (str, bytes))
            for m in pair
        )
    ):
        return (
            modes_lib.validate_modes(pair[0], "in_modes"),
            modes_lib.validate_modes(pair[1], "out_modes"),
        )
    raise ValueError(
        "Received an invalid value for `modes`, expected 'fast', a pair "
        "(in_modes, out_modes) or a dict {layer name: (in_modes, out_modes) "
        f"or 'fast'}}. Received: modes={received!r}"
    )


ALLOCATIONS = ("auto", "threshold", "greedy")


def check_budget_arguments(
    model_ratio, allocation, calibration_data, tt_rank, rel_error, target_ratio
) -> None:
    """``model_ratio`` (a whole-model budget) and what goes with it."""
    if model_ratio is None:
        if allocation is not None or calibration_data is not None:
            given = (
                "allocation" if allocation is not None else "calibration_data"
            )
            raise ValueError(
                f"Received `{given}` without `model_ratio`: it chooses how "
                "a whole-model budget is spent, so pass `model_ratio` too. "
                f"Received: model_ratio=None, {given}=..."
            )
        return
    if (
        isinstance(model_ratio, bool)
        or not isinstance(model_ratio, numbers.Real)
        or not math.isfinite(model_ratio)
        or not model_ratio >= 1
    ):
        raise ValueError(
            "Received an invalid value for `model_ratio`, expected a finite "
            "number >= 1 (the whole model's compression, parameters before "
            f"/ after). Received: model_ratio={model_ratio!r}"
        )
    others = {
        "tt_rank": tt_rank,
        "rel_error": rel_error,
        "target_ratio": target_ratio,
    }
    given = [f"{k}={v!r}" for k, v in others.items() if v is not None]
    if given:
        raise ValueError(
            "Received `model_ratio` together with "
            f"{', '.join(given)}; `model_ratio` chooses every layer's rank, "
            "so pass it alone (per-layer `in_modes`/`out_modes` still apply)."
            f" Received: model_ratio={model_ratio!r}, {', '.join(given)}"
        )
    if allocation is not None and allocation not in ALLOCATIONS:
        raise ValueError(
            "Received an invalid value for `allocation`, expected one of "
            f"{ALLOCATIONS} or None. Received: allocation={allocation!r}"
        )


def check_no_layer_ranks(selected) -> None:
    """With ``model_ratio``, no per-layer rank settings."""
    for s in selected:
        keys = [
            k
            for k in ("tt_rank", "rel_error", "target_ratio")
            if s.settings.get(k) is not None
        ]
        if keys:
            raise ValueError(
                f"Received `model_ratio` and per-layer {keys} for layer "
                f"'{s.name}' in `layers`; the budget chooses every selected "
                "layer's rank (leave the layer out of the selection to keep "
                f"it dense). Received: {s.name}: {dict(s.settings)!r}"
            )
