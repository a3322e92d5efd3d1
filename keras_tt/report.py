"""What a tensorized model holds: per-kernel records, totals and a table.

`tensorize` attaches a `CompressionReport` to the model it returns
(``tt_model.tensorize_report``); `model_report` builds one for any model
that contains TT layers (this is what ``keras-tt inspect`` prints).

Layers other than `TTDense` join `model_report` through `register_tt_layer`,
which maps a layer class to a function returning its `LayerRecord` list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from keras_tt.layers import TTDense


@dataclasses.dataclass(frozen=True)
class LayerRecord:
    """One TT kernel of a model (one `TTDense` layer, say).

    Attributes:
        name: the layer's name (nested models and wrappers give
            ``"outer/inner"``; layers holding several kernels add the
            kernel's name, ``"attention/query"``).
        input_dim: input width of the kernel.
        units: output width of the kernel.
        in_modes: row modes (their product may exceed ``input_dim`` when the
            width was padded).
        out_modes: column modes.
        ranks: TT-ranks ``(1, r_1, ..., r_{d-1}, 1)``.
        dense_params: ``input_dim * units``, the dense kernel's size.
        tt_params: entries in the cores.
        rel_error: relative Frobenius error of the TT-SVD that initialised
            the cores, ``||W - W_tt||_F / ||W||_F``; ``None`` when unknown
            (for a model loaded from disk).
        kind: what the kernel was, e.g. ``"Dense"``.
    """

    name: str
    input_dim: int
    units: int
    in_modes: tuple
    out_modes: tuple
    ranks: tuple
    dense_params: int
    tt_params: int
    rel_error: float | None = None
    kind: str = "Dense"

    @property
    def compression_ratio(self) -> float:
        """``dense_params / tt_params``, as `TTDense.compression_ratio`."""
        return self.dense_params / self.tt_params

    @property
    def compression(self) -> float:
        """The same as `compression_ratio` (its earlier name)."""
        return self.compression_ratio

    def as_dict(self) -> dict:
        """The record as a plain dict, with ``compression_ratio`` included
        (and ``compression``, its earlier name)."""
        return {
            **dataclasses.asdict(self),
            "compression_ratio": self.compression_ratio,
            "compression": self.compression_ratio,
        }


@dataclasses.dataclass(frozen=True)
class CompressionReport:
    """Per-layer records and whole-model totals of a TT-compressed model.

    Attributes:
        layers: list of `LayerRecord`, one per TT kernel.
        params_before: parameters of the model with dense kernels (for
            `tensorize`: the original model's ``count_params()``).
        params_after: parameters of the model with TT-cores.
        allocation: for ``tensorize(..., model_ratio=...)``, the
            ``BudgetAllocation``: per layer the rank options tried, their
            sizes, weight errors and (with calibration data) measured
            output changes, the ranks chosen and the predicted size
            (``params_after`` is the measured one); ``None`` otherwise.

    ``str(report)`` (and `print_table`) gives a table; `records` gives the
    same data as a list of dicts.
    """

    layers: list
    params_before: int
    params_after: int
    allocation: object = None

    @property
    def kernel_params_before(self) -> int:
        """Sum of the replaced dense kernels' sizes."""
        return sum(r.dense_params for r in self.layers)

    @property
    def kernel_params_after(self) -> int:
        """Sum of the core sizes."""
        return sum(r.tt_params for r in self.layers)

    @property
    def kernel_compression(self) -> float:
        """Compression of the replaced kernels taken together."""
        return self.kernel_params_before / max(1, self.kernel_params_after)

    @property
    def compression_ratio(self) -> float:
        """Whole-model compression: ``params_before / params_after``."""
        return self.params_before / max(1, self.params_after)

    @property
    def compression(self) -> float:
        """The same as `compression_ratio` (its earlier name)."""
        return self.compression_ratio

    @property
    def records(self) -> list[dict]:
        """The per-layer records as dicts."""
        return [r.as_dict() for r in self.layers]

    def totals(self) -> dict:
        """Totals for the replaced kernels and for the whole model (with a
        budget, also ``predicted_params`` and ``max_params``)."""
        extra = {}
        if self.allocation is not None:
            extra = {
                "predicted_params": self.allocation.predicted_params,
                "max_params": self.allocation.max_params,
            }
        return {
            **extra,
            "kernel_params_before": self.kernel_params_before,
            "kernel_params_after": self.kernel_params_after,
            "kernel_compression": self.kernel_compression,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "compression_ratio": self.compression_ratio,
            "compression": self.compression_ratio,
        }

    def table(self) -> str:
        """The report as a plain-text table."""
        headers = [
            "layer",
            "kind",
            "kernel",
            "modes (in x out)",
            "TT-ranks",
            "dense params",
            "TT params",
            "compression",
            "rel. error",
        ]
        rows = [
            [
                r.name,
                r.kind,
                f"{r.input_dim}x{r.units}",
                f"{_modes(r.in_modes)} x {_modes(r.out_modes)}",
                ",".join(str(x) for x in r.ranks),
                f"{r.dense_params:,}",
                f"{r.tt_params:,}",
                f"{r.compression:,.1f}x",
                "-" if r.rel_error is None else f"{r.rel_error:.4f}",
            ]
            for r in self.layers
        ]
        rows.append(
            [
                "TT kernels",
                "",
                "",
                "",
                "",
                f"{self.kernel_params_before:,}",
                f"{self.kernel_params_after:,}",
                f"{self.kernel_compression:,.1f}x",
                "",
            ]
        )
        rows.append(
            [
                "whole model",
                "",
                "",
                "",
                "",
                f"{self.params_before:,}",
                f"{self.params_after:,}",
                f"{self.compression:,.2f}x",
                "",
            ]
        )
        table = _format_table(headers, rows)
        if self.allocation is not None:
            table += "\n" + self.allocation.table()
            table += (
                f"\n  measured whole model: {self.params_after:,} "
                f"parameters ({self.compression:.2f}x)"
            )
        return table

    def print_table(self, print_fn: Callable[[str], None] | None = None):
        """Print `table` with ``print_fn`` (default: ``print``)."""
        (print_fn or print)(self.table())

    def __str__(self) -> str:
        return self.table()


def _modes(modes) -> str:
    return "*".join(str(m) for m in modes)


def _format_table(headers, rows) -> str:
    cells = [headers] + rows
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in cells
    ]
    rule = "  ".join("-" * w for w in widths)
    lines.insert(1, rule)
    lines.insert(len(lines) - 2, rule)
    return "\n".join(lines)


def layer_record(
    layer: TTDense,
    name: str | None = None,
    rel_error: float | None = None,
    kind: str = "Dense",
) -> LayerRecord:
    """The `LayerRecord` of a built `TTDense` layer."""
    return LayerRecord(
        name=name or layer.name,
        input_dim=int(layer.input_dim),
        units=int(layer.units),
        in_modes=tuple(layer.in_modes),
        out_modes=tuple(layer.out_modes),
        ranks=tuple(layer.tt_ranks),
        dense_params=int(layer.input_dim) * int(layer.units),
        tt_params=int(layer.num_core_params),
        rel_error=rel_error,
        kind=kind,
    )


# Layer class -> function(layer, name) returning its records.
_RECORDERS: dict[type, Callable[[keras.layers.Layer, str], list]] = {}


def register_tt_layer(
    layer_class: type,
    records: Callable[[keras.layers.Layer, str], list[LayerRecord]],
) -> None:
    """Make `model_report` describe layers of ``layer_class``.

    Args:
        layer_class: a TT layer class.
        records: ``records(layer, name) -> list[LayerRecord]`` for a built
            layer of that class found at ``name`` in the model.
    """
    _RECORDERS[layer_class] = records


register_tt_layer(TTDense, lambda layer, name: [layer_record(layer, name)])


def iter_layers(model, prefix: str = "", sublayers: bool = False):
    """``(qualified name, layer)`` for every layer, into nested models.

    Each layer object is listed once, at its first occurrence. With
    ``sublayers``, the layers held by other layers (a wrapper's ``layer``,
    a custom layer's attributes) are listed too, after their holder.
    """
    seen = set()

    def children(layer):
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
            return list(layer.layers)
        if sublayers:
            return list(getattr(layer, "_layers", []))
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            return list(layer.layers)
        return []

    def walk(container, prefix):
        for layer in children(container):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            name = prefix + layer.name
            yield name, layer
            yield from walk(layer, name + "/")

    yield from walk(model, prefix)


def _is_graph_model(model) -> bool:
    return isinstance(model, keras.Sequential) or hasattr(model, "_operations")


def model_report(model: keras.Model) -> CompressionReport:
    """Describe the TT layers of a model: modes, ranks, parameters.

    Works on any built model, for instance one loaded with
    `keras.saving.load_model`; this is what ``keras-tt inspect`` prints.
    ``params_before`` counts the model as if every `TTDense` kernel were a
    dense ``input_dim x units`` matrix; the approximation errors are unknown
    (``None``) here.

    Args:
        model: a built Keras model.

    Returns:
        A `CompressionReport`.

    Example:

    >>> import keras, keras_tt
    >>> model = keras.Sequential([
    ...     keras.Input((64,)),
    ...     keras_tt.TTDense(64, tt_rank=2, in_modes=(8, 8), out_modes=(8, 8)),
    ... ])
    >>> report = model_report(model)
    >>> report.layers[0].tt_params, report.layers[0].dense_params
    (256, 4096)
    >>> report.params_before, report.params_after
    (4160, 320)
    """
    records = []
    for name, layer in iter_layers(model, sublayers=True):
        recorder = next(
            (_RECORDERS[c] for c in type(layer).__mro__ if c in _RECORDERS),
            None,
        )
        if recorder is not None and layer.built:
            records.extend(recorder(layer, name))
    params_after = int(model.count_params())
    extra = sum(r.dense_params - r.tt_params for r in records)
    return CompressionReport(records, params_after + extra, params_after)
