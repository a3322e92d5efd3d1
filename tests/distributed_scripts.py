"""Scripts that `test_distributed.py` runs in their own processes.

TensorFlow fixes its devices and cluster when it starts, so each
distribution strategy runs in a fresh interpreter: ``python
distributed_scripts.py mirrored OUT.npz`` or ``... worker INDEX PORTS OUT``.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 5


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 24)).astype("float32")
    y = (x @ rng.normal(size=(24, 6))).astype("float32")
    return x, y


def _model():
    import keras

    import keras_tt

    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((24,)),
            keras_tt.TTDense(12, 3, in_modes=(4, 6), activation="tanh"),
            keras_tt.TTDense(6, 2, in_modes=(3, 4)),
        ]
    )


def _weights(model):
    return {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}


def mirrored(out):
    """``fit`` on one device, then under MirroredStrategy on two."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras

    x, y = _data()
    results = {"initial": _weights(_model())}
    for name in ("single", "mirrored"):
        if name == "mirrored":
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        else:
            strategy = tf.distribute.get_strategy()
        with strategy.scope():
            model = _model()
            model.compile(keras.optimizers.SGD(0.05), "mse")
        model.fit(
            x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0
        )
        results[name] = _weights(model)
        results[f"{name}_replicas"] = strategy.num_replicas_in_sync
    np.savez(
        out,
        replicas=results["mirrored_replicas"],
        **{f"single_{k}": v for k, v in results["single"].items()},
        **{f"mirrored_{k}": v for k, v in results["mirrored"].items()},
        **{f"initial_{k}": v for k, v in results["initial"].items()},
    )


def _train_step_fn(model, optimizer):
    import tensorflow as tf

    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y), axis=-1)
            loss = tf.nn.compute_average_loss(
                loss, global_batch_size=GLOBAL_BATCH
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def worker(index, ports, out):
    """One worker of a two-process MultiWorkerMirroredStrategy loop."""
    ports = ports.split(",")
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": int(index)},
        }
    )
    import keras
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = _data()
    with strategy.scope():
        model = _model()
        optimizer = keras.optimizers.SGD(0.05)
        optimizer.build(model.trainable_variables)
    step = _train_step_fn(model, optimizer)

    @tf.function
    def distributed_step(x, y):
        losses = strategy.run(step, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, None)

    # Each worker takes its half of every global batch.
    half = GLOBAL_BATCH // 2
    losses = []
    for s in range(STEPS):
        rows = slice(
            s * GLOBAL_BATCH + int(index) * half,
            s * GLOBAL_BATCH + (int(index) + 1) * half,
        )
        losses.append(float(distributed_step(x[rows], y[rows])))
    np.savez(out, losses=np.array(losses), **_weights(model))


def single_loop(out):
    """The same custom loop on one process, whole global batches."""
    import keras
    import tensorflow as tf

    x, y = _data()
    model = _model()
    optimizer = keras.optimizers.SGD(0.05)
    step = tf.function(_train_step_fn(model, optimizer))
    loss_before = float(np.mean((model(x).numpy() - y) ** 2))
    losses = []
    for s in range(STEPS):
        rows = slice(s * GLOBAL_BATCH, (s + 1) * GLOBAL_BATCH)
        losses.append(float(step(x[rows], y[rows])))
    loss_after = float(np.mean((model(x).numpy() - y) ** 2))
    np.savez(
        out,
        losses=np.array(losses),
        loss_before=loss_before,
        loss_after=loss_after,
        **_weights(model),
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"mirrored": mirrored, "worker": worker, "single": single_loop}[command](
        *args
    )
