"""The paper's inference-time table for the 25088 -> 4096 layer, TT-rank 4.

Novikov et al. (2015) time VGG-16's fc6 layer (25088 -> 4096) as a dense
matrix and as a TT-matrix of rank 4 (modes 2*7*8*8*7*4 and 4^6), for 1 and
100 images. This script measures the same layer, Dense against TTDense, in
TensorFlow graph mode (``tf.function``) and in the LiteRT interpreter
(float32 export, XNNPACK delegate), and prints the table the way the paper
prints it, with the dense / TT ratio. Our CPU is not theirs: compare ratios,
not milliseconds.

Paper (CPU): dense 16.1 ms / 97.2 ms, TT 1.2 ms / 94.7 ms (1 / 100 images),
ratios 13.4x and 1.03x.

Usage:
    nice -n 10 python benchmarks/paper_table.py [--threads 1] [--min-seconds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.litert_speed import MODELS  # noqa: E402
from benchmarks.litert_speed import build_pair  # noqa: E402
from benchmarks.litert_speed import export_pair  # noqa: E402
from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402

BATCHES = (1, 100)
PAPER = {  # (1 image, 100 images), milliseconds, CPU
    "dense": (16.1, 97.2),
    "TT": (1.2, 94.7),
}


def inputs(batch, input_dim, seed=0):
    return np.random.default_rng(seed).random(
        (batch, input_dim), dtype=np.float32
    )


def tf_graph_times(models, input_dim, min_seconds):
    """{kind: [seconds per batch size]} for the models in ``tf.function``."""
    times = {}
    for kind, model in models.items():
        forward = tf.function(
            lambda x, m=model: m(x, training=False),
            input_signature=[tf.TensorSpec((None, input_dim), tf.float32)],
        )
        times[kind] = []
        for batch in BATCHES:
            x = tf.constant(inputs(batch, input_dim))
            times[kind].append(
                median_seconds(
                    lambda f=forward, v=x: f(v).numpy(),
                    repeats=20,
                    warmup=3,
                    min_total=min_seconds,
                )
            )
    return times


def litert_times(paths, input_dim, threads, min_seconds):
    times = {}
    for kind, path in paths.items():
        runner = TFLiteRunner(path, num_threads=threads)
        times[kind] = []
        for batch in BATCHES:
            runner.set_inputs(inputs(batch, input_dim))
            times[kind].append(
                median_seconds(
                    runner.interpreter.invoke,
                    repeats=20,
                    warmup=3,
                    min_total=min_seconds,
                )
            )
    return times


def rows_for(label, times):
    rows = [
        [f"{label}, {kind}"] + [f"{1000 * t:.2f} ms" for t in times[kind]]
        for kind in ("dense", "TT")
    ]
    rows.append(
        [f"{label}, dense / TT"]
        + [f"{d / t:.2f}x" for d, t in zip(times["dense"], times["TT"])]
    )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for TensorFlow and LiteRT (default 1)",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="time spent measuring each cell (default 2)",
    )
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    spec = MODELS["fc6"]
    tt_model, dense_model = build_pair(spec)
    graph = tf_graph_times(
        {"TT": tt_model, "dense": dense_model},
        spec["input_dim"],
        args.min_seconds,
    )
    del tt_model, dense_model

    folder = tempfile.mkdtemp(prefix="paper_table_")
    try:
        exported = export_pair(spec, folder, "float32")
        paths = {"TT": exported["tt"][0], "dense": exported["dense"][0]}
        lite = litert_times(
            paths, spec["input_dim"], args.threads, args.min_seconds
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    paper = {k: [v / 1000 for v in PAPER[k]] for k in PAPER}
    rows = (
        rows_for("paper CPU", paper)
        + rows_for("TF graph", graph)
        + rows_for("LiteRT", lite)
    )
    print(
        f"25088 -> 4096 layer, TT-rank 4 (modes {spec['tt']['in_modes']} x "
        f"{spec['tt']['out_modes']}), {args.threads} thread(s); "
        "median time per batch"
    )
    print(format_table(["", "1 image", "100 images"], rows))
    print("Our CPU is not the paper's: compare the dense / TT ratios.")


if __name__ == "__main__":
    main()
