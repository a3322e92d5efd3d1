"""`tensorize` converter: `MultiHeadAttention` -> its TT counterpart.

The four projections of a `keras.layers.MultiHeadAttention` (or of a
subclass, such as keras_hub's ``CachedMultiHeadAttention``) are
`EinsumDense` layers created in its ``build``. Replacing them one by one
would leave a layer that rebuilds dense projections when it is loaded
again, so the whole attention layer is converted: into
`keras_tt.TTMultiHeadAttention` (or `tt_attention_class` of the subclass),
which records the TT-ranks and modes of its projections in its config.
"""

from __future__ import annotations

import dataclasses

import keras

from keras_tt.layers._tt_base import assign_copy
from keras_tt.layers.tt_attention import PROJECTIONS
from keras_tt.layers.tt_attention import TTAttentionMixin
from keras_tt.layers.tt_attention import tt_attention_class
from keras_tt.layers.tt_einsum_dense import check_einsum_dense_layer
from keras_tt.layers.tt_einsum_dense import einsum_dense_to_tt
from keras_tt.report import layer_record
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter
from keras_tt.tensorize._einsum_dense import einsum_kernel_size
from keras_tt.tensorize._einsum_dense import expressible
from keras_tt.tensorize._planning import settings_rank_for_ratio


def _projections(layer):
    """``(name, EinsumDense)`` for each projection of a built layer."""
    return [
        (name, getattr(layer, attribute))
        for name, attribute in PROJECTIONS.items()
        if isinstance(getattr(layer, attribute, None), keras.layers.EinsumDense)
    ]


class MultiHeadAttentionConverter(LayerConverter):
    """`keras.layers.MultiHeadAttention` and its subclasses -> the TT
    attention class of the same base, all four projections in TT format."""

    kind = "MultiHeadAttention"
    takes_fast_modes = True

    def handles(self, layer):
        return (
            isinstance(layer, keras.layers.MultiHeadAttention)
            and not isinstance(layer, TTAttentionMixin)
            and (
                not layer.built
                or all(expressible(p) for _, p in _projections(layer))
            )
        )

    def check(self, layer):
        if not layer.built:
            raise ValueError(
                f"The attention layer '{layer.name}' is not built, so it has "
                "no projections to decompose: call the model on data first."
            )
        projections = _projections(layer)
        if len(projections) != len(PROJECTIONS):
            raise ValueError(
                f"The attention layer '{layer.name}' "
                f"({type(layer).__name__}) does not hold its four "
                "projections as `EinsumDense` layers in the attributes "
                f"{tuple(PROJECTIONS.values())}."
            )
        for _, projection in projections:
            check_einsum_dense_layer(projection, name="layer")

    def kernels(self, layer):
        if not layer.built:
            return []
        return [
            (name, *einsum_kernel_size(projection))
            for name, projection in _projections(layer)
        ]

    def convert(self, layer, settings, callback):
        converted, records = {}, []
        specs = {}
        for name, projection in _projections(layer):
            tt_rank = settings.get("tt_rank")
            if settings.get("target_ratio") is not None:
                rows, cols = einsum_kernel_size(projection)
                tt_rank = settings_rank_for_ratio(
                    f"{layer.name}/{name}", rows, cols, settings
                )
            new_projection, decomposition = einsum_dense_to_tt(
                projection,
                tt_rank=tt_rank,
                rel_error=settings.get("rel_error"),
                in_modes=settings.get("in_modes"),
                out_modes=settings.get("out_modes"),
                callback=callback,
            )
            converted[name] = new_projection
            specs[name] = {
                "tt_rank": list(new_projection.tt_ranks[1:-1]) or 1,
                "in_modes": list(new_projection.in_modes),
                "out_modes": list(new_projection.out_modes),
            }
            record = layer_record(
                new_projection,
                rel_error=decomposition.rel_error,
                kind=self.kind,
            )
            records.append(dataclasses.replace(record, name=name))

        cls = tt_attention_class(type(layer))
        config = layer.get_config()
        config["tt_projections"] = specs
        new_layer = cls.from_config(config)
        new_layer.build_from_config(layer.get_build_config())
        # Projections: the TT-SVD cores; everything else: copied by position.
        replaced_old = {
            id(w) for _, p in _projections(layer) for w in p.weights
        }
        replaced_new = set()
        for name, attribute in PROJECTIONS.items():
            target = getattr(new_layer, attribute)
            target.set_weights(converted[name].get_weights())
            replaced_new.update(id(w) for w in target.weights)
        old_rest = [w for w in layer.weights if id(w) not in replaced_old]
        new_rest = [w for w in new_layer.weights if id(w) not in replaced_new]
        if [tuple(w.shape) for w in old_rest] != [
            tuple(w.shape) for w in new_rest
        ]:
            raise ValueError(
                f"`tensorize` could not copy the weights of the attention "
                f"layer '{layer.name}': besides its projections, its TT copy "
                f"holds weights of shapes {[tuple(w.shape) for w in new_rest]}"
                f", the original {[tuple(w.shape) for w in old_rest]}."
            )
        for old, new in zip(old_rest, new_rest):
            assign_copy(new, old)
        return new_layer, records


register_converter(MultiHeadAttentionConverter())
