"""Time and peak memory of `keras_tt.tt_svd` on VGG-16's fc6 kernel size.

Decomposes a random 25088 x 4096 matrix (100 M entries; 392 MiB in float32)
with the paper's modes 25088 = 2*7*8*8*7*4, 4096 = 4^6 at TT-rank 4. Each
configuration runs in a fresh subprocess, whose peak resident memory
(``resource.getrusage(...).ru_maxrss``) is compared with the memory in use
once the matrix exists: the difference is what TT-SVD itself needs, reported
as a multiple of the matrix's size.

    python benchmarks/tt_svd_memory.py                      # float32, auto
    python benchmarks/tt_svd_memory.py --methods auto svd \
        --dtypes float32 float64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

IN_MODES = (2, 7, 8, 8, 7, 4)
OUT_MODES = (4, 4, 4, 4, 4, 4)

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from keras_tt.decomposition import tt_svd

in_modes, out_modes, rank, dtype, method = json.loads(sys.argv[1])
rows, cols = int(np.prod(in_modes)), int(np.prod(out_modes))
matrix = np.random.default_rng(0).standard_normal((rows, cols), dtype=dtype)
before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = tt_svd(matrix, in_modes, out_modes, max_rank=rank, method=method)
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "seconds": seconds,
    "matrix_mb": matrix.nbytes / 2**20,
    "rss_with_matrix_mb": before_kb / 1024,
    "peak_rss_mb": peak_kb / 1024,
    "ranks": result.ranks,
    "rel_error": result.rel_error,
}))
"""


def run_one(rank: int, dtype: str, method: str) -> dict:
    """Run one decomposition in a fresh Python process; return its figures."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    args = json.dumps([IN_MODES, OUT_MODES, rank, dtype, method])
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--dtypes", nargs="+", default=["float32"])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["auto"],
        choices=["auto", "svd", "gram"],
    )
    args = parser.parse_args(argv)
    print(
        f"tt_svd of a random 25088 x 4096 matrix, modes {IN_MODES} x "
        f"{OUT_MODES}, max_rank={args.rank}; each run in a fresh process."
    )
    header = (
        f"{'dtype':8} {'method':6} {'time (s)':>9} {'matrix MB':>10} "
        f"{'RSS with matrix':>16} {'peak RSS':>9} {'extra / matrix':>15} "
        f"{'rel. error':>10}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for dtype in args.dtypes:
        for method in args.methods:
            r = run_one(args.rank, dtype, method)
            extra = (r["peak_rss_mb"] - r["rss_with_matrix_mb"]) / r[
                "matrix_mb"
            ]
            r.update(dtype=dtype, method=method, extra_over_matrix=extra)
            results.append(r)
            print(
                f"{dtype:8} {method:6} {r['seconds']:9.1f} "
                f"{r['matrix_mb']:10.0f} {r['rss_with_matrix_mb']:14.0f}MB "
                f"{r['peak_rss_mb']:7.0f}MB {extra:14.2f}x "
                f"{r['rel_error']:10.4f}"
            )
    return results


if __name__ == "__main__":
    main()
