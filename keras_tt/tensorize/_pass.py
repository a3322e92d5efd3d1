"""The pass itself: `tensorize` runs the stages in order."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import keras

from keras_tt.calibration import check_calibration_data
from keras_tt.report import CompressionReport
from keras_tt.tensorize._arguments import check_budget_arguments
from keras_tt.tensorize._arguments import check_min_params
from keras_tt.tensorize._arguments import check_model
from keras_tt.tensorize._arguments import check_modes_argument
from keras_tt.tensorize._arguments import check_no_layer_ranks
from keras_tt.tensorize._arguments import check_rank_arguments
from keras_tt.tensorize._arguments import check_verbose
from keras_tt.tensorize._budget import allocate
from keras_tt.tensorize._cloning import Cloner
from keras_tt.tensorize._cloning import apply_compile_plan
from keras_tt.tensorize._cloning import compile_plan
from keras_tt.tensorize._conv import unconverted_convolutions
from keras_tt.tensorize._planning import plan
from keras_tt.tensorize._progress import Progress
from keras_tt.tensorize._selection import build_tree
from keras_tt.tensorize._selection import is_graph_model
from keras_tt.tensorize._selection import nothing_selected_message
from keras_tt.tensorize._selection import select
from keras_tt.tensorize._substitution import copy_model
from keras_tt.tensorize._substitution import needs_substitution
from keras_tt.tensorize._substitution import substitute_layers

# Kernels smaller than this (128 x 128) are left alone by default: their
# share of a model is small and a TT-SVD of them gains little.
DEFAULT_MIN_PARAMS = 16_384


def tensorize(
    model: keras.Model,
    tt_rank: int | Sequence[int] | None = None,
    rel_error: float | None = None,
    target_ratio: float | None = None,
    layers: Any = None,
    min_params: int = DEFAULT_MIN_PARAMS,
    modes: Any = None,
    verbose: int = 1,
    model_ratio: float | None = None,
    calibration_data: Any = None,
    allocation: str | None = None,
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
    planned before any work starts). The returned model holds copies of
    every weight that is not replaced (equal values, not shared variables),
    so training one model never changes the other. It is built one of two
    ways:

    - A Sequential or Functional model of Keras's own classes is cloned
      with `keras.models.clone_model`: shared layers stay shared, nested
      models are cloned recursively, operations on symbolic tensors
      (``x + f(x)``) and masks are kept. A `Dense` inside a wrapper
      (``TimeDistributed``), a registered custom layer or a registered
      subclassed model is replaced by rebuilding its holder from its
      config with the new layer in the same attribute.
    - Any other model (a keras_hub ``Backbone`` or ``CausalLM``, a
      subclass of `keras.Model`), or one whose selected layers sit in a
      holder that cannot be rebuilt from its config (an unregistered
      attention class), is copied whole, from its own config, and each
      TT layer is put wherever the copy refers to the layer it replaces:
      attributes, lists and dicts, tracked sublayers, graph nodes. The
      copy keeps the model's class, so ``generate`` and every other method
      works on it.

    Either way the result saves to a `.keras` file and loads again with
    ``import keras_tt``: the file records where each TT layer goes, and
    loading rebuilds the model from its config and puts the TT layers back
    before the weights are read.

    Optimizer. If ``model`` was compiled, the clone is compiled from its
    compile config: same loss and metrics, and a fresh optimizer of the same
    configuration without the old state (slots refer to the old
    variables); when the compile config cannot be rebuilt (a plain-function
    loss, an unregistered metric class), with the original loss and metric
    objects, or, failing that, not at all (with a warning). Otherwise it is
    not compiled. Call ``compile`` again to use another optimizer for
    fine-tuning.

    Ranks. Give ``tt_rank`` (a cap on every inner TT-rank, or a sequence of
    ``d - 1`` caps), ``rel_error`` (the relative Frobenius error
    ``||W - W_tt||_F / ||W||_F`` allowed per kernel; smallest ranks that
    meet it) or ``target_ratio`` (the largest uniform rank that compresses
    each kernel at least that much). ``rel_error`` combines with either of
    the others: both bounds hold where they can, and the error achieved is
    reported.

    Whole-model budget. ``model_ratio=c`` instead chooses one TT-rank per
    selected layer so that the whole model shrinks at least ``c`` times
    (``model.count_params() / tt_model.count_params() >= c``), giving the
    ranks to the layers that need them: without data, one relative weight
    error shared by all layers is bisected to the budget
    (``allocation="threshold"``); with ``calibration_data`` (a sample of
    model inputs), the change of the model's outputs is measured for each
    layer and rank, ranks are added greedily by output-change decrease
    per parameter (``allocation="greedy"``), and of that allocation and
    the threshold one the one whose whole model changes the outputs less
    on the sample is kept (``allocation="auto"``, the default with data).
    The budget is met within one
    rank step: raising any single layer by one rank step would overflow it.
    ``tt_model.tensorize_report.allocation`` holds the options, the
    sensitivities and the chosen ranks.

    The report. A `keras_tt.report.CompressionReport` (per layer: modes,
    ranks, kernel parameters before and after, compression, achieved
    relative error; totals for the replaced kernels and the whole model) is
    attached as ``tt_model.tensorize_report``, and printed when
    ``verbose`` is 1.

    Args:
        model: a built Keras model: Sequential, Functional, a keras_hub
            model, or a subclassed model rebuildable from its config.
        tt_rank: positive integer or sequence of inner TT-ranks.
        rel_error: relative error budget per kernel, strictly between 0
            and 1.
        target_ratio: positive number, the least compression
            ``input_dim * units / core parameters`` of each kernel.
        layers: which layers to replace. ``None``: every layer a registered
            converter handles (`Dense` by default) whose largest kernel has
            at least ``min_params`` entries. Otherwise a layer name (nested
            layers also as ``"outer/inner"``), a layer object,
            a list of either, a predicate ``layer -> bool`` applied to the
            candidate layers, or a dict ``{name or layer: settings}`` where
            ``settings`` is ``None`` or a dict with keys among ``tt_rank``,
            ``rel_error``, ``target_ratio``, ``in_modes`` and ``out_modes``
            that override the global arguments for that layer.
            ``min_params`` applies only when ``layers`` is ``None``.
        min_params: non-negative integer, the smallest kernel size replaced
            by default.
        modes: ``None`` for automatic modes (`keras_tt.auto_modes`), a pair
            ``(in_modes, out_modes)`` for every selected layer, or a dict
            ``{layer name: (in_modes, out_modes)}``. For a convolution the
            modes factor its input and output channels. ``"fast"`` (for
            every layer, or as a value of the dict) takes the two-core
            modes of `keras_tt.fast_modes` for each weight matrix of the
            Dense, EinsumDense and attention layers, which run several times
            faster on device; the other kinds keep automatic modes when it
            is given for every layer, and refuse it given for them alone.
        verbose: 0 for silence; 1 for a progress bar (one step per
            truncation) and the printed report; 2 for the report and a
            one-line progress summary, as in `fit`.
        model_ratio: a number >= 1, the least whole-model compression;
            excludes ``tt_rank``, ``rel_error`` and ``target_ratio``.
        calibration_data: with ``model_ratio``, a sample of model inputs
            (an array, or a list or dict of arrays) on which each layer's
            sensitivity is measured.
        allocation: with ``model_ratio``, ``"threshold"`` (the default
            without data), ``"greedy"``, or ``"auto"`` (the default with
            data: greedy and threshold, keeping the one with the smaller
            measured whole-model output change).

    Returns:
        A new, built `keras.Model` with the ``tensorize_report`` attribute.

    Raises:
        ValueError: for bad arguments (unknown layer names, layers no
            converter handles, an empty selection, ranks < 1, ``rel_error``
            outside (0, 1), modes that do not fit), a
            model that cannot be copied (the message names the class and
            what it lacks), an unbuilt model, or a model with nothing to
            replace; always before any TT-SVD.

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
    # 1. Check every argument, and how the clone will be compiled, before
    #    doing any work.
    check_model(model)
    check_rank_arguments(tt_rank, rel_error, target_ratio)
    check_budget_arguments(
        model_ratio,
        allocation,
        calibration_data,
        tt_rank,
        rel_error,
        target_ratio,
    )
    calibration_data = check_calibration_data(model, calibration_data)
    min_params = check_min_params(min_params)
    verbose = check_verbose(verbose)
    modes = check_modes_argument(modes)
    compile_how = compile_plan(model)

    # 2. Find the layers to replace: in nested models, wrappers and
    #    custom layers too.
    root, nodes = build_tree(model)
    selected, skipped = select(model, nodes, layers, min_params)
    if not selected:
        raise ValueError(
            nothing_selected_message(model, nodes, layers, min_params, skipped)
        )
    if isinstance(modes, dict):
        known = {s.name for s in selected} | {s.layer.name for s in selected}
        unknown = sorted(str(key) for key in modes if key not in known)
        if unknown:
            raise ValueError(
                f"Received an invalid value for `modes`: {unknown} are not "
                f"among the selected layers {sorted(known)}. "
                f"Received: modes={modes!r}"
            )
    for node, reason in skipped:
        warnings.warn(
            f"`tensorize` leaves '{node.path}' as it is: {reason}.",
            UserWarning,
            stacklevel=2,
        )
    if layers is None:
        for reason, paths in unconverted_convolutions(nodes):
            warnings.warn(
                f"`tensorize` leaves {len(paths)} convolution(s) as they "
                f"are, {paths}: {reason}.",
                UserWarning,
                stacklevel=2,
            )

    # The model's own class is kept, or a holder cannot be rebuilt: copy
    # the whole model now (a model that cannot be copied fails here).
    copy = copy_model(model) if needs_substitution(model, selected) else None

    # 3. Plan every selected layer: modes, ranks, steps; all checked. With
    #    a whole-model budget, the ranks are allocated across the layers.
    budget = None
    if model_ratio is not None:
        check_no_layer_ranks(selected)
        plans = [plan(s, 1, None, None, modes) for s in selected]
        budget = allocate(
            model, plans, model_ratio, calibration_data, allocation
        )
        for layer_plan, chosen in zip(plans, budget.layers):
            layer_plan.settings["tt_rank"] = chosen.tt_rank
    else:
        plans = [
            plan(s, tt_rank, rel_error, target_ratio, modes) for s in selected
        ]

    # 4. Decompose: one new TT layer per selected layer.
    progress = Progress(sum(p.steps for p in plans), verbose)
    replacements, records = {}, []
    for layer_plan in plans:
        before = progress.done
        new_layer, layer_records = layer_plan.converter.convert(
            layer_plan.layer, dict(layer_plan.settings), progress.advance
        )
        progress.finish_layer(before, layer_plan.steps)
        replacements[id(layer_plan.layer)] = new_layer
        for record in layer_records:
            name = layer_plan.name
            if record.name:
                name = f"{name}/{record.name}"
            record = dataclasses.replace(record, name=name)
            records.append(record)
            _warn_if_larger(record)

    # 5. Build the new model: clone it around the new layers (copying the
    #    other weights), or copy it whole and substitute the new layers
    #    where its class must be kept or a holder cannot be rebuilt.
    if copy is not None:
        tt_model = substitute_layers(copy, model, nodes, selected, replacements)
    else:
        holders = {
            id(ancestor.layer)
            for s in selected
            for ancestor in s.node.ancestors()
            if ancestor.parent is not None or not is_graph_model(model)
        }
        tt_model = Cloner(replacements, holders).clone_model(model)
    apply_compile_plan(model, tt_model, compile_how)

    # 6. Report.
    report = CompressionReport(
        records,
        int(model.count_params()),
        int(tt_model.count_params()),
        allocation=budget,
    )
    tt_model.tensorize_report = report
    if verbose:
        report.print_table()
    return tt_model


def _warn_if_larger(record) -> None:
    if record.tt_params > record.dense_params:
        warnings.warn(
            f"Layer '{record.name}': its TT-cores hold "
            f"{record.tt_params:,} parameters, more than the "
            f"{record.dense_params:,} of the dense kernel, at TT-ranks "
            f"{record.ranks}. Use a lower `tt_rank`, a larger `rel_error` "
            "or `target_ratio`.",
            UserWarning,
            stacklevel=3,
        )
