"""Whole transformers: keras_hub backbones tensorized, parameter counts."""

import os
import sys

import keras
import numpy as np
import pytest

import keras_tt

pytestmark = pytest.mark.zoo
keras_hub = pytest.importorskip("keras_hub")

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
)
import transformer  # noqa: E402


def _small_config(name, **kwargs):
    small = transformer.SMALL
    return transformer.Config(
        name,
        small["vocabulary_size"],
        small["num_layers"],
        small["hidden_dim"],
        small["intermediate_dim"],
        small["max_sequence_length"],
        **kwargs,
    )


def test_bert_tensorized_at_full_rank_computes_the_same(rng):
    backbone = transformer.small_bert()
    x = transformer.bert_inputs(rng)
    reference = backbone(x)
    tt = keras_tt.tensorize(backbone, tt_rank=10_000, min_params=0, verbose=0)
    kinds = {}
    for record in tt.tensorize_report.layers:
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    # Token and segment tables, 4 projections and 2 feed-forward layers
    # per block, the pooler.
    assert kinds == {"Embedding": 2, "MultiHeadAttention": 8, "Dense": 5}
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(tt(x)[key]),
            keras.ops.convert_to_numpy(reference[key]),
            rtol=1e-4,
            atol=1e-5,
        )


def test_bert_low_rank_shrinks_and_stays_close(rng):
    backbone = transformer.small_bert()
    x = transformer.bert_inputs(rng)
    tt = keras_tt.tensorize(backbone, rel_error=0.05, min_params=0, verbose=0)
    assert all(r.rel_error <= 0.05 for r in tt.tensorize_report.layers)
    assert np.isfinite(transformer.max_difference(backbone(x), tt(x)))


def test_gpt2_tensorized_at_full_rank_computes_the_same(rng):
    backbone = transformer.small_gpt2()
    x = transformer.gpt2_inputs(rng)
    reference = backbone(x)
    tt = keras_tt.tensorize(backbone, tt_rank=10_000, min_params=0, verbose=0)
    assert transformer.max_difference(reference, tt(x)) < 1e-4


@pytest.mark.parametrize(
    "build, config",
    [
        (
            transformer.small_bert,
            _small_config("bert", num_segments=2, pooler=True),
        ),
        (transformer.small_gpt2, _small_config("gpt2")),
    ],
)
def test_parameter_formula_matches_keras_hub(build, config):
    assert sum(transformer.dense_params(config).values()) == (
        build().count_params()
    )


def test_real_configurations_have_their_known_sizes():
    # Published sizes of the backbones (no weights involved).
    assert sum(transformer.dense_params(transformer.BERT_BASE).values()) == (
        109_482_240
    )
    assert sum(transformer.dense_params(transformer.GPT2_SMALL).values()) == (
        124_439_808
    )
