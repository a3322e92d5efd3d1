"""Measured times of contraction plans, saved for the cost-model tests.

`benchmarks/fit_plan_costs.py --save` (TensorFlow) and
`benchmarks/litert_plans.py --save` (LiteRT) write, for every layer shape
and batch they time, each candidate plan with its median time. The test
suite (`tests/test_plan_costs.py`) reads these files and checks, without
timing anything itself, that the plan `keras_tt.contraction_plans.
choose_plan` picks for each recorded shape was measured within 10% of the
fastest candidate. A change of the cost model that picks a slower plan, or
a plan that was never measured, fails those tests until the plans are
measured again.
"""

from __future__ import annotations

import json
import os
import platform

from keras_tt import contraction_plans as P

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
TENSORFLOW_RECORDS = os.path.join(RESULTS, "plan_times_tensorflow.json")
LITERT_RECORDS = os.path.join(RESULTS, "plan_times_litert.json")


def save_records(path, runtime, samples, settings):
    """Write ``samples`` ``(name, batch, (in_modes, out_modes, ranks), plan,
    seconds)`` grouped by shape and batch, with the run's settings."""
    cases = {}
    for name, batch, shape, plan, seconds in samples:
        key = (name, batch)
        if key not in cases:
            in_modes, out_modes, ranks = shape
            cases[key] = dict(
                name=name,
                batch=batch,
                in_modes=list(in_modes),
                out_modes=list(out_modes),
                ranks=list(ranks),
                plans=[],
            )
        cases[key]["plans"].append(
            dict(
                groups=[list(g) for g in plan.groups],
                direction=plan.direction,
                seconds=seconds,
            )
        )
    record = dict(
        runtime=runtime,
        settings=settings,
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.platform()}",
        cases=list(cases.values()),
    )
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def load_records(path):
    """The cases of a saved file: dicts with ``name``, ``batch``,
    ``in_modes``, ``out_modes``, ``ranks`` and ``times``, a
    ``{TTPlan: seconds}`` dict."""
    with open(path) as f:
        record = json.load(f)
    cases = []
    for case in record["cases"]:
        times = {
            P.TTPlan(tuple(tuple(g) for g in p["groups"]), p["direction"]): p[
                "seconds"
            ]
            for p in case["plans"]
        }
        cases.append(
            dict(
                name=case["name"],
                batch=case["batch"],
                in_modes=tuple(case["in_modes"]),
                out_modes=tuple(case["out_modes"]),
                ranks=tuple(case["ranks"]),
                times=times,
            )
        )
    return cases
