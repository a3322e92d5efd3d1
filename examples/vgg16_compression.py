"""Compress VGG-16's fully-connected layers as in the paper, with `tensorize`.

Builds ``keras.applications.VGG16(weights=None)`` (no download: the figures
here are parameter counts, which do not depend on the weights), and replaces
``fc1`` (the paper's fc6, 25088 x 4096) and ``fc2`` (fc7, 4096 x 4096) by
TT-layers through `keras_tt.tensorize`, with the paper's modes
25088 = 2*7*8*8*7*4 and 4096 = 4^6. Prints each pass's report and a table
against Novikov et al. (2015), whose ratios are truncated to integers.

    python examples/vgg16_compression.py

With random weights the TT-SVD error is close to 1 (a random matrix has no
low-rank structure); with ImageNet weights it is what fine-tuning starts
from.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

import keras_tt

FC1_MODES = ((2, 7, 8, 8, 7, 4), (4, 4, 4, 4, 4, 4))
FC2_MODES = ((4, 4, 4, 4, 4, 4), (4, 4, 4, 4, 4, 4))

# (configuration, layers, rank) -> the paper's layer and whole-model figures.
PAPER = {
    "fc1 rank 4": (50_972, 3.9),
    "fc1 rank 2": (194_622, None),
    "fc1 rank 1": (713_614, None),
    "fc1+fc2 rank 4": (37_732, 7.4),
}


def _settings(modes, rank):
    return {"tt_rank": rank, "in_modes": modes[0], "out_modes": modes[1]}


def run(verbose: int = 1) -> list[dict]:
    """Run the four compressions; return one dict per configuration.

    Each dict has ``config``, ``tt_params``, ``kernel_compression``,
    ``model_compression``, ``paper_kernel``, ``paper_model``, ``seconds``.
    """
    model = keras.applications.VGG16(weights=None)
    configs = [
        ("fc1 rank 4", {"fc1": _settings(FC1_MODES, 4)}),
        ("fc1 rank 2", {"fc1": _settings(FC1_MODES, 2)}),
        ("fc1 rank 1", {"fc1": _settings(FC1_MODES, 1)}),
        (
            "fc1+fc2 rank 4",
            {"fc1": _settings(FC1_MODES, 4), "fc2": _settings(FC2_MODES, 4)},
        ),
    ]
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3))
    image = image.astype("float32")
    rows = []
    for name, layers in configs:
        if verbose:
            print(f"\n== {name} ==")
        start = time.perf_counter()
        tt_model = keras_tt.tensorize(model, layers=layers, verbose=verbose)
        seconds = time.perf_counter() - start
        prediction = tt_model(image)
        assert prediction.shape == (1, 1000)
        report = tt_model.tensorize_report
        paper_kernel, paper_model = PAPER[name]
        rows.append(
            {
                "config": name,
                "tt_params": report.kernel_params_after,
                "kernel_compression": report.kernel_compression,
                "model_compression": report.compression,
                "paper_kernel": paper_kernel,
                "paper_model": paper_model,
                "seconds": seconds,
            }
        )
        del tt_model
    return rows


def format_rows(rows) -> str:
    """The comparison with the paper as a Markdown table."""
    lines = [
        "| configuration | TT params | layer(s) compression: ours (paper) "
        "| whole VGG-16: ours (paper) | pass time |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        paper_model = (
            "-" if r["paper_model"] is None else f"{r['paper_model']}x"
        )
        lines.append(
            f"| {r['config']} | {r['tt_params']:,} | "
            f"{int(r['kernel_compression']):,}x ({r['paper_kernel']:,}x) | "
            f"{r['model_compression']:.2f}x ({paper_model}) | "
            f"{r['seconds']:.1f} s |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1])
    args = parser.parse_args(argv)
    rows = run(verbose=args.verbose)
    print(
        "\nVGG-16 (keras.applications, weights=None): parameter counts "
        "against Novikov et al. 2015 (ratios truncated as in the paper)"
    )
    print(format_rows(rows))
    for r in rows:
        assert int(r["kernel_compression"]) == r["paper_kernel"], r
        if r["paper_model"] is not None:
            assert round(r["model_compression"], 1) == r["paper_model"], r
    print("All figures match the paper.")


if __name__ == "__main__":
    main()
