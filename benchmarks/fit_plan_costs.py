"""Fit the TensorFlow cost model of `keras_tt.contraction_plans.plan_cost`.

Times, in TF graph mode (``tf.function``), the candidate plans of a few
TT layers at a few batch sizes, all in alternation, then fits the three
constants of `keras_tt.contraction_plans.PlanCosts` (fixed cost per einsum, per
multiply-add, per element read and written) by non-negative least squares
on relative errors, and prints them with, for each shape, the time of the
plan each model picks over the best measured one (target <= 1.10).

With ``--save``, the timings are written to
``benchmarks/results/plan_times_tensorflow.json``, which the test suite
reads to check the plans `choose_plan` picks against them
(`benchmarks/plan_records.py`).

Usage:
    nice -n 10 python benchmarks/fit_plan_costs.py [--threads 1]
        [--min-seconds 0.5] [--limit 10] [--save]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.plan_records import TENSORFLOW_RECORDS  # noqa: E402
from benchmarks.plan_records import load_records  # noqa: E402
from benchmarks.plan_records import save_records  # noqa: E402
from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTDense  # noqa: E402
from keras_tt import contraction as C  # noqa: E402
from keras_tt import contraction_plans as P  # noqa: E402

# name: (input width, units, TTDense arguments, batch sizes)
SHAPES = {
    "vgg": (
        25088,
        4096,
        dict(tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6),
        (1, 100),
    ),
    "mnist": (
        1024,
        1024,
        dict(tt_rank=8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)),
        (1, 100),
    ),
    "768r16": (768, 768, dict(tt_rank=16), (1, 128)),
    "ffn768r16": (768, 3072, dict(tt_rank=16), (1, 128)),
    "4096r8": (4096, 4096, dict(tt_rank=8), (1, 32)),
    "768r16x2": (
        768,
        768,
        dict(tt_rank=16, in_modes=(96, 8), out_modes=(8, 96)),
        (1, 128),
    ),
}


def candidate_plans(in_modes, out_modes, ranks, batch, limit):
    """The two chains, the rebuilt kernel when it fits, and the plans the
    current model ranks best: at most ``limit``."""
    budget = P.DEFAULT_MEMORY_BUDGET // 4
    plans = []
    for groups in P._groupings(len(in_modes)):
        for direction in (P.LEFT_TO_RIGHT, P.RIGHT_TO_LEFT):
            plan = P.TTPlan(groups, direction)
            if plan.is_dense and direction == P.RIGHT_TO_LEFT:
                continue
            size = P.merged_core_elements(in_modes, out_modes, ranks, plan)
            if size > budget:
                continue
            plans.append(plan)
    keep = [p for p in plans if p.is_chain or p.is_dense]
    rest = sorted(
        (p for p in plans if p not in keep),
        key=lambda p: P.plan_cost(in_modes, out_modes, ranks, p, batch),
    )
    return keep + rest[: max(0, limit - len(keep))]


def time_plans(layer, batch, plans, min_seconds):
    """Median seconds of ``x @ W`` for each plan, timed in alternation."""
    x = tf.constant(
        np.random.default_rng(0).standard_normal((batch, layer.input_dim)),
        tf.float32,
    )
    fns = []
    for plan in plans:
        fn = tf.function(
            lambda v, p=plan: C.tt_matmul(
                v, layer.cores, layer.in_modes, layer.out_modes, plan=p
            ),
            input_signature=[tf.TensorSpec(x.shape, tf.float32)],
            autograph=False,
        )
        fns.append(lambda f=fn: f(x).numpy())
    return interleaved_median_seconds(
        fns, repeats=10, warmup=2, min_total=min_seconds
    )


def measure(names, min_seconds, limit):
    samples = []
    for name in names:
        input_dim, units, kwargs, batches = SHAPES[name]
        layer = TTDense(units, **kwargs)
        layer.build((None, input_dim))
        shape = (layer.in_modes, layer.out_modes, layer.tt_ranks)
        for batch in batches:
            plans = candidate_plans(*shape, batch, limit)
            chosen = layer.contraction_plan(batch)
            if chosen not in plans:
                plans.append(chosen)
            times = time_plans(layer, batch, plans, min_seconds)
            samples += [
                (name, batch, shape, p, t) for p, t in zip(plans, times)
            ]
            print(f"  measured {name} at batch {batch}", flush=True)
    return samples


def fit(samples):
    from scipy.optimize import nnls

    terms = np.array(
        [P.plan_terms(*shape, plan, b) for _, b, shape, plan, _ in samples],
        dtype=np.float64,
    )
    times = np.array([s[4] for s in samples])
    scale = np.array([1e-5, 1e-10, 1e-9])
    coef, _ = nnls(terms * scale / times[:, None], np.ones(len(times)))
    return P.PlanCosts(*(coef * scale))


def report(samples, fitted):
    groups = {}
    for s in samples:
        groups.setdefault((s[0], s[1]), []).append(s)
    rows = []
    for (name, batch), group in groups.items():
        best = min(group, key=lambda s: s[4])
        shape = group[0][2]
        cells = [name, batch, f"{best[3].name} {1e3 * best[4]:.3f} ms"]
        for costs in (P.TENSORFLOW_COSTS, fitted):
            chosen = min(
                group, key=lambda s: P.plan_cost(*shape, s[3], batch, costs)
            )
            cells.append(f"{chosen[3].name}: {chosen[4] / best[4]:.2f}")
        rows.append(cells)
    headers = [
        "layer",
        "batch",
        "best measured",
        "in contraction.py: ratio",
        "fitted: ratio",
    ]
    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument(
        "--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES)
    )
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="fit to the saved timings instead of measuring again",
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the timings for the test suite (benchmarks/results/)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.from_records:
        samples = [
            (
                case["name"],
                case["batch"],
                (case["in_modes"], case["out_modes"], case["ranks"]),
                plan,
                seconds,
            )
            for case in load_records(TENSORFLOW_RECORDS)
            for plan, seconds in case["times"].items()
        ]
    else:
        samples = measure(args.shapes, args.min_seconds, args.limit)
    if args.save and not args.from_records:
        save_records(
            TENSORFLOW_RECORDS,
            "tensorflow",
            samples,
            dict(
                threads=args.threads or "default",
                min_seconds=args.min_seconds,
                tensorflow=tf.__version__,
            ),
        )
        print(f"saved {TENSORFLOW_RECORDS}")
    fitted = fit(samples)
    print()
    print(
        f"fitted: PlanCosts(op={fitted.op:.3g}, mac={fitted.mac:.3g}, "
        f"element={fitted.element:.3g})"
    )
    print(report(samples, fitted))
    print("ratio: the picked plan's time over the best measured one's.")


if __name__ == "__main__":
    main()
