"""`tensorize` converter: `keras.layers.Embedding` -> `keras_tt.TTEmbedding`."""

from __future__ import annotations

import dataclasses

import keras

from keras_tt import modes as modes_lib
from keras_tt.layers.tt_embedding import TTEmbedding
from keras_tt.layers.tt_embedding import check_embedding_layer
from keras_tt.layers.tt_embedding import embedding_to_tt_embedding
from keras_tt.layers.tt_embedding import reverse_embeddings_of
from keras_tt.report import LayerRecord
from keras_tt.report import register_tt_layer
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter
from keras_tt.tensorize._planning import rank_for_ratio

# The sub-name of an untied reverse projection's record and kernel.
REVERSE = "reverse"


def embedding_record(
    layer, name="", rel_error=None, kind="Embedding", reverse=False
):
    """The `keras_tt.LayerRecord` of a `TTEmbedding` table, or with
    ``reverse=True`` of its untied reverse projection (held transposed, as
    an ``input_dim x output_dim`` TT-matrix with the table's modes)."""
    layout = layer.reverse_layout if reverse else layer.layout
    return LayerRecord(
        name=name,
        input_dim=int(layout.input_dim),
        units=int(layout.units),
        in_modes=tuple(layout.in_modes),
        out_modes=tuple(layout.out_modes),
        ranks=tuple(layout.ranks),
        dense_params=int(layout.input_dim) * int(layout.units),
        tt_params=int(layout.num_params),
        rel_error=rel_error,
        kind=kind,
    )


def embedding_records(layer, name=""):
    """The records of every TT-matrix of a `TTEmbedding` at ``name``."""
    records = [embedding_record(layer, name)]
    if not layer.tie_weights:
        where = f"{name}/{REVERSE}" if name else REVERSE
        records.append(embedding_record(layer, where, reverse=True))
    return records


def _untied(layer):
    return not getattr(layer, "tie_weights", True)


class EmbeddingConverter(LayerConverter):
    """`keras.layers.Embedding` -> `keras_tt.TTEmbedding` (TT-SVD of the
    table, rows = vocabulary modes).

    Subclasses are handled when `TTEmbedding` can stand in for them: any
    keras_hub (or Keras) ``ReversibleEmbedding``, recognised by its
    ``tie_weights``, ``reverse_embeddings`` and ``logit_soft_cap``
    attributes, tied or not (its ``reverse=True`` call is `TTEmbedding`'s
    too). An untied one has two kernels, the table (sub-name ``""``) and
    the transposed reverse projection (``"reverse"``), each decomposed
    with the same modes and settings, one report record each.
    """

    kind = "Embedding"

    def handles(self, layer):
        if not isinstance(layer, keras.layers.Embedding):
            return False
        if _untied(layer) and layer.built:
            reverse = reverse_embeddings_of(layer)
            expected = (int(layer.output_dim), int(layer.input_dim))
            if reverse is None or tuple(reverse.shape) != expected:
                return False
        return True

    def check(self, layer):
        check_embedding_layer(layer, name="layer")
        weights = [layer.embeddings]
        if _untied(layer):
            weights.append(reverse_embeddings_of(layer))
        for weight in weights:
            dtype = keras.backend.standardize_dtype(weight.dtype)
            if not keras.backend.is_float_dtype(dtype):
                raise ValueError(
                    f"The Embedding layer '{layer.name}' has a {dtype} "
                    "table; tensorize handles floating-point tables."
                )

    def kernels(self, layer):
        if not layer.built:
            return []
        kernels = [("", int(layer.input_dim), int(layer.output_dim))]
        if _untied(layer):
            # Held transposed, with the table's modes.
            kernels.append(
                (REVERSE, int(layer.input_dim), int(layer.output_dim))
            )
        return kernels

    def convert(self, layer, settings, callback):
        tt_rank = settings.get("tt_rank")
        if settings.get("target_ratio") is not None and _untied(layer):
            # Both kernels have the same size and modes: one rank for both.
            vocab, width = int(layer.input_dim), int(layer.output_dim)
            layout = modes_lib.resolve_layout(
                vocab,
                width,
                None,
                settings.get("in_modes"),
                settings.get("out_modes"),
            )
            tt_rank = rank_for_ratio(
                layer.name,
                vocab,
                width,
                layout.in_modes,
                layout.out_modes,
                settings["target_ratio"],
            )
        new_layer, decompositions = embedding_to_tt_embedding(
            layer,
            tt_rank=tt_rank,
            rel_error=settings.get("rel_error"),
            vocab_modes=settings.get("in_modes"),
            embed_modes=settings.get("out_modes"),
            callback=callback,
        )
        records = [
            embedding_record(
                new_layer,
                rel_error=decompositions[0].rel_error,
                kind=self.kind,
            )
        ]
        if len(decompositions) > 1:
            record = embedding_record(
                new_layer,
                rel_error=decompositions[1].rel_error,
                kind=self.kind,
                reverse=True,
            )
            records.append(dataclasses.replace(record, name=REVERSE))
        return new_layer, records


register_converter(EmbeddingConverter())
register_tt_layer(TTEmbedding, embedding_records)
