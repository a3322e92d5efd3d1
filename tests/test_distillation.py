"""Data-aware initialisation, distillation and the accuracy-aware search."""

import keras
import numpy as np
import pytest

from keras_tt.accuracy_aware import accuracy
from keras_tt.accuracy_aware import compress_within
from keras_tt.data_aware import data_aware_init
from keras_tt.distillation import Distiller
from keras_tt.distillation import distill
from keras_tt.tensorize import tensorize

to_numpy = keras.ops.convert_to_numpy


def correlated_inputs(rng, count, width=256):
    """Inputs whose features have very different scales and correlations
    (as pixels or hidden activations do)."""
    scales = np.exp(rng.normal(size=width) * 1.5)
    mixing = np.eye(width) + 0.3 * rng.normal(size=(width, width)) / 16
    return ((rng.normal(size=(count, width)) * scales) @ mixing).astype(
        "float32"
    )


def linear_model(seed=0, width=256, units=128):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((width,)), keras.layers.Dense(units, name="fc")]
    )


def relative_error(model, tt_model, x):
    y = to_numpy(model(x))
    return np.linalg.norm(to_numpy(tt_model(x)) - y) / np.linalg.norm(y)


def cores(tt_model):
    return [np.array(w) for w in tt_model.get_weights()]


def test_whitened_dense_beats_plain_tt_svd_on_held_out_inputs():
    rng = np.random.default_rng(0)
    model = linear_model()
    x = correlated_inputs(rng, 1024)
    tt_model = tensorize(model, tt_rank=6, verbose=0)
    plain = relative_error(model, tt_model, x[512:])
    [record] = data_aware_init(tt_model, model, x[:512])
    aware = relative_error(model, tt_model, x[512:])
    assert record.kept and record.method == "whitened"
    assert aware < 0.9 * plain
    # The record's "before" is the plain cores' error on the sample.
    np.testing.assert_allclose(
        record.error_before,
        relative_error_no_bias(model, x[:512], plain_tt(model)),
        rtol=1e-3,
    )
    # Same ranks, same size.
    assert tt_model.count_params() == plain_tt(model).count_params()


def plain_tt(model):
    return tensorize(model, tt_rank=6, verbose=0)


def relative_error_no_bias(model, x, tt_model):
    w = to_numpy(model.get_layer("fc").kernel)
    w_tt = tt_model.get_layer("fc").full_kernel()
    return np.linalg.norm(x @ (w - w_tt)) / np.linalg.norm(x @ w)


def test_whitened_einsum_dense_beats_plain_tt_svd():
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((5, 256)),
            keras.layers.EinsumDense("abc,cd->abd", (5, 128), name="proj"),
        ]
    )
    x = correlated_inputs(rng, 1200).reshape(240, 5, 256)
    tt_model = tensorize(model, tt_rank=6, verbose=0)
    plain = relative_error(model, tt_model, x[120:])
    [record] = data_aware_init(tt_model, model, x[:120])
    assert record.kind == "EinsumDense" and record.kept
    assert relative_error(model, tt_model, x[120:]) < 0.9 * plain


def test_frequency_weighted_embedding_beats_plain_tt_svd_on_frequent_rows():
    rng = np.random.default_rng(2)
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((8,), dtype="int32"), keras.layers.Embedding(4096, 32)]
    )
    # Zipf-distributed ids: few rows carry most of the lookups.
    ranks = rng.permutation(4096)
    ids = ranks[np.minimum(rng.zipf(1.3, size=(2000, 8)), 4096) - 1]
    ids = ids.astype("int32")
    tt_model = tensorize(model, tt_rank=8, min_params=1, verbose=0)
    plain = relative_error(model, tt_model, ids[1000:])
    [record] = data_aware_init(tt_model, model, ids[:1000])
    assert record.method == "frequency-weighted" and record.kept
    assert record.error_after < record.error_before
    # Held-out lookups, drawn from the same frequencies.
    assert relative_error(model, tt_model, ids[1000:]) < 0.9 * plain


@pytest.mark.parametrize(
    "data, match",
    [
        (np.full((8, 256), np.nan, "float32"), "calibration_data.*NaN"),
        (np.zeros((8, 100), "float32"), "calibration_data.*shape"),
        ("text", "calibration_data"),
    ],
)
def test_bad_calibration_data_leaves_both_models_untouched(data, match):
    model = linear_model()
    tt_model = tensorize(model, tt_rank=4, verbose=0)
    before, original = cores(tt_model), cores(model)
    with pytest.raises(ValueError, match=match):
        data_aware_init(tt_model, model, data)
    for a, b in zip(before + original, cores(tt_model) + cores(model)):
        np.testing.assert_array_equal(a, b)


def test_unknown_layer_is_refused():
    model = linear_model()
    tt_model = tensorize(model, tt_rank=4, verbose=0)
    x = np.zeros((4, 256), "float32")
    with pytest.raises(ValueError, match="layers.*'nope'"):
        data_aware_init(tt_model, model, x, layers=["nope"])


def classifier(seed, hidden=32):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(4),
        ]
    )


@pytest.mark.multibackend
def test_distiller_loss_is_the_documented_formula():
    rng = np.random.default_rng(3)
    teacher, student = classifier(0), classifier(1)
    x = rng.normal(size=(10, 16)).astype("float32")
    y = rng.integers(0, 4, size=10)
    distiller = Distiller(student, teacher, temperature=3.0, alpha=0.25)
    loss = float(
        to_numpy(distiller.compute_loss(x, y, student(x), training=False))
    )

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    zt, zs = (
        to_numpy(teacher(x)).astype(np.float64),
        to_numpy(student(x)).astype(np.float64),
    )
    pt = np.exp(log_softmax(zt / 3))
    kl = (pt * (np.log(pt) - log_softmax(zs / 3))).sum(-1) * 9
    ce = -log_softmax(zs)[np.arange(10), y]
    np.testing.assert_allclose(loss, np.mean(0.25 * ce + 0.75 * kl), rtol=1e-4)


@pytest.mark.multibackend
def test_distill_moves_the_student_to_the_teacher_and_never_trains_it():
    rng = np.random.default_rng(4)
    teacher, student = classifier(0), classifier(1)
    x = rng.normal(size=(512, 16)).astype("float32")
    y = np.argmax(to_numpy(teacher(x)), -1)
    teacher_weights = cores(teacher)
    before = accuracy(student, x, y)
    # alpha=0: the teacher's soft targets only (the labels given are noise).
    distill(
        student,
        teacher,
        x,
        rng.integers(0, 4, size=512),
        epochs=15,
        batch_size=64,
        alpha=0.0,
        optimizer=keras.optimizers.Adam(0.01),
    )
    for a, b in zip(teacher_weights, cores(teacher)):
        np.testing.assert_array_equal(a, b)
    assert accuracy(student, x, y) > max(0.75, before + 0.3)


@pytest.mark.multibackend
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"teacher": "model"}, "teacher"),
    ],
)
def test_bad_distiller_arguments(kwargs, match):
    args = {"student": classifier(0), "teacher": classifier(1), **kwargs}
    with pytest.raises(ValueError, match=match):
        Distiller(**args)


def tt_rank_teacher(rank=3):
    """An MLP whose Dense kernels have exact TT-rank ``rank``."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu", name="fc1"),
            keras.layers.Dense(256, activation="relu", name="fc2"),
            keras.layers.Dense(4, name="head"),
        ]
    )
    low = tensorize(model, tt_rank=rank, verbose=0)
    for name in ("fc1", "fc2"):
        kernel = low.get_layer(name).full_kernel()
        model.get_layer(name).kernel.assign(kernel / np.std(kernel) * 0.1)
    # Clear margins between the classes, so that labels are not ties.
    head = model.get_layer("head")
    head.kernel.assign(head.kernel * 30.0)
    return model


def test_compress_within_returns_the_smallest_accepted_model():
    rng = np.random.default_rng(5)
    model = tt_rank_teacher()
    x = rng.normal(size=(1000, 64)).astype("float32")
    y = np.argmax(to_numpy(model(x)), -1)
    result = compress_within(
        model,
        maximal_accuracy_drop=0.05,
        train_data=(x[:600], y[:600]),
        validation_data=(x[600:], y[600:]),
        min_ratio=2,
        max_ratio=500,
        steps=2,
        epochs=0,  # the search itself: tensorize + data-aware init
        calibrated_budget=False,
    )
    assert result.baseline_accuracy == 1.0
    best = result.best
    assert best is not None and result.model is not None
    # The returned model is the accepted one of the largest compression,
    # and its accuracy is measured again here.
    assert accuracy(result.model, x[600:], y[600:]) == pytest.approx(
        best.accuracy
    )
    assert best.accuracy >= 0.95
    ratio = model.count_params() / result.model.count_params()
    assert ratio >= best.model_ratio > 2
    assert not result.candidates[0].accepted  # 500x is too much
    assert all(
        c.compression <= best.compression
        for c in result.candidates
        if c.accepted
    )


def test_compress_within_checks_the_drop():
    model = linear_model()
    x = np.zeros((4, 256), "float32")
    with pytest.raises(ValueError, match="maximal_accuracy_drop"):
        compress_within(model, 5, (x, [0] * 4), (x, [0] * 4))
