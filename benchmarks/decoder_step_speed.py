"""One decoder block in LiteRT, TT against dense: 1 token and 128 tokens.

The block is a Keras model of plain layers: self-attention with query,
key, value and output projections (hidden 768, 12 heads) and a gated
feed-forward network (gate and up 768 -> 3072, down 3072 -> 768, SiLU),
each projection a `keras.layers.Dense` or a `keras_tt.TTDense` (TT-rank
16). "attention" is the attention half alone. Each model is exported with
`keras_tt.export_tflite` for a fixed number of tokens (batch 1), so every
TT layer gets the plan the LiteRT cost model picks for its shape, and
both files are timed in alternation in the LiteRT interpreter, XNNPACK
on, one thread. Ratios are dense time / TT time: above 1, TT is faster.

Two cache states are timed. "warm": one model runs again and again, so a
CPU cache larger than its weights keeps them (9 MiB for the dense
attention, 36 MiB for the dense block). "cold": before every run a buffer
twice the largest cache is written (`benchmarks.timing.CacheEvictor`), so
the weights come from memory, as they do in a decoding step of a whole
LLM, whose blocks' weights together far exceed any cache.

Usage:
    nice -n 10 python benchmarks/decoder_step_speed.py [--min-seconds 2]
        [--tokens 1 128] [--modes float32 int8] [--parts attention block]
        [--caches warm cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import CacheEvictor  # noqa: E402
from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTDense  # noqa: E402
from keras_tt import contraction_plans as P  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import export_tflite  # noqa: E402
from keras_tt.export.inspect import format_bytes  # noqa: E402

HIDDEN, HEADS, FFN, RANK = 768, 12, 3072, 16


def _projection(kind, units, name):
    # Random biases: zero ones could be folded away by the converter.
    bias = "random_normal"
    if kind == "tt":
        return TTDense(units, tt_rank=RANK, bias_initializer=bias, name=name)
    return keras.layers.Dense(units, bias_initializer=bias, name=name)


def build_block(kind, tokens, part="block", seed=0):
    """The decoder block (or its attention half) on ``tokens`` tokens."""
    keras.utils.set_random_seed(seed)
    ops = keras.ops
    inputs = keras.Input((tokens, HIDDEN), batch_size=1)
    head = HIDDEN // HEADS

    def split(t):
        return ops.transpose(
            ops.reshape(t, (-1, tokens, HEADS, head)), (0, 2, 1, 3)
        )

    q = split(_projection(kind, HIDDEN, "query")(inputs))
    k = split(_projection(kind, HIDDEN, "key")(inputs))
    v = split(_projection(kind, HIDDEN, "value")(inputs))
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / head**0.5
    context = ops.matmul(ops.softmax(scores, axis=-1), v)
    context = ops.reshape(
        ops.transpose(context, (0, 2, 1, 3)), (-1, tokens, HIDDEN)
    )
    x = inputs + _projection(kind, HIDDEN, "output")(context)
    if part == "block":
        gate = _projection(kind, FFN, "gate")(x)
        up = _projection(kind, FFN, "up")(x)
        x = x + _projection(kind, HIDDEN, "down")(ops.silu(gate) * up)
    return keras.Model(inputs, x, name=f"{kind}_{part}_{tokens}")


def plans(model, tokens, mode):
    """``layer: plan`` of each TT layer as exported for ``tokens`` rows."""
    names = []
    scope = P.LITERT_INT8 if mode == "int8" else P.LITERT
    with P.contraction_scope(scope):
        for layer in model.layers:
            if isinstance(layer, TTDense):
                names.append(
                    f"{layer.name}: {layer.contraction_plan(tokens).name}"
                )
    return "; ".join(names)


def run(tokens_list, modes, parts, min_seconds, folder, caches=("warm",)):
    rows = []
    evict = CacheEvictor() if "cold" in caches else None
    rng = np.random.default_rng(1)
    for part in parts:
        for tokens in tokens_list:
            x = rng.normal(size=(8, tokens, HIDDEN)).astype(np.float32)
            for mode in modes:
                quantization = None if mode == "float32" else mode
                runners, sizes, plan_text = {}, {}, ""
                for kind in ("dense", "tt"):
                    model = build_block(kind, tokens, part)
                    path = os.path.join(folder, f"{kind}.tflite")
                    report = export_tflite(
                        model,
                        path,
                        quantization=quantization,
                        representative_data=x,
                        validation_data=x[:2],
                        batch_size=1,
                        verbose=0,
                    )
                    if kind == "tt":
                        plan_text = plans(model, tokens, mode)
                    sizes[kind] = report.file_size
                    runner = TFLiteRunner(path, num_threads=1)
                    runner.set_inputs(x[:1])
                    runners[kind] = runner
                    keras.backend.clear_session()
                for cache in caches:
                    t_dense, t_tt = interleaved_median_seconds(
                        [
                            runners["dense"].interpreter.invoke,
                            runners["tt"].interpreter.invoke,
                        ],
                        repeats=20,
                        warmup=3,
                        min_total=min_seconds,
                        before=evict if cache == "cold" else None,
                    )
                    rows.append(
                        [
                            part,
                            tokens,
                            mode,
                            cache,
                            f"{1e3 * t_dense:.3f}",
                            f"{1e3 * t_tt:.3f}",
                            f"{t_dense / t_tt:.2f}x",
                            format_bytes(sizes["dense"]),
                            format_bytes(sizes["tt"]),
                            plan_text,
                        ]
                    )
                    print("  " + " | ".join(map(str, rows[-1])), flush=True)
    headers = [
        "part",
        "tokens",
        "mode",
        "caches",
        "dense ms",
        "TT ms",
        "speed-up",
        "dense file",
        "TT file",
        "TT plans",
    ]
    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", nargs="+", type=int, default=[1, 128])
    parser.add_argument(
        "--modes", nargs="+", default=["float32"], choices=["float32", "int8"]
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["attention", "block"],
        choices=["attention", "block"],
    )
    parser.add_argument(
        "--caches",
        nargs="+",
        default=["warm", "cold"],
        choices=["warm", "cold"],
        help="warm: weights left in the CPU caches between runs; cold: "
        "evicted before every run",
    )
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    # One token: the softmax over one key is 1, as it should be.
    warnings.filterwarnings("ignore", message="You are using a softmax")
    folder = tempfile.mkdtemp(prefix="decoder_step_")
    try:
        table = run(
            args.tokens,
            args.modes,
            args.parts,
            args.min_seconds,
            folder,
            caches=args.caches,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(
        f"Decoder block, hidden {HIDDEN}, {HEADS} heads, FFN {FFN}, TT-rank "
        f"{RANK}; LiteRT, 1 thread, XNNPACK; batch 1; interleaved medians; "
        f"cold: {CacheEvictor.default_nbytes() // 2**20} MiB written before "
        "each run."
    )
    print(table)


if __name__ == "__main__":
    main()
