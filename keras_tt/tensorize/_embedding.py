"""`tensorize` converter: `keras.layers.Embedding` -> `keras_tt.TTEmbedding`."""

from __future__ import annotations

import keras

from keras_tt.layers.tt_embedding import TTEmbedding
from keras_tt.layers.tt_embedding import check_embedding_layer
from keras_tt.layers.tt_embedding import embedding_to_tt_embedding
from keras_tt.report import LayerRecord
from keras_tt.report import register_tt_layer
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import register_converter


def embedding_record(layer, name="", rel_error=None, kind="Embedding"):
    """The `keras_tt.LayerRecord` of a `TTEmbedding` table."""
    return LayerRecord(
        name=name,
        input_dim=int(layer.input_dim),
        units=int(layer.output_dim),
        in_modes=tuple(layer.vocab_modes),
        out_modes=tuple(layer.embed_modes),
        ranks=tuple(layer.tt_ranks),
        dense_params=int(layer.input_dim) * int(layer.output_dim),
        tt_params=int(layer.num_core_params),
        rel_error=rel_error,
        kind=kind,
    )


class EmbeddingConverter(LayerConverter):
    """`keras.layers.Embedding` -> `keras_tt.TTEmbedding` (TT-SVD of the
    table, rows = vocabulary modes).

    Subclasses are handled when `TTEmbedding` can stand in for them:
    keras_hub's ``ReversibleEmbedding`` with tied weights and no logit soft
    cap (its ``reverse=True`` call is `TTEmbedding`'s too).
    """

    kind = "Embedding"

    def handles(self, layer):
        if not isinstance(layer, keras.layers.Embedding):
            return False
        if hasattr(layer, "tie_weights") and not layer.tie_weights:
            return False
        return not getattr(layer, "logit_soft_cap", None)

    def check(self, layer):
        check_embedding_layer(layer, name="layer")
        dtype = keras.backend.standardize_dtype(layer.embeddings.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"The Embedding layer '{layer.name}' has a {dtype} table; "
                "tensorize handles floating-point tables."
            )

    def kernels(self, layer):
        if not layer.built:
            return []
        return [("", int(layer.input_dim), int(layer.output_dim))]

    def convert(self, layer, settings, callback):
        new_layer, decomposition = embedding_to_tt_embedding(
            layer,
            tt_rank=settings.get("tt_rank"),
            rel_error=settings.get("rel_error"),
            vocab_modes=settings.get("in_modes"),
            embed_modes=settings.get("out_modes"),
            callback=callback,
        )
        record = embedding_record(
            new_layer, rel_error=decomposition.rel_error, kind=self.kind
        )
        return new_layer, [record]


register_converter(EmbeddingConverter())
register_tt_layer(
    TTEmbedding, lambda layer, name: [embedding_record(layer, name)]
)
