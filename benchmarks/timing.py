"""Timing helpers shared by the benchmarks: medians of many repetitions."""

from __future__ import annotations

import glob
import os
import statistics
import time

import numpy as np


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
    fns,
    repeats: int = 50,
    warmup: int = 5,
    min_total: float = 0.0,
    before=None,
):
    """Median wall times of several functions, timed in alternation.

    Each round calls every function once, so a change in machine load hits
    all of them alike and their ratios stay meaningful on a shared machine.
    ``before``, if given, is called before every call of every function,
    outside the timed span (a `CacheEvictor`, say). Returns one median per
    function, in order.
    """
    for _ in range(warmup):
        for fn in fns:
            if before is not None:
                before()
            fn()
    samples = [[] for _ in fns]
    start = time.perf_counter()
    while len(samples[0]) < repeats or time.perf_counter() - start < min_total:
        for fn, times in zip(fns, samples):
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return [statistics.median(times) for times in samples]


def largest_cache_bytes(root="/sys/devices/system/cpu/cpu0/cache"):
    """Size of the CPU's largest cache in bytes, read from Linux's sysfs.

    ``None`` where ``root`` is missing or names no size (another OS).
    Sizes are written as ``32768K``, ``2M`` or a plain number of bytes.
    """
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    sizes = []
    for size_file in glob.glob(os.path.join(root, "index*", "size")):
        with open(size_file) as f:
            text = f.read().strip()
        if not text:
            continue
        scale = units.get(text[-1].upper(), 1)
        digits = text[:-1] if text[-1].upper() in units else text
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None


class CacheEvictor:
    """A callable that pushes the timed program's data out of the caches.

    Each call adds one to every element of a buffer ``2x`` the largest CPU
    cache (64 MiB where that size cannot be read), so the weights a model
    read in its previous run are gone from the last-level cache when it
    runs next. This is how a large model runs a decoding step: its blocks'
    weights together far exceed the cache, so each block reads its own
    from memory. Pass it as ``before`` to `interleaved_median_seconds`.

    Args:
        nbytes: buffer size in bytes; default twice `largest_cache_bytes`.
    """

    def __init__(self, nbytes=None):
        if nbytes is None:
            nbytes = self.default_nbytes()
        if int(nbytes) < 8:
            raise ValueError(
                f"Expected `nbytes` to be at least 8, received: {nbytes}"
            )
        self.nbytes = int(nbytes)
        self._buffer = np.zeros(self.nbytes // 8, dtype=np.float64)

    @staticmethod
    def default_nbytes():
        """Twice the largest CPU cache, or 64 MiB where it cannot be read."""
        cache = largest_cache_bytes()
        return 2 * cache if cache else 64 * 2**20

    def __call__(self):
        np.add(self._buffer, 1.0, out=self._buffer)


def format_table(headers, rows) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
