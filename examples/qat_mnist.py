"""Quantization-aware training, pruning and int8 export of a TT network.

A tf_keras network 784 -> TTDense 256 (ReLU) -> 10 is trained on MNIST, then
exported five ways, each checked in the LiteRT interpreter:

* float32 (trained for as many epochs as the QAT network in all);
* post-training int8 (PTQ: ranges calibrated on 500 training images);
* quantization-aware training int8 (QAT: `tfmot.quantization.keras.
  quantize_model`, with keras_tt's config quantizing every contraction
  step, fine-tuned, then converted);
* pruned + QAT int8 (magnitude pruning of the cores and the head to 50%
  sparsity, then QAT with the pruning masks re-applied after every step);
* a dense 784 -> 256 -> 10 baseline, float32 and PTQ int8.

The table gives held-out accuracy of the ``.tflite`` files, their size and
zip-compressed size, and LiteRT latency (batch 1, median, XNNPACK).

Data: the MNIST files in ``../shared/data/mnist`` hold only the
10,000-image test set: the first 8,000 images train, the last 2,000 are
held out (not the 60,000-image training set). ``--quick`` trains on 2,000
and evaluates on 1,000 of them, for a run of under two minutes.

    python examples/qat_mnist.py [--quick] [--out DIR] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras

from keras_tt.datasets import load_mnist
from keras_tt.export._litert import import_litert
from keras_tt.tf_keras import TTDense
from keras_tt.tf_keras import export_tflite
from keras_tt.tf_keras import quantize_model

FULL = {"train": 8000, "held_out": 2000, "epochs": 12, "qat": 3, "prune": 4}
QUICK = {"train": 2000, "held_out": 1000, "epochs": 3, "qat": 1, "prune": 1}
TT_RANK = 8
SPARSITY = 0.5


def build_tt(seed=0):
    tf_keras.utils.set_random_seed(seed)
    return tf_keras.Sequential(
        [
            tf_keras.Input((784,)),
            TTDense(256, TT_RANK, activation="relu", name="tt"),
            tf_keras.layers.Dense(10, name="head"),
        ]
    )


def build_dense(seed=0):
    tf_keras.utils.set_random_seed(seed)
    return tf_keras.Sequential(
        [
            tf_keras.Input((784,)),
            tf_keras.layers.Dense(256, activation="relu", name="fc"),
            tf_keras.layers.Dense(10, name="head"),
        ]
    )


def fit(model, x, y, epochs, lr, callbacks=()):
    model.compile(
        tf_keras.optimizers.Adam(lr),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=64,
        verbose=0,
        callbacks=list(callbacks),
        shuffle=True,
    )
    return model


class KeepZeros(tf_keras.callbacks.Callback):
    """Re-apply pruning masks after every training step (sparse QAT)."""

    def __init__(self, variables):
        super().__init__()
        self.pairs = [
            (v, (v.numpy() != 0).astype(v.dtype.as_numpy_dtype))
            for v in variables
        ]

    def on_train_batch_end(self, batch, logs=None):
        for variable, mask in self.pairs:
            variable.assign(variable * mask)


def litert_eval(path, x, y, repeats):
    """Held-out accuracy and median batch-1 latency (ms) of a file."""
    interpreter_lib = import_litert("interpreter", "Running .tflite files")
    runner = interpreter_lib.Interpreter(model_path=path, num_threads=1)
    detail = runner.get_input_details()[0]
    out = runner.get_output_details()[0]["index"]
    runner.resize_tensor_input(detail["index"], x.shape)
    runner.allocate_tensors()
    runner.set_tensor(detail["index"], x)
    runner.invoke()
    accuracy = float(np.mean(runner.get_tensor(out).argmax(-1) == y))
    runner.resize_tensor_input(detail["index"], (1, x.shape[1]))
    runner.allocate_tensors()
    times = []
    for i in range(repeats):
        runner.set_tensor(detail["index"], x[i % len(x)][None])
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
    return accuracy, 1e3 * float(np.median(times))


def run(out_dir, quick=False, data_path=None):
    plan = QUICK if quick else FULL
    os.makedirs(out_dir, exist_ok=True)
    data = load_mnist(data_path, num_train=8000)
    x_train = data.x_train.reshape(-1, 784).astype("float32") / 255.0
    x_test = data.x_test.reshape(-1, 784).astype("float32") / 255.0
    x_train, y_train = x_train[: plan["train"]], data.y_train[: plan["train"]]
    x_test, y_test = x_test[: plan["held_out"]], data.y_test[: plan["held_out"]]
    calibration = x_train[:500]
    print(
        f"Data: {data.description}; training on {len(x_train):,} images, "
        f"held-out {len(x_test):,}."
    )

    # 1. Float TT network and dense baseline; every variant below gets the
    #    same number of training epochs as the float one it is compared to.
    epochs, extra = plan["epochs"], plan["qat"]
    tt = fit(build_tt(), x_train, y_train, epochs, 2e-3)
    dense = fit(build_dense(), x_train, y_train, epochs + extra, 1e-3)

    # 2. Quantization-aware training from the float TT network: `extra`
    #    epochs of fine-tuning, which the float network gets too (step 4).
    qat = fit(quantize_model(tt), x_train, y_train, extra, 2e-4)

    # 3. Pruning (cores and head) from the float TT network, then QAT that
    #    keeps the zeros.
    sparsity = tfmot.sparsity.keras
    copy = tf_keras.models.clone_model(tt)
    copy.set_weights(tt.get_weights())
    steps = plan["prune"] * (len(x_train) // 64)
    pruned = sparsity.prune_low_magnitude(
        copy,
        pruning_schedule=sparsity.PolynomialDecay(
            0.0,
            SPARSITY,
            begin_step=0,
            end_step=max(1, int(0.75 * steps)),
            frequency=max(1, steps // 20),
        ),
    )
    fit(
        pruned,
        x_train,
        y_train,
        plan["prune"],
        5e-4,
        [sparsity.UpdatePruningStep()],
    )
    stripped = sparsity.strip_pruning(pruned)
    pruned_qat = quantize_model(stripped)
    kernels = [
        w
        for w in pruned_qat.trainable_weights
        if "core_" in w.name or "kernel" in w.name
    ]
    fit(pruned_qat, x_train, y_train, extra, 2e-4, [KeepZeros(kernels)])

    # 4. The float network's own fine-tuning, as long as QAT's.
    fit(tt, x_train, y_train, extra, 2e-4)

    # 5. Export and measure every variant in the same run.
    variants = [
        ("dense float32", dense, None),
        ("dense PTQ int8", dense, "int8"),
        ("TT float32", tt, None),
        ("TT PTQ int8", tt, "int8"),
        ("TT QAT int8", qat, "int8"),
        ("TT pruned+QAT int8", pruned_qat, "int8"),
    ]
    repeats = 200 if quick else 1000
    rows = []
    for name, model, quantization in variants:
        file_name = name.replace(" ", "_").replace("+", "_") + ".tflite"
        export = export_tflite(
            model,
            os.path.join(out_dir, file_name),
            quantization=quantization,
            representative_data=calibration,
            validation_data=x_test[:256],
        )
        accuracy, latency = litert_eval(export.path, x_test, y_test, repeats)
        rows.append(
            {
                "variant": name,
                "file": file_name,
                "accuracy": accuracy,
                "size": export.file_size,
                "zipped": export.zipped_size,
                "latency_ms": latency,
                "int8_only": export.int8_only,
                "ops": export.op_counts,
            }
        )
    zeros = np.mean(
        [np.mean(w.numpy() == 0) for w in kernels if "core_" in w.name]
    )
    result = {
        "data": data.description,
        "train_images": len(x_train),
        "held_out_images": len(x_test),
        "quick": quick,
        "core_sparsity_after_pruned_qat": float(zeros),
        "rows": rows,
    }
    with open(os.path.join(out_dir, "qat_mnist.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(table(result))
    return result


def table(result):
    rows = result["rows"]
    by_name = {r["variant"]: r for r in rows}
    lines = [
        f"MNIST, {result['data']}: trained on {result['train_images']:,} "
        f"images, accuracy on {result['held_out_images']:,} held-out images "
        "(LiteRT, .tflite files)",
        "",
        "| variant | held-out accuracy | .tflite bytes | zipped bytes | "
        "latency (ms, batch 1) | int8 Q..DQ |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        int8 = "yes" if r["int8_only"] else "-"
        lines.append(
            f"| {r['variant']} | {100 * r['accuracy']:.2f}% | {r['size']:,} | "
            f"{r['zipped']:,} | {r['latency_ms']:.4f} | {int8} |"
        )
    float_acc = by_name["TT float32"]["accuracy"]
    qat_acc = by_name["TT QAT int8"]["accuracy"]
    ptq_acc = by_name["TT PTQ int8"]["accuracy"]
    lines += [
        "",
        f"QAT - float: {100 * (qat_acc - float_acc):+.2f} points "
        f"({'within' if qat_acc >= float_acc - 0.003 else 'NOT within'} 0.3); "
        f"QAT - PTQ: {100 * (qat_acc - ptq_acc):+.2f} points "
        f"({'not below' if qat_acc >= ptq_acc else 'BELOW'} PTQ).",
        "Core sparsity after pruned+QAT: "
        f"{100 * result['core_sparsity_after_pruned_qat']:.0f}%.",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="qat_mnist_out")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    run(args.out, quick=args.quick, data_path=args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
