"""`tensorize` converter: mixture-of-experts weights -> TT-matrices.

Handles any layer that says how many experts it has (``num_experts``) and
holds its experts' projections as its own ``(num_experts, rows, cols)``
variables: keras_hub's ``MixtralMoeExperts``, ``QwenMoeExperts``,
``Qwen3MoeExperts`` and ``GptOssExperts``. See `keras_tt.layers.tt_experts`.
"""

from __future__ import annotations

import keras

from keras_tt.layers.tt_experts import TTExpertsMixin
from keras_tt.layers.tt_experts import expert_weights
from keras_tt.layers.tt_experts import experts_to_tt
from keras_tt.report import LayerRecord
from keras_tt.report import register_tt_layer
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter
from keras_tt.tensorize._planning import settings_rank_for_ratio


def _name(attribute: str) -> str:
    return attribute.lstrip("_")


def _record(name, spec, rel_error=None, kind="Experts"):
    experts, rows, cols = spec["shape"]
    ranks = spec["tt_ranks"]
    tt_params = sum(
        ranks[k] * n * m * ranks[k + 1]
        for k, (n, m) in enumerate(zip(spec["in_modes"], spec["out_modes"]))
    )
    return LayerRecord(
        name=name,
        input_dim=int(rows),
        units=int(experts * cols),
        in_modes=tuple(spec["in_modes"]),
        out_modes=tuple(spec["out_modes"]),
        ranks=tuple(ranks),
        dense_params=int(experts * rows * cols),
        tt_params=int(tt_params),
        rel_error=rel_error,
        kind=kind,
    )


class ExpertsConverter(LayerConverter):
    """Experts layers -> the same layer with its expert weights as TT cores.

    The change is made in place in the pass's copy of the model (an
    `ExpertsChange`), since experts layers are built by their holder.
    """

    kind = "Experts"
    in_place = True

    def handles(self, layer):
        return bool(layer.built and expert_weights(layer))

    def check(self, layer):
        for attribute in expert_weights(layer):
            dtype = keras.backend.standardize_dtype(
                getattr(layer, attribute).dtype
            )
            if not keras.backend.is_float_dtype(dtype):
                raise ValueError(
                    f"The experts layer '{layer.name}' holds a {dtype} "
                    f"weight {attribute!r}; tensorize handles floating-point "
                    "weights."
                )

    def kernels(self, layer):
        kernels = []
        for attribute in expert_weights(layer):
            experts, rows, cols = (
                int(v) for v in getattr(layer, attribute).shape
            )
            kernels.append((_name(attribute), rows, experts * cols))
        return kernels

    def convert(self, layer, settings, callback):
        tt_rank = settings.get("tt_rank")
        if settings.get("target_ratio") is not None:
            # One rank for all the weights: the smallest any of them allows.
            ranks = [
                settings_rank_for_ratio(
                    f"{layer.name}/{name}", rows, cols, settings
                )
                for name, rows, cols in self.kernels(layer)
            ]
            tt_rank = min(ranks)
        change, decompositions = experts_to_tt(
            layer,
            tt_rank=tt_rank,
            rel_error=settings.get("rel_error"),
            in_modes=settings.get("in_modes"),
            out_modes=settings.get("out_modes"),
            callback=callback,
        )
        specs = change.specs
        records = [
            _record(
                _name(attribute),
                specs[attribute],
                rel_error=result.decomposition.rel_error,
                kind=self.kind,
            )
            for attribute, result in decompositions.items()
        ]
        return change, records


def _experts_records(layer, name):
    return [
        _record(f"{name}/{_name(attribute)}", spec)
        for attribute, spec in layer.tt_expert_specs().items()
    ]


register_converter(ExpertsConverter())
register_tt_layer(TTExpertsMixin, _experts_records)
