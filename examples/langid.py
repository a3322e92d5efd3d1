"""Word-level language identification with a TT embedding table.

On-device language identifiers (CLD3 and fastText, for example) read a
word as a bag of hashed character n-grams: every n-gram of 1 to 4
characters of ``<word>`` (``<`` and ``>`` mark its boundaries) is hashed
into one of a fixed number of buckets, each bucket has a row in an
embedding table, and a small classifier reads the mean of the rows. The
table holds almost all of the parameters: here ``2^18 x 64``, 16.8 M of the
model's 16.8 M. This script stores it as a TT-matrix
(`keras_tt.TTEmbedding`) and measures what that costs in accuracy:

* (a) a dense `keras.layers.Embedding` (the baseline);
* (b) `keras_tt.TTEmbedding` at several TT-ranks, trained from scratch;
* (c) the trained dense model compressed by `keras_tt.tensorize` (TT-SVD of
  its table) and fine-tuned.

TT layout. The ``2^18 x 64`` table is two cores, vocabulary modes
``512 x 512`` and embedding modes ``8 x 8`` (`tt_modes`), so a TT-rank
``r`` holds ``2 * 512 * 8 * r = 8,192 r`` parameters: 128x fewer than the
dense table at ``r = 16``, 102x at ``r = 20``. A lookup then costs one
``(8, r) @ (r, 8)`` product. Three cores (``64^3 x 4^3``) at rank 16 (73,728
parameters) validated worse (75.8% against 77.8% after one epoch on 36,000
words) and trained 4.6x slower per epoch on CPU; the library's default
modes (six cores of ``8 x 2``) 11x slower.

Data: the word-level language identification set in
``../shared/data/langid`` (160,000 training and 40,000 test words, 10
languages, from Debian's spelling word lists). 16,000 of the training words
are held out for validation: every choice (learning rates, the layout above,
the epoch whose weights are kept) is made on them; the test words are used
once, for the reported accuracy.

The hash is CRC-32 (`zlib.crc32` of the UTF-8 bytes), which is stable across
processes and platforms, unlike Python's salted ``hash()``; bucket 0 is
reserved for padding (``mask_zero=True``), so an n-gram goes to bucket
``1 + crc32 % (buckets - 1)``. A word is at most ``MAX_NGRAMS`` ids
(n-grams of the longest words beyond that are dropped, 4-grams first).

Every model is exported with `keras_tt.export_tflite` to float32 and to int8
LiteRT files (integer id inputs) and run on the whole test set in the LiteRT
interpreter, to report its accuracy there and how often it picks the same
language as Keras.

Outputs (in ``--out``, default ``examples/results``; ``--quick`` writes
``langid_quick.*`` so it never overwrites the full results):

* ``langid.md``: settings and the Markdown table;
* ``langid.csv``: the same table, one row per model;
* ``langid.png``: test accuracy against table parameters and int8 file size.

Usage::

    python examples/langid.py            # full run, ~20 min on 2 CPU cores
    python examples/langid.py --quick --out /tmp/langid_quick   # < 2 min
    python examples/langid.py --data ../shared/data/langid --out results
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tt  # noqa: E402
from keras_tt.datasets import load_langid  # noqa: E402

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "langid"
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results"

NGRAM_SIZES = (1, 2, 3, 4)
MAX_NGRAMS = 96  # every n-gram of words up to 24 characters
EMBED_DIM = 64
HIDDEN_UNITS = 64
BATCH_SIZE = 256
# Adam's rates, chosen on the validation words. TT tables: on a subset
# (36,000 / 4,000 words, 2 epochs) 1e-2 beat 3e-3 and 3e-2. The dense table:
# on the full split it peaks at 90.4% with 3e-3 (epoch 2) and at 89.9% with
# 1e-2 (epoch 1, then it overfits). Fine-tuning after `tensorize` tries
# every rate of FINETUNE_RATES and keeps the best on validation.
LEARNING_RATES = {"dense": 3e-3, "tt": 1e-2}
FINETUNE_RATES = (3e-3, 1e-2)
NUM_VAL = 16_000
SEED = 0

FULL = dict(
    num_buckets=2**18,
    num_train=None,
    num_test=None,
    dense_epochs=3,
    epochs=5,
    tt_ranks=(4, 8, 16, 20),
    small_buckets=(2**9, 2**11),
    tensorize_rank=20,
    finetune_epochs=3,
)
QUICK = dict(
    num_buckets=2**14,
    num_train=16_000,
    num_test=4_000,
    dense_epochs=1,
    epochs=1,
    tt_ranks=(8,),
    small_buckets=(2**8,),
    tensorize_rank=8,
    finetune_epochs=1,
)
QUICK_NUM_VAL = 2_000
NUM_CALIBRATION = 500
NUM_EXPORT_CHECK = 1_000


# ----------------------------------------------------------------------- data


def load_data(path=None, num_train=None, num_test=None):
    """The langid set (`keras_tt.datasets.load_langid`), or a clear error.

    Without ``path``, the folder beside this checkout is tried first, then
    the places `load_langid` searches.
    """
    if path is None and DEFAULT_DATA.exists():
        path = DEFAULT_DATA
    return load_langid(path, num_train=num_train, num_test=num_test)


def char_ngrams(word: str, sizes=NGRAM_SIZES) -> list:
    """The n-grams of ``<word>``, shortest first, without the lone markers.

    >>> char_ngrams("ab", sizes=(1, 2, 3))
    ['a', 'b', '<a', 'ab', 'b>', '<ab', 'ab>']
    """
    marked = f"<{word}>"
    grams = []
    for n in sizes:
        for start in range(len(marked) - n + 1):
            gram = marked[start : start + n]
            if gram not in ("<", ">"):
                grams.append(gram)
    return grams


def bucket(gram: str, num_buckets: int) -> int:
    """The id of an n-gram: ``1 + crc32(utf-8) % (num_buckets - 1)``.

    >>> bucket("ab", 2**18) == 1 + zlib.crc32(b"ab") % (2**18 - 1)
    True
    """
    return 1 + zlib.crc32(gram.encode("utf-8")) % (num_buckets - 1)


def encode_words(
    words, num_buckets: int, max_ngrams: int = MAX_NGRAMS
) -> np.ndarray:
    """Bucket ids ``(len(words), max_ngrams)``, int32, padded with 0."""
    ids = np.zeros((len(words), max_ngrams), np.int32)
    cache = {}
    for row, word in enumerate(words):
        grams = char_ngrams(word)[:max_ngrams]
        for col, gram in enumerate(grams):
            value = cache.get(gram)
            if value is None:
                value = cache[gram] = bucket(gram, num_buckets)
            ids[row, col] = value
    return ids


@dataclasses.dataclass
class Splits:
    """Encoded ids and labels for training, validation and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    languages: tuple
    truncated: int  # words with more than MAX_NGRAMS n-grams


def prepare(data, num_buckets: int, num_val: int = NUM_VAL) -> Splits:
    """Encode the words; hold out the last ``num_val`` training words.

    The files are shuffled, so the held-out words are a random subset.
    """
    train_words, test_words = list(data.x_train), list(data.x_test)
    x = encode_words(train_words, num_buckets)
    x_test = encode_words(test_words, num_buckets)
    truncated = sum(
        len(char_ngrams(w)) > MAX_NGRAMS for w in train_words + test_words
    )
    cut = len(x) - num_val
    return Splits(
        x[:cut],
        data.y_train[:cut],
        x[cut:],
        data.y_train[cut:],
        x_test,
        data.y_test,
        tuple(data.languages),
        truncated,
    )


# --------------------------------------------------------------------- models


def build_model(table: keras.layers.Layer, num_classes: int) -> keras.Model:
    """ids -> table -> masked mean -> Dense(64, ReLU) -> logits."""
    ids = keras.Input((MAX_NGRAMS,), dtype="int32", name="ids")
    x = table(ids)
    x = keras.layers.GlobalAveragePooling1D(name="mean")(x)
    x = keras.layers.Dense(HIDDEN_UNITS, activation="relu", name="hidden")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(ids, logits, name="langid")


def dense_table(num_buckets: int) -> keras.layers.Layer:
    return keras.layers.Embedding(
        num_buckets, EMBED_DIM, mask_zero=True, name="table"
    )


def tt_modes(num_buckets: int):
    """Two cores: ``(sqrt(buckets), sqrt(buckets)) x (8, 8)``.

    >>> tt_modes(2**18)
    ((512, 512), (8, 8))
    """
    side = math.isqrt(num_buckets)
    if side * side != num_buckets:
        raise ValueError(
            "Received an invalid value for `num_buckets`, expected a "
            f"perfect square. Received: num_buckets={num_buckets}"
        )
    return (side, side), (8, EMBED_DIM // 8)


def tt_table(num_buckets: int, rank: int) -> keras.layers.Layer:
    vocab_modes, embed_modes = tt_modes(num_buckets)
    return keras_tt.TTEmbedding(
        num_buckets,
        EMBED_DIM,
        tt_rank=rank,
        vocab_modes=vocab_modes,
        embed_modes=embed_modes,
        mask_zero=True,
        name="table",
    )


def compile_model(model: keras.Model, learning_rate: float):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def accuracy(model: keras.Model, x, y) -> float:
    logits = model.predict(x, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def train(model: keras.Model, splits: Splits, epochs: int, log):
    """Train ``epochs`` epochs; keep the weights of the best validation epoch.

    Returns (best validation accuracy, its epoch, seconds per epoch).
    """
    best, best_epoch, best_weights = -1.0, 0, None
    seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.fit(
            splits.x_train,
            splits.y_train,
            batch_size=BATCH_SIZE,
            epochs=1,
            shuffle=True,
            verbose=0,
        )
        seconds.append(time.perf_counter() - start)
        val = accuracy(model, splits.x_val, splits.y_val)
        log(f"    epoch {epoch}: validation {100 * val:.2f}%")
        if val > best:
            best, best_epoch = val, epoch
            best_weights = [w.numpy() for w in model.weights]
    for variable, value in zip(model.weights, best_weights):
        variable.assign(value)
    return best, best_epoch, float(np.mean(seconds))


def table_params(model: keras.Model) -> int:
    return int(model.get_layer("table").count_params())


def table_layout(model: keras.Model) -> dict:
    """Modes and TT-ranks of a TT table as ``"8x8x4"`` strings; else empty."""
    table = model.get_layer("table")
    if not hasattr(table, "tt_ranks"):
        return dict(vocab_modes="", embed_modes="", tt_ranks="")
    return dict(
        vocab_modes="x".join(map(str, table.vocab_modes)),
        embed_modes="x".join(map(str, table.embed_modes)),
        tt_ranks="-".join(map(str, table.tt_ranks)),
    )


# --------------------------------------------------------------------- export


def export_and_check(model: keras.Model, splits: Splits, folder, stem, log):
    """Export float32 and int8; run both on the test set in LiteRT.

    Returns a dict of file sizes, LiteRT test accuracies and agreement
    (fraction of test words where LiteRT and Keras pick the same language).
    """
    from keras_tt.export import evaluate_tflite

    keras_pred = np.argmax(
        model.predict(splits.x_test, batch_size=1024, verbose=0), -1
    )
    calibration = splits.x_train[:NUM_CALIBRATION]
    check = (
        splits.x_val[:NUM_EXPORT_CHECK],
        splits.y_val[:NUM_EXPORT_CHECK],
    )
    result = {}
    for mode, quantization in (("float32", None), ("int8", "int8")):
        path = os.path.join(folder, f"{stem}_{mode}.tflite")
        keras_tt.export_tflite(
            model,
            path,
            quantization=quantization,
            representative_data=calibration,
            validation_data=check,
            verbose=False,
        )
        run = evaluate_tflite(
            path, splits.x_test, splits.y_test, batch_size=512, latency_runs=20
        )
        lite_pred = np.argmax(run["outputs"], -1)
        result[f"{mode}_bytes"] = int(run["file_size"])
        result[f"{mode}_litert_accuracy"] = float(run["accuracy"])
        result[f"{mode}_agreement"] = float(np.mean(lite_pred == keras_pred))
        result[f"{mode}_latency_ms"] = float(run["latency_ms"])
        log(
            f"    {mode}: {run['file_size'] / 2**20:.2f} MiB, LiteRT test "
            f"{100 * run['accuracy']:.2f}%, same prediction as Keras on "
            f"{100 * result[f'{mode}_agreement']:.2f}%"
        )
    return result


# ---------------------------------------------------------------------- study


COLUMNS = (
    "label",
    "kind",
    "rank",
    "buckets",
    "vocab_modes",
    "embed_modes",
    "tt_ranks",
    "table_params",
    "compression",
    "model_params",
    "best_epoch",
    "val_accuracy",
    "test_accuracy",
    "float32_bytes",
    "int8_bytes",
    "float32_litert_accuracy",
    "int8_litert_accuracy",
    "float32_agreement",
    "int8_agreement",
    "val_before_finetune",
    "finetune_rate",
    "epoch_seconds",
)


def run_study(
    data_path=None,
    out_dir=DEFAULT_OUT,
    quick: bool = False,
    log=print,
) -> list:
    """Train, compress, export and evaluate every model; write the outputs."""
    settings = QUICK if quick else FULL
    num_buckets = settings["num_buckets"]
    stem = "langid_quick" if quick else "langid"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    data = load_data(data_path, settings["num_train"], settings["num_test"])
    splits = prepare(data, num_buckets, QUICK_NUM_VAL if quick else NUM_VAL)
    num_classes = len(splits.languages)
    log(
        f"{len(splits.x_train):,} training, {len(splits.x_val):,} validation "
        f"and {len(splits.x_test):,} test words; {num_buckets:,} buckets; "
        f"encoded in {time.perf_counter() - start:.1f} s"
    )

    rows = []
    export_dir = tempfile.mkdtemp(prefix="langid_")

    def finish(model, label, kind, rank, epochs, val, seconds, own=splits):
        test = accuracy(model, own.x_test, own.y_test)
        log(f"  {label}: validation {100 * val:.2f}%, test {100 * test:.2f}%")
        row = dict(
            label=label,
            kind=kind,
            rank=rank,
            table_params=table_params(model),
            model_params=int(model.count_params()),
            best_epoch=epochs,
            val_accuracy=val,
            test_accuracy=test,
            epoch_seconds=seconds,
        )
        row.update(table_layout(model))
        row["compression"] = num_buckets * EMBED_DIM / row["table_params"]
        row.update(
            export_and_check(
                model, own, export_dir, f"{kind}{rank}_{len(rows)}", log
            )
        )
        row["buckets"] = model.get_layer("table").input_dim
        rows.append(row)

    # (a) Dense table.
    log("Dense Embedding")
    keras.utils.set_random_seed(SEED)
    dense = compile_model(
        build_model(dense_table(num_buckets), num_classes),
        LEARNING_RATES["dense"],
    )
    val, epoch, seconds = train(dense, splits, settings["dense_epochs"], log)
    finish(dense, "Dense", "dense", "", epoch, val, seconds)

    # (b) TT tables trained from scratch.
    for rank in settings["tt_ranks"]:
        log(f"TTEmbedding, TT-rank {rank}, from scratch")
        keras.utils.set_random_seed(SEED)
        model = compile_model(
            build_model(tt_table(num_buckets, rank), num_classes),
            LEARNING_RATES["tt"],
        )
        val, epoch, seconds = train(model, splits, settings["epochs"], log)
        finish(model, f"TT r={rank}", "tt", rank, epoch, val, seconds)

    # (c) The trained dense model, tensorized and fine-tuned.
    rank = settings["tensorize_rank"]
    log(f"tensorize(dense), TT-rank {rank}, then fine-tuned")
    keras.utils.set_random_seed(SEED)
    start_svd = time.perf_counter()
    tensorized = keras_tt.tensorize(
        dense,
        tt_rank=rank,
        layers=["table"],
        modes=tt_modes(num_buckets),
        verbose=0,
    )
    before = accuracy(tensorized, splits.x_val, splits.y_val)
    log(
        f"    tensorize took {time.perf_counter() - start_svd:.0f} s; "
        f"validation before fine-tuning {100 * before:.2f}%"
    )
    best = None
    for learning_rate in FINETUNE_RATES:
        log(f"    fine-tuning with Adam {learning_rate:g}")
        keras.utils.set_random_seed(SEED)
        candidate = keras.models.clone_model(tensorized)
        candidate.set_weights(tensorized.get_weights())
        compile_model(candidate, learning_rate)
        val, epoch, seconds = train(
            candidate, splits, settings["finetune_epochs"], log
        )
        if best is None or val > best[1]:
            best = (candidate, val, epoch, seconds, learning_rate)
    compressed, val, epoch, seconds, finetune_rate = best
    finish(
        compressed,
        f"tensorize r={rank} + fine-tune",
        "tensorize",
        rank,
        epoch,
        val,
        seconds,
    )
    rows[-1]["val_before_finetune"] = before
    rows[-1]["finetune_rate"] = finetune_rate

    # (d) Dense tables with fewer buckets, as small as TT tables: the
    # compression that hashing alone gives. Same rate and epochs as the TT
    # tables (not tuned separately).
    for buckets in settings["small_buckets"]:
        log(f"Dense Embedding, {buckets:,} buckets")
        small = prepare(data, buckets, len(splits.x_val))
        keras.utils.set_random_seed(SEED)
        model = compile_model(
            build_model(dense_table(buckets), num_classes),
            LEARNING_RATES["tt"],
        )
        val, epoch, seconds = train(model, small, settings["epochs"], log)
        finish(
            model,
            f"Dense, {buckets:,} buckets",
            "hashing",
            "",
            epoch,
            val,
            seconds,
            own=small,
        )

    elapsed = time.perf_counter() - start
    write_outputs(rows, splits, settings, out_dir, stem, elapsed)
    log(f"Wrote {stem}.md, {stem}.csv, {stem}.png to {out_dir}")
    return rows


# -------------------------------------------------------------------- outputs


def _pct(x) -> str:
    return f"{100 * x:.2f}"


def _mib(n) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def write_outputs(rows, splits, settings, out_dir, stem, elapsed):
    with open(out_dir / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    write_markdown(rows, splits, settings, out_dir, stem, elapsed)
    write_plot(rows, out_dir / f"{stem}.png")


def write_markdown(rows, splits, settings, out_dir, stem, elapsed):
    dense = rows[0]
    lines = [
        "# Word-level language identification: dense vs TT embedding table",
        "",
        f"Data: langid, {len(splits.x_train):,} training / "
        f"{len(splits.x_val):,} validation words (held out from the "
        f"training file) / {len(splits.x_test):,} test words, "
        f"{len(splits.languages)} languages ({', '.join(splits.languages)}); "
        "chance 10%.",
        f"Model: character 1-4-grams of `<word>`, CRC-32 hashed into "
        f"{settings['num_buckets']:,} buckets (0 = padding), at most "
        f"{MAX_NGRAMS} per word ({splits.truncated} words truncated), "
        f"table width {EMBED_DIM}, masked mean, Dense({HIDDEN_UNITS}, ReLU), "
        f"Dense({len(splits.languages)}).",
        f"Training: Adam, learning rate {LEARNING_RATES['dense']:g} for "
        f"the dense table and {LEARNING_RATES['tt']:g} for TT tables "
        f"(chosen on validation), batch {BATCH_SIZE}, "
        f"{settings['dense_epochs']} epochs (dense) and "
        f"{settings['epochs']} (TT) from scratch, "
        f"{settings['finetune_epochs']} of fine-tuning after `tensorize`; "
        "the weights of the best validation epoch are kept; test accuracy "
        "measured once. 'Dense, N buckets': the same model hashed into "
        "fewer buckets, as many parameters as a TT table (the compression "
        "hashing alone gives), trained with the TT tables' rate and epochs "
        "(not tuned separately). CPU, seed "
        f"{SEED}; whole run {elapsed / 60:.1f} min.",
        "LiteRT: `keras_tt.export_tflite` (builtin ops only, integer id "
        "input), run on every test word in the LiteRT interpreter; "
        "'same as Keras' is the fraction of test words where the file and "
        "the Keras model pick the same language.",
        "",
        "| table | table params | compression | model params | "
        "val acc % | test acc % | test acc vs Dense | float32 .tflite | "
        "int8 .tflite | LiteRT int8 test acc % | int8 same as Keras % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        delta = 100 * (row["test_accuracy"] - dense["test_accuracy"])
        lines.append(
            f"| {row['label']} | {row['table_params']:,} | "
            f"{row['compression']:,.0f}x | {row['model_params']:,} | "
            f"{_pct(row['val_accuracy'])} | {_pct(row['test_accuracy'])} | "
            f"{delta:+.2f} | {_mib(row['float32_bytes'])} | "
            f"{_mib(row['int8_bytes'])} | "
            f"{_pct(row['int8_litert_accuracy'])} | "
            f"{_pct(row['int8_agreement'])} |"
        )
    last = next(r for r in rows if r["kind"] == "tensorize")
    if "val_before_finetune" in last:
        lines += [
            "",
            f"`tensorize` at TT-rank {last['rank']}: validation accuracy "
            f"{_pct(last['val_before_finetune'])}% right after the TT-SVD "
            f"of the trained table, {_pct(last['val_accuracy'])}% after "
            f"fine-tuning (Adam {last['finetune_rate']:g}, the better of "
            f"{', '.join(f'{r:g}' for r in FINETUNE_RATES)} on validation).",
        ]
    lines += [
        "",
        "Float32 LiteRT files match Keras within 1e-5 relative error "
        "(checked by the export); their test accuracies: "
        + ", ".join(
            f"{r['label']} {_pct(r['float32_litert_accuracy'])}%" for r in rows
        )
        + ".",
        "",
        f"![test accuracy against table parameters]({stem}.png)",
        "",
    ]
    (out_dir / f"{stem}.md").write_text("\n".join(lines), encoding="utf-8")


def write_plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {
        "dense": ("s", "black", "Dense Embedding"),
        "tt": ("o", "tab:blue", "TTEmbedding, from scratch"),
        "tensorize": ("D", "tab:orange", "tensorize + fine-tune"),
        "hashing": ("v", "tab:green", "Dense, fewer buckets"),
    }
    offsets = {"tensorize": (6, 4), "hashing": (6, 4)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, xlabel in (
        (axes[0], "table_params", "embedding table parameters"),
        (axes[1], "int8_bytes", "int8 .tflite file size (bytes)"),
    ):
        for kind, (marker, color, name) in styles.items():
            chosen = [r for r in rows if r["kind"] == kind]
            if not chosen:
                continue
            ax.plot(
                [r[key] for r in chosen],
                [100 * r["test_accuracy"] for r in chosen],
                marker=marker,
                color=color,
                linestyle="-" if kind == "tt" else "none",
                label=name,
            )
            for i, r in enumerate(chosen):
                offset = offsets.get(kind, (5, -12))
                if kind == "tt" and i == len(chosen) - 2:
                    offset = (-30, 5)  # clear of the next rank's label
                note = f"r={r['rank']}" if r["rank"] != "" else ""
                if kind == "hashing":
                    note = f"{r['buckets']:,} rows"
                if note:
                    ax.annotate(
                        note,
                        (r[key], 100 * r["test_accuracy"]),
                        textcoords="offset points",
                        xytext=offset,
                        fontsize=8,
                    )
        if key == "table_params":
            ax.axvline(
                rows[0]["table_params"] / 100,
                color="tab:red",
                linestyle="--",
                linewidth=1,
            )
        dense_acc = 100 * rows[0]["test_accuracy"]
        ax.axhline(dense_acc, color="grey", linestyle=":", linewidth=1)
        ax.axhline(dense_acc - 1, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy %")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title(
        "accuracy vs table size\n(dotted: Dense; grey dashed: Dense - 1 point; "
        "red: 100x smaller)",
        fontsize=10,
    )
    axes[1].set_title("accuracy vs int8 LiteRT file")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------ CLI


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        default=None,
        help="folder with train.tsv.gz and test.tsv.gz "
        "(default: ../shared/data/langid)",
    )
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help="output folder (default: examples/results)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 16,000 words, 2^14 buckets, 1 epoch; writes "
        "langid_quick.*",
    )
    args = parser.parse_args(argv)
    run_study(args.data, args.out, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
