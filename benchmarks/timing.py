"""Timing helpers shared by the benchmarks: medians of many repetitions."""

from __future__ import annotations

import statistics
import time


def median_seconds(
    fn, repeats: int = 50, warmup: int = 5, min_total: float = 0.0
):
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup``.

    ``fn`` must block until its result is ready (call ``.numpy()`` on a
    TensorFlow result). With ``min_total`` > 0, repetitions continue until
    that many seconds have been spent, so fast functions get more samples.
    """
    for _ in range(warmup):
        fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < repeats or time.perf_counter() - start < min_total:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def interleaved_median_seconds(
    fns, repeats: int = 50, warmup: int = 5, min_total: float = 0.0
):
    """Median wall times of several functions, timed in alternation.

    Each round calls every function once, so a change in machine load hits
    all of them alike and their ratios stay meaningful on a shared machine.
    Returns one median per function, in order.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [[] for _ in fns]
    start = time.perf_counter()
    while len(samples[0]) < repeats or time.perf_counter() - start < min_total:
        for fn, times in zip(fns, samples):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return [statistics.median(times) for times in samples]


def format_table(headers, rows) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
