"""A transformer, whole: embeddings, attention and feed-forward in TT format.

Builds keras_hub's BERT-style and GPT-2-style backbones from small configs
(random weights, nothing downloaded), runs `keras_tt.tensorize` on them,
which replaces the token embeddings (`TTEmbedding`), the four projections
of every attention layer (`TTMultiHeadAttention`) and the feed-forward
`Dense` layers (`TTDense`), and shows:

1. at full TT-rank the tensorized backbone computes what the original does;
2. the parameters of the real BERT-base and GPT-2-small configurations in
   TT format at a few ranks, counted from the shapes alone (the same
   layouts `tensorize` would choose, via `keras_tt.modes.resolve_layout`);
3. a small encoder exported to LiteRT with builtin ops only, matching Keras.

Usage:
    python examples/transformer.py [--rank 16] [--no-export]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tt  # noqa: E402
from keras_tt.modes import resolve_layout  # noqa: E402

SMALL = {
    "vocabulary_size": 300,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 32,
    "intermediate_dim": 64,
    "max_sequence_length": 16,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """The shapes of a BERT- or GPT-2-style backbone."""

    name: str
    vocabulary_size: int
    num_layers: int
    hidden_dim: int
    intermediate_dim: int
    max_sequence_length: int
    num_segments: int = 0  # BERT's segment embedding; 0 for GPT-2
    pooler: bool = False  # BERT's pooled Dense


BERT_BASE = Config("BERT-base", 30522, 12, 768, 3072, 512, 2, True)
GPT2_SMALL = Config("GPT-2 small", 50257, 12, 768, 3072, 1024)


def matrices(config: Config):
    """``(group, rows, cols, count)`` of every matrix `tensorize` replaces."""
    h, f = config.hidden_dim, config.intermediate_dim
    yield "token embedding", config.vocabulary_size, h, 1
    yield "attention", h, h, 4 * config.num_layers
    yield "feed-forward", h, f, config.num_layers
    yield "feed-forward", f, h, config.num_layers


def dense_params(config: Config) -> dict:
    """Parameters of the backbone by group, as keras_hub builds it."""
    h, f, n = config.hidden_dim, config.intermediate_dim, config.num_layers
    groups = {
        "token embedding": config.vocabulary_size * h,
        "attention": n * 4 * (h * h + h),
        "feed-forward": n * (h * f + f + f * h + h),
        # Position (and segment) embeddings, layer norms, pooler.
        "other": (
            config.max_sequence_length * h
            + config.num_segments * h
            + n * 2 * 2 * h  # two layer norms per block
            + 2 * h  # embedding (BERT) or final (GPT-2) layer norm
            + (h * h + h if config.pooler else 0)
        ),
    }
    return groups


def tt_params(config: Config, tt_rank: int) -> dict:
    """The same groups with every replaced matrix at ``tt_rank``."""
    groups = dense_params(config)
    for group, rows, cols, count in matrices(config):
        layout = resolve_layout(rows, cols, tt_rank, warn=False)
        groups[group] += count * (layout.num_params - rows * cols)
    return groups


def parameter_table(ranks=(8, 16, 32, 64)) -> str:
    """A Markdown table of both real configurations at several ranks."""
    lines = [
        "| model | TT-rank | embedding | attention | feed-forward | total "
        "| compression |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config in (BERT_BASE, GPT2_SMALL):
        dense = dense_params(config)
        total = sum(dense.values())
        lines.append(
            f"| {config.name} | dense | {dense['token embedding']:,} | "
            f"{dense['attention']:,} | {dense['feed-forward']:,} | "
            f"{total:,} | 1.0x |"
        )
        for rank in ranks:
            tt = tt_params(config, rank)
            tt_total = sum(tt.values())
            lines.append(
                f"| {config.name} | {rank} | {tt['token embedding']:,} | "
                f"{tt['attention']:,} | {tt['feed-forward']:,} | "
                f"{tt_total:,} | {total / tt_total:.1f}x |"
            )
    return "\n".join(lines)


def small_bert():
    import keras_hub

    return keras_hub.models.BertBackbone(**SMALL)


def small_gpt2():
    import keras_hub

    return keras_hub.models.GPT2Backbone(**SMALL)


def bert_inputs(rng, batch=2, length=16):
    return {
        "token_ids": rng.integers(
            0, SMALL["vocabulary_size"], (batch, length)
        ).astype("int32"),
        "segment_ids": rng.integers(0, 2, (batch, length)).astype("int32"),
        "padding_mask": np.ones((batch, length), "int32"),
    }


def gpt2_inputs(rng, batch=2, length=16):
    inputs = bert_inputs(rng, batch, length)
    del inputs["segment_ids"]
    return inputs


def max_difference(a, b) -> float:
    """Largest absolute difference over matching outputs (dicts too)."""
    a, b = keras.tree.flatten(a), keras.tree.flatten(b)
    return max(
        float(
            np.max(
                np.abs(
                    keras.ops.convert_to_numpy(x)
                    - keras.ops.convert_to_numpy(y)
                )
            )
        )
        for x, y in zip(a, b)
    )


def small_encoder(rank=None, length=8, seed=0):
    """A one-block text encoder of keras_tt layers, ready for LiteRT.

    Token ids -> TTEmbedding + position embedding -> TT self-attention ->
    TT feed-forward -> mean pooling -> logits.
    """
    keras.utils.set_random_seed(seed)
    vocab, width, heads = 500, 32, 2
    projections = {
        p: {"tt_rank": rank or 32} for p in ("query", "key", "value", "output")
    }
    ids = keras.Input((length,), dtype="int32", name="token_ids")
    x = keras_tt.TTEmbedding(vocab, width, rank or 32, name="tokens")(ids)
    positions = keras.layers.Embedding(length, width, name="positions")(
        keras.ops.arange(length)
    )
    x = keras.layers.Add()([x, positions[None]])
    attention = keras_tt.TTMultiHeadAttention(
        num_heads=heads,
        key_dim=width // heads,
        tt_projections=projections,
        name="attention",
    )(x, x)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, attention]))
    h = keras_tt.TTDense(64, rank or 32, activation="gelu", name="ffn_in")(x)
    h = keras_tt.TTDense(width, rank or 32, name="ffn_out")(h)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, h]))
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(4, name="logits")(x)
    return keras.Model(ids, outputs, name="tt_encoder")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    print("1. Small backbones, tensorized at full rank and at rank", args.rank)
    for name, build, make_inputs in (
        ("BERT", small_bert, bert_inputs),
        ("GPT-2", small_gpt2, gpt2_inputs),
    ):
        backbone = build()
        x = make_inputs(rng)
        reference = backbone(x)
        try:
            full = keras_tt.tensorize(
                backbone, tt_rank=10_000, min_params=0, verbose=0
            )
        except ValueError as error:
            print(f"   {name}: tensorize failed: {error}")
            continue
        print(
            f"   {name}: {len(full.tensorize_report.layers)} matrices in TT "
            f"format; full rank: max |difference| = "
            f"{max_difference(reference, full(x)):.2e}"
        )
        low = keras_tt.tensorize(
            backbone, tt_rank=args.rank, min_params=0, verbose=0
        )
        print(
            f"   {name}: rank {args.rank}: {backbone.count_params():,} -> "
            f"{low.count_params():,} parameters"
        )

    print("\n2. Real configurations (shapes only)")
    print(parameter_table())

    if not args.no_export:
        print("\n3. A small TT encoder exported to LiteRT")
        model = small_encoder()
        data = rng.integers(0, 500, size=(64, 8)).astype("int32")
        folder = tempfile.mkdtemp()
        for quantization in (None, "int8"):
            report = keras_tt.export_tflite(
                model,
                os.path.join(folder, f"encoder_{quantization}.tflite"),
                quantization=quantization,
                representative_data=data,
                batch_size=1,
                verbose=False,
            )
            print(
                f"   {quantization or 'float32'}: builtin only "
                f"{report.info.builtin_only}, {report.file_size:,} bytes, "
                f"relative error {report.relative_error:.2e}, ops "
                f"{sorted(report.op_versions)}"
            )


if __name__ == "__main__":
    main()
