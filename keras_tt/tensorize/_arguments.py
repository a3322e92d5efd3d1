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
    for key in ("in_modes", "out_modes"):
        if clean.get(key) is not None:
            clean[key] = modes_lib.validate_modes(clean[key], key)
    return clean


def check_modes_argument(modes):
    """``modes``: None, a pair ``(in_modes, out_modes)`` or ``{name: pair}``."""
    if modes is None:
        return None
    if isinstance(modes, Mapping):
        return {
            key: _check_modes_pair(value, modes) for key, value in modes.items()
        }
    return _check_modes_pair(modes, modes)


def _check_modes_pair(pair, received):
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
        "Received an invalid value for `modes`, expected a pair "
        "(in_modes, out_modes) or a dict {layer name: (in_modes, out_modes)}."
        f" Received: modes={received!r}"
    )
