"""LiteRT latency of every contraction plan of a TT layer, and a cost fit.

For each shape, one model per candidate plan
(`keras_tt.contraction_plans.TTPlan`: the chain in both directions, runs of
merged cores, the rebuilt kernel and one matmul) is converted as export
converts it (inside ``contraction_scope("litert")``, so merged cores are
computed in the file from the cores), beside a plain ``Dense`` layer of the
same shape. All are timed in alternation in the LiteRT interpreter, XNNPACK
on, one thread, at a fixed batch. The constants of
`keras_tt.contraction_plans.plan_cost` are then fitted to the timings (non-
negative least squares on relative errors) and
printed, with the rank of the chosen plan among the measured ones.

With ``--save``, the timings are written to
``benchmarks/results/plan_times_litert.json``, which the test suite reads
to check the plans the LiteRT cost model picks against them
(`benchmarks/plan_records.py`).

Usage:
    nice -n 10 python benchmarks/litert_plans.py [--min-seconds 1]
        [--shapes 768r16 1024r8 fc6 ffn768r16 768r16x2] [--save]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.fit_plan_costs import SHAPES as TF_SHAPES  # noqa: E402
from benchmarks.fit_plan_costs import candidate_plans  # noqa: E402
from benchmarks.plan_records import LITERT_RECORDS  # noqa: E402
from benchmarks.plan_records import save_records  # noqa: E402
from benchmarks.timing import format_table  # noqa: E402
from benchmarks.timing import interleaved_median_seconds  # noqa: E402
from keras_tt import TTDense  # noqa: E402
from keras_tt import contraction as C  # noqa: E402
from keras_tt import contraction_plans as P  # noqa: E402
from keras_tt.export import TFLiteRunner  # noqa: E402
from keras_tt.export import _conversion  # noqa: E402
from keras_tt.export import _input_data  # noqa: E402

# name: (input width, units, TTDense arguments, row counts)
SHAPES = {
    "768r16": (768, 768, dict(tt_rank=16), (1, 128)),
    "1024r8": (
        1024,
        1024,
        dict(tt_rank=8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4)),
        (1, 100),
    ),
    "fc6": (
        25088,
        4096,
        dict(tt_rank=4, in_modes=(2, 7, 8, 8, 7, 4), out_modes=(4,) * 6),
        (1,),
    ),
    # The same layers and row counts as the TensorFlow fit.
    "ffn768r16": TF_SHAPES["ffn768r16"],
    "768r16x2": TF_SHAPES["768r16x2"],
}


class PlanDense(keras.layers.Layer):
    """``x @ W + b`` for the cores of a built `TTDense`, with a fixed plan."""

    def __init__(self, tt_layer, plan, **kwargs):
        super().__init__(**kwargs)
        self.tt = tt_layer
        self.plan = plan

    def call(self, x):
        tt = self.tt
        y = C.tt_matmul(x, tt.cores, tt.in_modes, tt.out_modes, plan=self.plan)
        return y + tt.bias


def convert(model, batch):
    inputs = _input_data.model_inputs(model)
    specs = _conversion.input_specs(inputs, batch)
    converter = _conversion.make_converter(model, specs, None, None, "float32")
    return _conversion.convert(converter)


def measure(name, min_seconds, folder, limit):
    input_dim, units, tt_args, row_counts = SHAPES[name]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((input_dim,))
    tt = TTDense(units, bias_initializer="random_normal", **tt_args)
    tt.build((None, input_dim))
    dense_model = keras.Sequential(
        [inputs, keras.layers.Dense(units, bias_initializer="random_normal")]
    )
    shape = (tt.in_modes, tt.out_modes, tt.tt_ranks)
    samples = []
    for rows in row_counts:
        plans = candidate_plans(*shape, batch=1, limit=limit)
        with P.contraction_scope(P.LITERT):
            chosen = P.choose_plan(*shape, batch=rows)
        if chosen not in plans:
            plans.append(chosen)
        x = np.random.default_rng(1).normal(size=(rows, input_dim))
        x = x.astype(np.float32)
        runners, reference = [], None
        for plan in plans:
            model = keras.Sequential(
                [keras.Input((input_dim,)), PlanDense(tt, plan)]
            )
            if reference is None:
                reference = keras.ops.convert_to_numpy(model(x))
            runner = TFLiteRunner(convert(model, rows), num_threads=1)
            error = np.linalg.norm(runner(x) - reference)
            if error > 1e-4 * np.linalg.norm(reference):
                raise AssertionError(f"{plan.name}: LiteRT differs from Keras")
            runners.append(runner)
        dense_runner = TFLiteRunner(convert(dense_model, rows), num_threads=1)
        dense_runner.set_inputs(x)
        for runner in runners:
            runner.set_inputs(x)
        times = interleaved_median_seconds(
            [r.interpreter.invoke for r in runners + [dense_runner]],
            repeats=10,
            warmup=2,
            min_total=min_seconds,
        )
        t_dense = times[-1]
        for plan, t in zip(plans, times[:-1]):
            samples.append((name, rows, shape, plan, t, t_dense))
        print(f"  measured {name} at {rows} rows", flush=True)
    return samples


def fit(samples):
    """Non-negative least squares on relative error: ``t ~ op * einsums +
    mac * multiply-adds + element * elements``."""
    from scipy.optimize import nnls

    terms = np.array(
        [
            P.plan_terms(*shape, plan, rows, tree=True)
            for _, rows, shape, plan, _, _ in samples
        ],
        dtype=np.float64,
    )
    times = np.array([s[4] for s in samples])
    scale = np.array([1.0, 1e-10, 1e-9])
    coef, _ = nnls(terms * scale / times[:, None], np.ones(len(times)))
    return P.PlanCosts(*(coef * scale), litert=True)


def report(samples, costs):
    rows = []
    groups = {}
    for s in samples:
        groups.setdefault((s[0], s[1]), []).append(s)
    for (name, n), group in groups.items():
        best = min(group, key=lambda s: s[4])
        model = min(group, key=lambda s: P.plan_cost(*s[2], s[3], n, costs))
        current = P.choose_plan(*group[0][2], batch=n, contraction="auto")
        with P.contraction_scope(P.LITERT):
            chosen = P.choose_plan(*group[0][2], batch=n)
        for s in sorted(group, key=lambda s: s[4]):
            predicted = P.plan_cost(*s[2], s[3], n, costs)
            marks = "".join(
                mark
                for mark, plan in (
                    ("B", best[3]),
                    ("F", model[3]),
                    ("L", chosen),
                    ("T", current),
                )
                if plan == s[3]
            )
            rows.append(
                [
                    name,
                    n,
                    s[3].name,
                    f"{1000 * s[4]:.3f}",
                    f"{1000 * predicted:.3f}",
                    f"{s[5] / s[4]:.2f}x",
                    marks,
                ]
            )
        rows.append(
            [
                name,
                n,
                "dense layer",
                f"{1000 * group[0][5]:.3f}",
                "",
                "1.00x",
                "",
            ]
        )
        t_model = model[4]
        print(
            f"{name} at {n} rows: fitted model's plan {model[3].name} is "
            f"{t_model / best[4]:.2f}x the best ({best[3].name})"
        )
    headers = ["shape", "rows", "plan", "ms", "fitted ms", "vs dense", "mark"]
    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES)
    )
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument(
        "--limit", type=int, default=12, help="plans measured per shape"
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the timings for the test suite (benchmarks/results/)",
    )
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="litert_plans_")
    samples = []
    for name in args.shapes:
        samples += measure(name, args.min_seconds, folder, args.limit)
    if args.save:
        save_records(
            LITERT_RECORDS,
            "litert",
            [s[:5] for s in samples],
            dict(threads=1, min_seconds=args.min_seconds),
        )
        print(f"saved {LITERT_RECORDS}")
    costs = fit(samples)
    print()
    print(
        "fitted LiteRT constants: "
        f"PlanCosts(op={costs.op:.3g}, mac={costs.mac:.3g}, "
        f"element={costs.element:.3g})"
    )
    print(report(samples, costs))
    print(
        "marks: B best measured, F cheapest under the fitted constants, "
        "L chosen by the LiteRT model in contraction.py, T by the TF model."
    )


if __name__ == "__main__":
    main()
