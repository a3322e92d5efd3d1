"""The cost models pick plans that were measured fast.

`benchmarks/fit_plan_costs.py --save` (TensorFlow graph mode) and
`benchmarks/litert_plans.py --save` (LiteRT, XNNPACK, one thread) time
every candidate plan of several TT layers, in alternation, and write the
medians to ``benchmarks/results/``. These tests time nothing: they check
that, for every recorded shape and batch, the plan `choose_plan` picks
today (searching every plan, not only the recorded ones) is one that was
measured, and that its measured time is within 10% of the fastest
candidate's. A cost-model change that picks a slower plan, or a plan
nobody measured, fails here until the plans are measured again.
"""

import os
import sys

import pytest

from keras_tt import contraction_plans as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.plan_records import LITERT_RECORDS  # noqa: E402
from benchmarks.plan_records import TENSORFLOW_RECORDS  # noqa: E402
from benchmarks.plan_records import load_records  # noqa: E402

TOLERANCE = 1.10


def _cases(path):
    return [
        pytest.param(case, id=f"{case['name']}-batch{case['batch']}")
        for case in load_records(path)
    ]


def _check_choice(case, chosen):
    times = case["times"]
    best = min(times, key=times.get)
    assert chosen in times, (
        f"{case['name']} at batch {case['batch']}: the cost model picks "
        f"{chosen.name!r}, which was not measured; measured: "
        f"{sorted(p.name for p in times)}. Measure again with --save."
    )
    ratio = times[chosen] / times[best]
    assert ratio <= TOLERANCE, (
        f"{case['name']} at batch {case['batch']}: the cost model picks "
        f"{chosen.name!r} ({1e3 * times[chosen]:.3f} ms), {ratio:.2f}x the "
        f"fastest measured plan {best.name!r} ({1e3 * times[best]:.3f} ms)"
    )


@pytest.mark.parametrize("case", _cases(TENSORFLOW_RECORDS))
def test_tensorflow_plan_is_within_10_percent_of_the_measured_best(case):
    chosen = P.choose_plan(
        case["in_modes"], case["out_modes"], case["ranks"], batch=case["batch"]
    )
    _check_choice(case, chosen)


@pytest.mark.parametrize("case", _cases(LITERT_RECORDS))
def test_litert_plan_is_within_10_percent_of_the_measured_best(case):
    with P.contraction_scope(P.LITERT):
        chosen = P.choose_plan(
            case["in_modes"],
            case["out_modes"],
            case["ranks"],
            batch=case["batch"],
        )
    _check_choice(case, chosen)


def test_records_cover_both_runtimes_at_one_row_and_many():
    for path in (TENSORFLOW_RECORDS, LITERT_RECORDS):
        cases = load_records(path)
        batches = {case["batch"] for case in cases}
        assert 1 in batches and max(batches) >= 32, (path, batches)
        for case in cases:
            # A check against one candidate would check nothing.
            assert len(case["times"]) >= 3, (path, case["name"])


def test_a_slower_choice_fails_the_check():
    # The check itself: a plan measured 20% slower than the best is refused.
    fast = P.TTPlan(((0, 1), (1, 2)), P.LEFT_TO_RIGHT)
    slow = P.TTPlan(((0, 1), (1, 2)), P.RIGHT_TO_LEFT)
    case = dict(name="toy", batch=1, times={fast: 1.0, slow: 1.2})
    _check_choice(case, fast)
    with pytest.raises(AssertionError, match="1.20x the fastest"):
        _check_choice(case, slow)
    with pytest.raises(AssertionError, match="not measured"):
        _check_choice(case, P.TTPlan(((0, 2),)))
