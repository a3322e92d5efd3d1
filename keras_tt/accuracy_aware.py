"""The smallest TT model within a given accuracy drop (accuracy-aware mode).

`compress_within` answers "the smallest model within 1 point": it
bisects the whole-model compression ``model_ratio`` (in log scale) between
``min_ratio`` and ``max_ratio``; each candidate is tensorized with the
budget (`keras_tt.tensorize(model, model_ratio=...)`, calibrated when
``calibration_data`` is given), optionally re-initialised on the data
(`keras_tt.data_aware.data_aware_init`), briefly distilled from the
original (`keras_tt.distillation.distill`) and scored on the user's
validation data. A candidate is accepted when its validation accuracy is
at most ``maximal_accuracy_drop`` below the original's (an absolute drop,
as NNCF's ``maximal_absolute_accuracy_degradation``: 0.01 is one point).
The largest accepted ratio's model is returned, with the log of every
candidate. Each candidate costs one tensorize and ``epochs`` of
distillation, so keep ``steps`` and ``epochs`` small.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from keras_tt.calibration import check_calibration_data
from keras_tt.data_aware import data_aware_init
from keras_tt.distillation import distill
from keras_tt.tensorize import tensorize


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One tried ``model_ratio``: the ratio reached and the accuracy."""

    model_ratio: float
    compression: float
    params: int
    accuracy: float
    accepted: bool


@dataclasses.dataclass
class SearchResult:
    """What `compress_within` found.

    Attributes:
        model: the accepted model of the largest ratio (``None`` if no
            candidate was accepted).
        baseline_accuracy: the original model's validation accuracy.
        candidates: every `Candidate`, in the order tried.
    """

    model: object
    baseline_accuracy: float
    candidates: list

    @property
    def best(self) -> Candidate | None:
        accepted = [c for c in self.candidates if c.accepted]
        return max(accepted, key=lambda c: c.compression, default=None)


def accuracy(model, x, y, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on integer labels ``y``."""
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(predictions, -1) == np.asarray(y)))


def compress_within(
    model,
    maximal_accuracy_drop: float,
    train_data,
    validation_data,
    calibration_data=None,
    min_ratio: float = 2.0,
    max_ratio: float = 200.0,
    steps: int = 5,
    epochs: int = 1,
    data_aware: bool = True,
    calibrated_budget: bool = True,
    tensorize_kwargs: dict | None = None,
    distill_kwargs: dict | None = None,
) -> SearchResult:
    """The most compressed model within ``maximal_accuracy_drop``.

    Args:
        model: the trained original (teacher); only read.
        maximal_accuracy_drop: the largest allowed drop of validation
            accuracy, absolute, in [0, 1) (0.01 = one point).
        train_data: ``(x, y)`` arrays for the distillation.
        validation_data: ``(x, y)`` arrays scoring each candidate.
        calibration_data: optional sample of inputs for the calibrated
            budget and the data-aware initialisation (default: the first
            512 training inputs).
        min_ratio, max_ratio: the range of ``model_ratio`` searched,
            ``1 <= min_ratio < max_ratio``.
        steps: bisection steps (candidates tried after the two ends).
        epochs: distillation epochs per candidate.
        data_aware: whether to apply `data_aware_init` to each candidate.
        calibrated_budget: whether the budget is allocated by the output
            change measured on ``calibration_data`` (slower, one forward
            pass per layer and rank) or data-free.
        tensorize_kwargs: more arguments for `keras_tt.tensorize`
            (``layers``, ``min_params``, ``modes``, ``allocation``).
        distill_kwargs: more arguments for `keras_tt.distillation.distill`.

    Returns:
        A `SearchResult`.
    """
    if not (
        isinstance(maximal_accuracy_drop, numbers.Real)
        and 0 <= maximal_accuracy_drop < 1
    ):
        raise ValueError(
            "Received an invalid value for `maximal_accuracy_drop`, expected "
            "an absolute accuracy drop in [0, 1) (0.01 is one point). "
            f"Received: maximal_accuracy_drop={maximal_accuracy_drop!r}"
        )
    if not (
        isinstance(min_ratio, numbers.Real)
        and isinstance(max_ratio, numbers.Real)
        and 1 <= min_ratio < max_ratio
        and math.isfinite(max_ratio)
    ):
        raise ValueError(
            "Received invalid values for `min_ratio` and `max_ratio`, "
            "expected 1 <= min_ratio < max_ratio. Received: "
            f"min_ratio={min_ratio!r}, max_ratio={max_ratio!r}"
        )
    for name, pair in (
        ("train_data", train_data),
        ("validation_data", validation_data),
    ):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(
                f"Received an invalid value for `{name}`, expected a pair "
                f"(x, y) of arrays. Received: {name}={type(pair).__name__}"
            )
    x_train, y_train = train_data
    x_val, y_val = validation_data
    check_calibration_data(model, x_val[:2], "validation_data")
    if calibration_data is None:
        calibration_data = x_train[:512]
    calibration_data = check_calibration_data(model, calibration_data)
    tensorize_kwargs = dict(tensorize_kwargs or {})
    distill_kwargs = dict(distill_kwargs or {})
    baseline = accuracy(model, x_val, y_val)
    candidates = []
    models = {}

    def attempt(ratio):
        try:
            tt_model = tensorize(
                model,
                model_ratio=ratio,
                calibration_data=(
                    calibration_data if calibrated_budget else None
                ),
                verbose=0,
                **tensorize_kwargs,
            )
        except ValueError as error:
            if "cannot be met" not in str(error):
                raise
            candidates.append(Candidate(ratio, math.nan, 0, math.nan, False))
            return False
        if data_aware:
            data_aware_init(tt_model, model, calibration_data)
        distill(
            tt_model, model, x_train, y_train, epochs=epochs, **distill_kwargs
        )
        score = accuracy(tt_model, x_val, y_val)
        ok = baseline - score <= maximal_accuracy_drop
        compression = model.count_params() / tt_model.count_params()
        candidates.append(
            Candidate(ratio, compression, tt_model.count_params(), score, ok)
        )
        if ok:
            models[ratio] = tt_model
        return ok

    low, high = float(min_ratio), float(max_ratio)
    if attempt(high):
        return SearchResult(models[high], baseline, candidates)
    if not attempt(low):
        return SearchResult(None, baseline, candidates)
    for _ in range(steps):
        middle = math.sqrt(low * high)
        if attempt(middle):
            low = middle
        else:
            high = middle
    return SearchResult(models[low], baseline, candidates)
