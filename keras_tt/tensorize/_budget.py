"""Whole-model budgets: TT-ranks allocated across layers to meet a size.

`tensorize(model, model_ratio=c)` compresses the whole model at least ``c``
times (``model.count_params() / tt_model.count_params() >= c``), choosing
one TT-rank per selected layer by how much each layer suffers from a lower
rank. This module does the choosing; the pass then converts every layer at
its chosen rank as for ``tt_rank``.

Rank options. For every selected layer the registered converter's
``convert`` is run at TT-ranks 1, 2, ... (every integer up to 32, then steps
of ``r // 16``: the *rank step*), keeping for each rank the parameters of
the cores (from the records, so padding and any layer kind count exactly)
and the relative weight error of the TT-SVD. The options stop at the
layer's largest useful rank, at the dense kernel's size, or where the
layer alone would overflow the budget with every other layer at rank 1.
With ``calibration_data``, each option's new layer is also put in the
original layer's place (its ``call`` is redirected for the duration of a
forward pass; the weights are never written) and the *sensitivity* is
measured: the relative squared change of the model's outputs on the
sample, ``||f_r(x) - f(x)||^2 / ||f(x)||^2``.

Size. The predicted size is ``params_before - sum(dense kernel params) +
sum(chosen core params)``: every weight outside the replaced kernels is
kept (tested equal to the measured ``count_params()`` of the result).

Allocation algorithms (``allocation=``):

- ``"threshold"`` (the default without calibration data; ALDS, Liebenwein
  et al. 2021): one relative weight error ``tau`` shared by every layer,
  each layer taking the smallest rank whose TT-SVD error is at most
  ``tau``; ``tau`` is bisected over the options' errors to the smallest
  value whose model fits the budget. No data needed.
- ``"greedy"``: start at the smallest rank everywhere, then repeatedly
  take the step (one layer to one of its higher ranks) with the largest
  sensitivity decrease per added parameter that still fits, until none
  fits. The sensitivities of different layers are taken as adding up
  (true for small, independent changes). Without calibration data the
  squared relative weight errors stand in.
- ``"auto"`` (the default with calibration data): both of the above, from
  the same options; every layer of each allocation is then swapped at
  once and the model's output change measured on the sample, and the
  allocation with the smaller change is kept. The sensitivities do not
  add up when many layers are far from their weights (at 50x, say, every
  single-layer change is already large, and two layers in one residual
  block can each look harmless alone and break it together); the joint
  measurement catches that, at the cost of two more forward passes.
  Without calibration data ``"auto"`` is ``"threshold"``.

Both end with the same fill-up: while raising one layer by one rank step
still fits, the step with the largest decrease per parameter is taken. So
the budget is met *within one rank step*: the model fits the budget, and
raising any single layer by one rank step would not.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

from keras_tt import calibration


@dataclasses.dataclass(frozen=True)
class RankOption:
    """One candidate TT-rank of a layer.

    Attributes:
        tt_rank: the uniform cap on the layer's inner TT-ranks.
        tt_params: parameters of all the layer's cores at that rank.
        rel_error: relative Frobenius error of the TT-SVD (root mean
            square over the layer's kernels when it has several).
        sensitivity: relative squared change of the model's outputs on
            the calibration data with this layer alone at that rank;
            ``None`` without calibration data.
    """

    tt_rank: int
    tt_params: int
    rel_error: float
    sensitivity: float | None = None

    @property
    def cost(self) -> float:
        """What the allocation minimises: the sensitivity when measured,
        else the squared weight error."""
        if self.sensitivity is not None:
            return self.sensitivity
        return self.rel_error**2


@dataclasses.dataclass
class LayerAllocation:
    """The options of one selected layer and the one chosen."""

    name: str
    kind: str
    dense_params: int
    options: tuple
    chosen: int = 0

    @property
    def option(self) -> RankOption:
        return self.options[self.chosen]

    @property
    def tt_rank(self) -> int:
        return self.option.tt_rank


@dataclasses.dataclass
class BudgetAllocation:
    """How `tensorize` spent a whole-model budget.

    Attributes:
        model_ratio: the compression asked for.
        method: the ``allocation`` asked for: ``"threshold"``,
            ``"greedy"`` or ``"auto"``.
        params_before: the original model's parameters.
        max_params: the budget, ``floor(params_before / model_ratio)``.
        layers: one `LayerAllocation` per selected layer.
        threshold: the shared weight error of ``"threshold"`` (``None``
            for ``"greedy"``).
        calibrated: whether sensitivities were measured on data.
        chosen_method: the rule whose ranks were kept: ``method`` itself,
            or for ``"auto"`` the one of ``"greedy"`` and ``"threshold"``
            with the smaller measured output change.
        output_change: with calibration data, the relative squared change
            of the model's outputs on the sample with every selected layer
            at its chosen rank at once (``None`` without data).
        candidates: for ``"auto"``, ``{rule: measured output change}`` of
            both allocations tried.
    """

    model_ratio: float
    method: str
    params_before: int
    max_params: int
    layers: list
    threshold: float | None = None
    calibrated: bool = False
    chosen_method: str | None = None
    output_change: float | None = None
    candidates: dict | None = None

    def __post_init__(self):
        if self.chosen_method is None:
            self.chosen_method = self.method

    @property
    def fixed_params(self) -> int:
        """Parameters outside the replaced kernels."""
        return self.params_before - sum(a.dense_params for a in self.layers)

    @property
    def predicted_params(self) -> int:
        """Whole-model parameters at the chosen ranks."""
        return self.fixed_params + sum(a.option.tt_params for a in self.layers)

    @property
    def ranks(self) -> dict:
        """``{layer path: chosen TT-rank}``."""
        return {a.name: a.tt_rank for a in self.layers}

    def as_dict(self) -> dict:
        return {
            "model_ratio": self.model_ratio,
            "method": self.method,
            "params_before": self.params_before,
            "max_params": self.max_params,
            "predicted_params": self.predicted_params,
            "threshold": self.threshold,
            "calibrated": self.calibrated,
            "chosen_method": self.chosen_method,
            "output_change": self.output_change,
            "candidates": self.candidates,
            "layers": [
                {
                    "name": a.name,
                    "kind": a.kind,
                    "tt_rank": a.tt_rank,
                    "tt_params": a.option.tt_params,
                    "rel_error": a.option.rel_error,
                    "sensitivity": a.option.sensitivity,
                    "options": [dataclasses.asdict(o) for o in a.options],
                }
                for a in self.layers
            ],
        }

    def table(self) -> str:
        """Per-layer chosen ranks and sensitivities, and the sizes."""
        header = (
            f"budget: model_ratio={self.model_ratio:g} -> at most "
            f"{self.max_params:,} parameters; allocation={self.method}"
        )
        if self.candidates:
            tried = ", ".join(
                f"{rule} {change:.4g}"
                for rule, change in self.candidates.items()
            )
            header += (
                f" -> {self.chosen_method} kept (whole-model output "
                f"change: {tried})"
            )
        if self.threshold is not None:
            header += f" (shared weight error {self.threshold:.4f})"
        lines = [header]
        width = max(len(a.name) for a in self.layers)
        sens = "output change" if self.calibrated else "(no data)"
        lines.append(
            f"  {'layer'.ljust(width)}  rank  options  {'TT params':>10}"
            f"  weight error  {sens:>13}"
        )
        for a in self.layers:
            o = a.option
            s = "-" if o.sensitivity is None else f"{o.sensitivity:.3e}"
            lines.append(
                f"  {a.name.ljust(width)}  {o.tt_rank:>4}  "
                f"{len(a.options):>7}  "
                f"{o.tt_params:>10,}  {o.rel_error:>12.4f}  {s:>13}"
            )
        lines.append(
            f"  predicted whole model: {self.predicted_params:,} parameters "
            f"({self.params_before / max(1, self.predicted_params):.2f}x)"
        )
        if self.output_change is not None:
            lines.append(
                "  measured output change, every layer at its rank: "
                f"{self.output_change:.4g}"
            )
        return "\n".join(lines)


def rank_grid(limit: int):
    """The candidate ranks 1, 2, ..., 32, then steps of ``r // 16``."""
    rank = 1
    while rank <= limit:
        yield rank
        rank += max(1, rank // 16)


def _convert_at(plan, rank: int):
    """The planned layer converted at TT-rank ``rank``: (layer, records)."""
    settings = dict(plan.settings)
    settings.update(tt_rank=rank, rel_error=None, target_ratio=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return plan.converter.convert(plan.layer, settings, None)


def layer_options(
    plan, affordable: int, measure=None, max_rank: int = 4096, converted=None
) -> tuple:
    """`RankOption` for each candidate rank of one planned layer.

    ``affordable``: the most core parameters this layer can take.
    ``measure``: ``measure(layer, new_layer) -> sensitivity`` or None.
    ``converted``: ``{rank: (new_layer, records)}`` already computed.
    """
    layer, converter = plan.layer, plan.converter
    converted = converted or {}
    dense = sum(rows * cols for _, rows, cols in converter.kernels(layer))
    options, last_ranks = [], None
    for rank in rank_grid(max_rank):
        new_layer, records = converted.get(rank) or _convert_at(plan, rank)
        ranks = tuple(r.ranks for r in records)
        if ranks == last_ranks:
            break  # the largest useful rank was reached
        last_ranks = ranks
        params = sum(int(r.tt_params) for r in records)
        if options and (params > affordable or params > dense):
            break
        errors = [r.rel_error for r in records if r.rel_error is not None]
        error = math.sqrt(sum(e * e for e in errors) / max(1, len(errors)))
        sensitivity = None if measure is None else measure(layer, new_layer)
        options.append(RankOption(rank, params, float(error), sensitivity))
        if params > affordable:
            break
    return tuple(options)


def _fits(layers, fixed, max_params, changed=None, index=None) -> bool:
    total = fixed
    for a in layers:
        chosen = index if a is changed else a.chosen
        total += a.options[chosen].tt_params
    return total <= max_params


def _total(layers, fixed) -> int:
    return fixed + sum(a.option.tt_params for a in layers)


def _best_step(layers, fixed, max_params, one_step: bool):
    """The (layer, option index) with the largest cost decrease per added
    parameter that fits, or None."""
    best, best_gain = None, -math.inf
    room = max_params - _total(layers, fixed)
    for a in layers:
        current = a.option
        last = a.chosen + 2 if one_step else len(a.options)
        for j in range(a.chosen + 1, min(last, len(a.options))):
            option = a.options[j]
            added = option.tt_params - current.tt_params
            if added > room:
                continue
            gain = (current.cost - option.cost) / max(1, added)
            if gain > best_gain:
                best, best_gain = (a, j), gain
    return best


def _fill(layers, fixed, max_params, one_step: bool) -> None:
    while True:
        step = _best_step(layers, fixed, max_params, one_step)
        if step is None:
            return
        a, j = step
        a.chosen = j


def _threshold(layers, fixed, max_params) -> float:
    """Bisect the shared weight error; set each layer's choice."""

    def choose(tau):
        for a in layers:
            a.chosen = next(
                (i for i, o in enumerate(a.options) if o.rel_error <= tau),
                len(a.options) - 1,
            )

    taus = sorted({o.rel_error for a in layers for o in a.options} | {1.0})
    low, high = 0, len(taus) - 1  # taus[high] always fits (rank 1 fits)
    choose(taus[high])
    if not _fits(layers, fixed, max_params):
        # A rank-1 option whose error exceeds 1 cannot happen; keep the
        # smallest ranks.
        for a in layers:
            a.chosen = 0
        return taus[high]
    while low < high:
        middle = (low + high) // 2
        choose(taus[middle])
        if _fits(layers, fixed, max_params):
            high = middle
        else:
            low = middle + 1
    choose(taus[high])
    return taus[high]


def allocate(
    model,
    plans,
    model_ratio: float,
    calibration_data=None,
    allocation: str | None = None,
    batch_size: int = 256,
) -> BudgetAllocation:
    """Choose a TT-rank for every planned layer to meet ``model_ratio``.

    Raises a ValueError naming ``model_ratio`` when even TT-rank 1
    everywhere does not fit. The model is only read (its layers' ``call``
    is redirected during the calibration passes and restored).
    """
    method = allocation
    if method is None:
        method = "threshold" if calibration_data is None else "auto"
    params_before = int(model.count_params())
    max_params = int(math.floor(params_before / model_ratio))
    dense = [
        sum(r * c for _, r, c in p.converter.kernels(p.layer)) for p in plans
    ]
    fixed = params_before - sum(dense)

    # The smallest option of each layer first: the floor of the budget.
    # Each layer's conversion at TT-rank 1 is kept for its options below.
    converted = [{1: _convert_at(p, 1)} for p in plans]
    smallest = [
        layer_options(p, 0, converted=done)[:1]
        for p, done in zip(plans, converted)
    ]
    floor_params = fixed + sum(o[0].tt_params for o in smallest)
    if floor_params > max_params:
        raise ValueError(
            "Received an invalid value for `model_ratio`: it cannot be met. "
            f"With every selected layer at TT-rank 1 the model has "
            f"{floor_params:,} parameters ({params_before / floor_params:.2f}x"
            f" of {params_before:,}), more than the {max_params:,} the "
            f"ratio allows ({fixed:,} of them are outside the selected "
            "layers). Select more layers or ask for less. "
            f"Received: model_ratio={model_ratio!r}"
        )

    measure = None
    if calibration_data is not None:
        measure = calibration.OutputChange(model, calibration_data, batch_size)

    layers = []
    for p, size, small, done in zip(plans, dense, smallest, converted):
        affordable = max_params - floor_params + small[0].tt_params
        options = layer_options(p, affordable, measure, converted=done)
        done.clear()  # the rank-1 layer is not needed any more
        layers.append(
            LayerAllocation(p.name, p.converter.kind, size, options, 0)
        )

    def joint_change():
        if measure is None:
            return None
        pairs = [
            (p.layer, _convert_at(p, a.tt_rank)[0])
            for p, a in zip(plans, layers)
        ]
        return measure.of_all(pairs)

    if method != "auto":
        rules = (method,)
    elif measure is None:  # nothing to measure with: the data-free rule
        rules = ("threshold",)
    else:
        rules = ("greedy", "threshold")
    tried = {}
    for rule in rules:
        for a in layers:
            a.chosen = 0
        threshold = None
        if rule == "threshold":
            threshold = _threshold(layers, fixed, max_params)
        else:
            _fill(layers, fixed, max_params, one_step=False)
        _fill(layers, fixed, max_params, one_step=True)
        tried[rule] = (
            [a.chosen for a in layers],
            threshold,
            joint_change(),
        )
    # Ties go to the first rule tried.
    kept = min(rules, key=lambda rule: tried[rule][2] or 0.0)
    choices, threshold, change = tried[kept]
    for a, chosen in zip(layers, choices):
        a.chosen = chosen
    return BudgetAllocation(
        model_ratio=float(model_ratio),
        method=method,
        params_before=params_before,
        max_params=max_params,
        layers=layers,
        threshold=threshold,
        calibrated=measure is not None,
        chosen_method=kept,
        output_change=change,
        candidates=(
            {rule: tried[rule][2] for rule in rules} if len(rules) > 1 else None
        ),
    )


__all__ = [
    "BudgetAllocation",
    "LayerAllocation",
    "RankOption",
    "allocate",
    "rank_grid",
]
