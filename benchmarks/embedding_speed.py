"""TTEmbedding against Embedding: lookup latency and memory, TF and LiteRT.

For each table shape, a `keras.layers.Embedding` and a `keras_tt.TTEmbedding`
of the same shape look up a batch of random ids (1 and 256 ids), timed in
alternation (`interleaved_median_seconds`) as ``tf.function`` graphs and,
exported with `keras_tt.export_tflite` (float32, fixed batch), in the LiteRT
interpreter (XNNPACK, one thread). Memory is the bytes of the weights and
the size of the ``.tflite`` file.

Columns:

* ``vs Embedding``: Embedding time / TTEmbedding time (above 1: the TT
  layer is faster or smaller).
* ``vs MAC limit``: TTEmbedding time / the time the same runtime takes for
  the multiply-adds of the per-id lookup (each id's core slices multiplied
  together in the cheapest order), at the rate of a float32 matrix product
  with constant weights measured in the same run (below 1: the lookup
  shares work between ids through its tables).
* ``plan``: the runs of cores the lookup turns into tables, and its own
  multiply-adds per call.

With ``--runs N`` the timings are repeated N times (the files are exported
once) and each ratio is the median over the runs, with its range.

Usage:
    python benchmarks/embedding_speed.py [--min-seconds 0.5] [--runs 3]
        [--no-litert]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTEmbedding  # noqa: E402
from keras_tt import export_tflite  # noqa: E402
from keras_tt.contraction_plans import LITERT  # noqa: E402
from keras_tt.contraction_plans import contraction_scope  # noqa: E402
from keras_tt.layers import _lookup  # noqa: E402

# (label, vocabulary, width, TT-rank)
TABLES = [
    ("hashed n-grams 2^18 x 64, rank 16", 2**18, 64, 16),
    ("BERT-base tokens 30522 x 768, rank 32", 30522, 768, 32),
]
BATCHES = (1, 256)

# The matrix product that measures a runtime's multiply-add rate.
RATE_SHAPE = (256, 512, 512)


def _model(layer, batch):
    ids = keras.Input((1,), batch_size=batch, dtype="int32")
    return keras.Model(ids, layer(ids))


def _tf_fn(model):
    fn = tf.function(lambda ids: model(ids, training=False))
    return lambda ids: fn(ids).numpy()


def _interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]

    def run(x):
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    return run


def _litert_fn(model, batch, folder, name, data):
    path = os.path.join(folder, f"{name}_{batch}.tflite")
    export_tflite(
        model,
        path,
        representative_data=data,
        batch_size=batch,
        verbose=False,
    )
    return _interpreter(path), os.path.getsize(path)


def _rate_fns(folder):
    """``x @ W`` with a constant ``W``, in TF graph mode and in LiteRT."""
    rows, inner, cols = RATE_SHAPE
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((inner, cols)).astype("float32")
    x = rng.standard_normal((rows, inner)).astype("float32")
    kernel = tf.constant(weights)
    fn = tf.function(lambda v: tf.matmul(v, kernel))
    concrete = fn.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    path = os.path.join(folder, "rate.tflite")
    with open(path, "wb") as f:
        f.write(converter.convert())
    run = _interpreter(path)
    return (lambda: fn(x).numpy()), (lambda: run(x)), rows * inner * cols


def _per_id_macs(layer):
    modes, ranks = layer.embed_modes, layer.tt_ranks
    shapes = [(ranks[k], m, ranks[k + 1]) for k, m in enumerate(modes)]
    return _lookup._best_tree(shapes)[0]


def _plan_macs(layer, plan, ids):
    """Multiply-adds of one call of ``plan``: tables, then per id."""
    args = layer.vocab_modes, layer.embed_modes, layer.tt_ranks
    total, shapes = 0, []
    for index, (start, stop) in enumerate(plan.groups):
        shape = _lookup._run_shape(*args, start, stop)
        shapes.append((shape[0], shape[2], shape[3]))
        if _lookup._is_suffix(plan.groups, index):
            total += _lookup._suffix_macs(*args, start)
        else:
            total += _lookup._table_macs(*args, start, stop)
    return total + ids * _lookup._best_tree(shapes)[0]


def _cases(min_seconds, litert, folder):
    """Every timed comparison: (table, runtime, batch, functions, ids,
    per-id MACs, plan), the functions Embedding, TTEmbedding, rate."""
    rng = np.random.default_rng(0)
    rate_tf, rate_litert, rate_macs = _rate_fns(folder)
    cases, sizes = [], []
    for label, vocab, width, rank in TABLES:
        dense = keras.layers.Embedding(vocab, width)
        tt = TTEmbedding(vocab, width, rank)
        dense.build()
        tt.build()
        memory = dense.count_params() * 4, tt.count_params() * 4
        sizes.append((label, "weights (MB)", *memory))
        for batch in BATCHES:
            ids = rng.integers(0, vocab, size=(batch, 1)).astype("int32")
            models = _model(dense, batch), _model(tt, batch)
            fns = [_tf_fn(m) for m in models]
            plan = tt.lookup_plan(batch)
            cases.append(
                (label, "TF graph", batch, fns, ids, tt, plan, rate_tf)
            )
            if not litert:
                continue
            data = rng.integers(0, vocab, size=(8, 1)).astype("int32")
            runs, files = zip(
                *(
                    _litert_fn(m, batch, folder, n, data)
                    for m, n in zip(models, ("dense", "tt"))
                )
            )
            with contraction_scope(LITERT):
                plan = tt.lookup_plan(batch)
            cases.append(
                (label, "LiteRT", batch, runs, ids, tt, plan, rate_litert)
            )
            if batch == BATCHES[0]:
                sizes.append((label, ".tflite size (MB)", *files))
    return cases, sizes, rate_macs


def measure(min_seconds, litert, runs=1):
    folder = tempfile.mkdtemp()
    cases, sizes, rate_macs = _cases(min_seconds, litert, folder)
    speed = [[] for _ in cases]
    limit = [[] for _ in cases]
    times = [[] for _ in cases]
    rates = [[] for _ in cases]
    for _ in range(runs):
        for i, (_, _, _, fns, ids, tt, _, rate) in enumerate(cases):
            dense_s, tt_s = interleaved_median_seconds(
                [lambda f=f, x=ids: f(x) for f in fns],
                min_total=min_seconds,
            )
            # Timed on its own: between the lookups it would evict their
            # tables from the caches.
            (rate_s,) = interleaved_median_seconds(
                [rate], repeats=20, min_total=min_seconds / 4
            )
            seconds_per_mac = rate_s / rate_macs
            limit_s = seconds_per_mac * _per_id_macs(tt) * len(ids)
            times[i].append((dense_s, tt_s))
            rates[i].append(seconds_per_mac)
            speed[i].append(dense_s / tt_s)
            limit[i].append(tt_s / limit_s)

    def summary(values, unit="x"):
        middle = statistics.median(values)
        if len(values) == 1:
            return f"{middle:.2f}{unit}"
        return f"{middle:.2f}{unit} ({min(values):.2f}-{max(values):.2f})"

    rows = []
    for label, what, dense_b, tt_b in sizes:
        rows.append(
            (
                label,
                what,
                f"{dense_b / 1e6:.2f}",
                f"{tt_b / 1e6:.3f}",
                f"{dense_b / tt_b:.0f}x",
                "",
                "",
            )
        )
    for i, (label, runtime, batch, _, ids, tt, plan, _) in enumerate(cases):
        dense_s = statistics.median(t[0] for t in times[i])
        tt_s = statistics.median(t[1] for t in times[i])
        macs = _plan_macs(tt, plan, len(ids))
        rows.append(
            (
                label,
                f"{runtime}, {batch} ids (us)",
                f"{dense_s * 1e6:.0f}",
                f"{tt_s * 1e6:.0f}",
                summary(speed[i]),
                summary(limit[i]),
                f"{plan.name}; {macs / 1e6:.2f} M MACs",
            )
        )
    # What the arithmetic alone costs: the chosen plan's multiply-adds at
    # the measured rate, against twice the Embedding's time.
    notes = []
    for i, (label, runtime, batch, _, ids, tt, plan, _) in enumerate(cases):
        if batch != max(BATCHES):
            continue
        per_mac = statistics.median(rates[i])
        macs = _plan_macs(tt, plan, len(ids))
        dense_s = statistics.median(t[0] for t in times[i])
        notes.append(
            f"{label}, {runtime}, {batch} ids: x @ W at "
            f"{1e-9 / per_mac:.1f} GMAC/s; the plan's {macs / 1e6:.2f} M "
            f"MACs alone take {macs * per_mac * 1e6:.0f} us, half the "
            f"Embedding's speed is {2 * dense_s * 1e6:.0f} us"
        )
    return rows, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-litert", action="store_true")
    args = parser.parse_args(argv)
    rows, notes = measure(args.min_seconds, not args.no_litert, args.runs)
    print(
        format_table(
            [
                "table",
                "measure",
                "Embedding",
                "TTEmbedding",
                "vs Embedding",
                "vs MAC limit",
                "plan",
            ],
            rows,
        )
    )
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
