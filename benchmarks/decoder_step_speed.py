"""One decoder block in LiteRT, TT against dense: 1 token and 128 tokens.

The block is a Keras model of plain layers: self-attention with query,
key, value and output projections (hidden 768, 12 heads) and a gated
feed-forward network (gate and up 768 -> 3072, down 3072 -> 768, SiLU),
each projection a `keras.layers.Dense` or a `keras_tt.TTDense`. "attention"
is the attention half alone. Each TT variant is ``layout:rank``:
``balanced`` takes the automatic modes (`keras_tt.auto_modes`: 768 as
8 x 6 x 4 x 4, four cores), ``fast`` the two-core modes of
`keras_tt.fast_modes` (768 as 96 x 8 in, 8 x 96 out); the default
variants are both at TT-rank 16 and the two-core layout at TT-rank 10,
which holds about as many weights as the balanced one at 16 (15,360
against 14,592 per 768 x 768 projection). Each model is exported with
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
        [--caches warm cold] [--tt balanced:16 fast:16 fast:10]
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
from keras_tt import fast_modes  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import export_tflite  # noqa: E402
from keras_tt.export.inspect import format_bytes  # noqa: E402

HIDDEN, HEADS, FFN = 768, 12, 3072
LAYOUTS = ("balanced", "fast")
DEFAULT_VARIANTS = (("balanced", 16), ("fast", 16), ("fast", 10))


def parse_variant(text):
    """``"layout:rank"`` as ``(layout, rank)``."""
    layout, _, rank = text.partition(":")
    if layout not in LAYOUTS or not rank.isdigit() or int(rank) < 1:
        raise argparse.ArgumentTypeError(
            f"expected layout:rank with a layout in {LAYOUTS} and a positive "
            f"rank, received {text!r}"
        )
    return layout, int(rank)


def _projection(kind, units, name, input_dim):
    # Random biases: zero ones could be folded away by the converter.
    bias = "random_normal"
    if kind == "dense":
        return keras.layers.Dense(units, bias_initializer=bias, name=name)
    layout, rank = kind
    modes = {}
    if layout == "fast":
        in_modes, out_modes = fast_modes(input_dim, units)
        modes = dict(in_modes=in_modes, out_modes=out_modes)
    return TTDense(
        units, tt_rank=rank, bias_initializer=bias, name=name, **modes
    )


def build_block(kind, tokens, part="block", seed=0):
    """The decoder block (or its attention half) on ``tokens`` tokens;
    ``kind`` is ``"dense"`` or a TT variant ``(layout, rank)``."""
    keras.utils.set_random_seed(seed)
    ops = keras.ops
    inputs = keras.Input((tokens, HIDDEN), batch_size=1)
    head = HIDDEN // HEADS

    def split(t):
        return ops.transpose(
            ops.reshape(t, (-1, tokens, HEADS, head)), (0, 2, 1, 3)
        )

    q = split(_projection(kind, HIDDEN, "query", HIDDEN)(inputs))
    k = split(_projection(kind, HIDDEN, "key", HIDDEN)(inputs))
    v = split(_projection(kind, HIDDEN, "value", HIDDEN)(inputs))
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / head**0.5
    context = ops.matmul(ops.softmax(scores, axis=-1), v)
    context = ops.reshape(
        ops.transpose(context, (0, 2, 1, 3)), (-1, tokens, HIDDEN)
    )
    x = inputs + _projection(kind, HIDDEN, "output", HIDDEN)(context)
    if part == "block":
        gate = _projection(kind, FFN, "gate", HIDDEN)(x)
        up = _projection(kind, FFN, "up", HIDDEN)(x)
        x = x + _projection(kind, HIDDEN, "down", FFN)(ops.silu(gate) * up)
    return keras.Model(inputs, x)


def plans(model, tokens, mode):
    """The distinct plans of the TT layers, as exported for ``tokens``
    rows."""
    names = []
    scope = P.LITERT_INT8 if mode == "int8" else P.LITERT
    with P.contraction_scope(scope):
        for layer in model.layers:
            if isinstance(layer, TTDense):
                name = layer.contraction_plan(tokens).name
                if name not in names:
                    names.append(name)
    return "; ".join(names)


def variant_name(kind):
    layout, rank = kind
    return f"{layout}, rank {rank}"


def run(
    tokens_list,
    modes,
    parts,
    min_seconds,
    folder,
    caches=("warm",),
    variants=DEFAULT_VARIANTS,
):
    """One row per part, tokens, mode, cache state and TT variant
    ``(layout, rank)``; all the variants of a part are timed in
    alternation with the dense model."""
    rows = []
    evict = CacheEvictor() if "cold" in caches else None
    rng = np.random.default_rng(1)
    kinds = ["dense", *variants]
    for part in parts:
        for tokens in tokens_list:
            x = rng.normal(size=(8, tokens, HIDDEN)).astype(np.float32)
            for mode in modes:
                quantization = None if mode == "float32" else mode
                runners, sizes, plan_text = [], [], []
                for index, kind in enumerate(kinds):
                    model = build_block(kind, tokens, part)
                    path = os.path.join(folder, f"{index}.tflite")
                    report = export_tflite(
                        model,
                        path,
                        quantization=quantization,
                        representative_data=x,
                        validation_data=x[:2],
                        batch_size=1,
                        verbose=0,
                    )
                    plan_text.append(plans(model, tokens, mode))
                    sizes.append(report.file_size)
                    runner = TFLiteRunner(path, num_threads=1)
                    runner.set_inputs(x[:1])
                    runners.append(runner)
                    keras.backend.clear_session()
                for cache in caches:
                    times = interleaved_median_seconds(
                        [r.interpreter.invoke for r in runners],
                        repeats=20,
                        warmup=3,
                        min_total=min_seconds * (len(runners) - 1),
                        before=evict if cache == "cold" else None,
                    )
                    for index, kind in enumerate(kinds[1:], start=1):
                        rows.append(
                            [
                                part,
                                tokens,
                                mode,
                                cache,
                                variant_name(kind),
                                f"{1e3 * times[0]:.3f}",
                                f"{1e3 * times[index]:.3f}",
                                f"{times[0] / times[index]:.2f}x",
                                format_bytes(sizes[0]),
                                format_bytes(sizes[index]),
                                plan_text[index],
                            ]
                        )
                        print("  " + " | ".join(map(str, rows[-1])), flush=True)
    headers = [
        "part",
        "tokens",
        "mode",
        "caches",
        "TT layout",
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
    parser.add_argument(
        "--tt",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        type=parse_variant,
        help="TT variants as layout:rank, layout 'balanced' (automatic "
        "modes) or 'fast' (keras_tt.fast_modes); default: balanced:16 "
        "fast:16 fast:10",
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
            variants=args.tt,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(
        f"Decoder block, hidden {HIDDEN}, {HEADS} heads, FFN {FFN}; LiteRT, "
        "1 thread, XNNPACK; batch 1; interleaved medians; "
        f"cold: {CacheEvictor.default_nbytes() // 2**20} MiB written before "
        "each run."
    )
    print(table)


if __name__ == "__main__":
    main()
