"""Planning: the settings of every selected layer, checked before any work."""

from __future__ import annotations

import dataclasses
import warnings

from keras_tt import modes as modes_lib
from keras_tt.tensorize._converters import KernelModesError
from keras_tt.tensorize._selection import Selected
from keras_tt.tt_matrix import num_tt_params


@dataclasses.dataclass
class Plan:
    """What to do with one selected layer."""

    selected: Selected
    # tt_rank, rel_error, target_ratio, in_modes, out_modes for `convert`.
    settings: dict
    # TT-SVD truncations, for the progress bar.
    steps: int

    @property
    def name(self) -> str:
        return self.selected.name

    @property
    def layer(self):
        return self.selected.layer

    @property
    def converter(self):
        return self.selected.node.converter


def settings_rank_for_ratio(name, rows, cols, settings) -> int:
    """`rank_for_ratio` of one kernel of a layer, for the layer's settings.

    The modes are those the layer's ``in_modes``/``out_modes`` settings
    resolve to for a ``rows x cols`` kernel (automatic when unset).
    """
    layout = modes_lib.resolve_layout(
        rows, cols, None, settings.get("in_modes"), settings.get("out_modes")
    )
    return rank_for_ratio(
        name,
        rows,
        cols,
        layout.in_modes,
        layout.out_modes,
        settings["target_ratio"],
    )


def rank_for_ratio(name, rows, cols, in_modes, out_modes, target_ratio) -> int:
    """The largest uniform TT-rank compressing a kernel >= ``target_ratio``.

    ``in_modes`` and ``out_modes`` are the resolved modes, whose products
    may exceed ``rows`` and ``cols`` when the widths are padded; the ratio
    is that of the unpadded kernel, as the report gives it. Raises a
    ValueError naming the kernel when even rank 1 does not reach it.
    """
    dense = rows * cols

    def core_params(rank):
        ranks = modes_lib.resolve_tt_ranks(
            rank, in_modes, out_modes, warn=False
        )
        return num_tt_params(in_modes, out_modes, ranks)

    best = None
    for rank in range(1, max(modes_lib.max_tt_ranks(in_modes, out_modes)) + 1):
        if dense / core_params(rank) < target_ratio:
            break
        best = rank
    if best is None:
        raise ValueError(
            f"Received an invalid value for `target_ratio`: layer '{name}' "
            f"({rows}x{cols}, modes {tuple(in_modes)} x {tuple(out_modes)}) "
            f"is compressed at most {dense / core_params(1):.1f}x (at "
            f"TT-rank 1). Received: target_ratio={target_ratio!r}"
        )
    return best


def plan(selected: Selected, tt_rank, rel_error, target_ratio, modes) -> Plan:
    """Resolve and check the settings of one selected layer."""
    name, layer = selected.name, selected.layer
    converter = selected.node.converter
    converter.check(layer)
    settings = dict(selected.settings)
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
    # "fast" for every layer applies to the layers that take it (weight
    # matrices the input is multiplied by); asked for one layer, it must.
    asked_for_this_layer = (
        isinstance(modes, dict) and modes_lib.is_fast(layer_modes)
    ) or any(modes_lib.is_fast(m) for m in (in_modes, out_modes))
    if modes_lib.is_fast(layer_modes):
        layer_modes = (modes_lib.FAST, modes_lib.FAST)
    if layer_modes is not None and in_modes is None and out_modes is None:
        in_modes, out_modes = layer_modes
    fast = modes_lib.is_fast(in_modes) or modes_lib.is_fast(out_modes)
    if fast and not converter.takes_fast_modes:
        if asked_for_this_layer:
            raise ValueError(
                f"Layer '{name}' ({type(layer).__name__}): modes "
                f"'{modes_lib.FAST}' apply to the weight matrices of Dense, "
                "EinsumDense and attention layers, not to this kind of "
                "layer; give its modes explicitly or leave them automatic. "
                f"Received: in_modes={in_modes!r}, out_modes={out_modes!r}"
            )
        in_modes = out_modes = None

    try:
        layouts = converter.kernel_layouts(layer, in_modes, out_modes)
    except KernelModesError as error:
        where = f"{name}/{error.sub_name}" if error.sub_name else name
        raise ValueError(f"Layer '{where}' ({error.shape}): {error}") from None
    steps = 0
    ranks = []
    for sub_name, layout in layouts:
        where = f"{name}/{sub_name}" if sub_name else name
        rows, cols = layout.input_dim, layout.units
        steps += max(1, layout.num_cores - 1)
        kernel_rank = layer_rank
        if layer_ratio is not None:
            kernel_rank = rank_for_ratio(
                where,
                rows,
                cols,
                layout.in_modes,
                layout.out_modes,
                layer_ratio,
            )
            ranks.append(kernel_rank)
        if kernel_rank is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    modes_lib.resolve_tt_ranks(
                        kernel_rank, layout.in_modes, layout.out_modes
                    )
                except ValueError as error:
                    raise ValueError(
                        f"Layer '{where}' ({rows}x{cols}): {error}"
                    ) from None
    if layer_ratio is not None and len(layouts) == 1:
        layer_rank = ranks[0]
    return Plan(
        selected,
        {
            "tt_rank": layer_rank,
            "rel_error": layer_error,
            "target_ratio": layer_ratio,
            "in_modes": in_modes,
            "out_modes": out_modes,
        },
        max(1, steps),
    )
