"""Whole-model budgets: `tensorize(model, model_ratio=...)`."""

import math

import keras
import numpy as np
import pytest

from keras_tt.tensorize import tensorize
from keras_tt.tt_matrix import full_matrix

RATIO = 8


def _tt_kernel(rng, rank):
    """A 128 x 128 kernel of exact TT-rank ``rank`` (the automatic modes
    8*4*4 x 8*4*4)."""
    in_modes = out_modes = (8, 4, 4)
    ranks = (1, rank, rank, 1)
    cores = [
        rng.normal(size=(ranks[k], in_modes[k], out_modes[k], ranks[k + 1]))
        for k in range(3)
    ]
    w = full_matrix(cores)
    return (w / np.linalg.norm(w) * 8).astype("float32")


def two_branch_model(seed=0, ranks=(2, 8), weight=1.0):
    """``head_a(fc_a(x)) + weight * head_b(fc_b(x))``, 128 -> 128 each.

    fc_a and fc_b have kernels of exact TT-ranks ``ranks`` plus a little
    noise (``None``: a random kernel). With ``weight`` small, fc_b barely
    reaches the output.
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((128,))
    a = keras.layers.Dense(128, activation="relu", name="fc_a")(inputs)
    b = keras.layers.Dense(128, activation="relu", name="fc_b")(inputs)
    out_a = keras.layers.Dense(4, name="head_a")(a)
    out_b = keras.layers.Dense(4, name="head_b")(b)
    out = keras.layers.Add()([out_a, keras.layers.Rescaling(weight)(out_b)])
    model = keras.Model(inputs, out)
    for name, rank in zip(("fc_a", "fc_b"), ranks):
        if rank is not None:
            noise = rng.normal(size=(128, 128)).astype("float32") * 0.01
            model.get_layer(name).kernel.assign(_tt_kernel(rng, rank) + noise)
    return model, rng.normal(size=(256, 128)).astype("float32")


def output_error(model, tt_model, x):
    y = np.asarray(model(x))
    return float(
        np.linalg.norm(np.asarray(tt_model(x)) - y) / np.linalg.norm(y)
    )


def uniform_at_budget(model, ratio):
    """The largest uniform rank whose tensorized model fits, found by
    tensorizing at increasing ranks."""
    best = None
    for rank in range(1, 64):
        tt_model = tensorize(model, tt_rank=rank, min_params=1000, verbose=0)
        if model.count_params() / tt_model.count_params() < ratio:
            break
        best = tt_model
    return best


def calibrated_budget(model, x, **kwargs):
    """The model tensorized to `RATIO` with the first 128 rows as sample."""
    return tensorize(
        model,
        model_ratio=RATIO,
        calibration_data=x[:128],
        min_params=1000,
        verbose=0,
        **kwargs,
    )


def snapshot(model):
    return [np.array(w) for w in model.get_weights()]


def test_budget_is_met_within_one_rank_step():
    model, _ = two_branch_model()
    tt_model = tensorize(model, model_ratio=RATIO, min_params=1000, verbose=0)
    report = tt_model.tensorize_report
    budget = report.allocation
    max_params = math.floor(model.count_params() / RATIO)
    assert budget.max_params == max_params
    assert tt_model.count_params() <= max_params
    assert budget.predicted_params == tt_model.count_params()
    assert report.totals()["predicted_params"] == tt_model.count_params()
    # Raising any one layer by one rank step overflows the budget,
    # measured by tensorizing that configuration.
    for raised in budget.layers:
        if raised.chosen + 1 == len(raised.options):
            continue
        settings = {
            a.name: {
                "tt_rank": raised.options[raised.chosen + 1].tt_rank
                if a is raised
                else a.tt_rank
            }
            for a in budget.layers
        }
        bigger = tensorize(model, layers=settings, verbose=0)
        assert bigger.count_params() > max_params
    # The chosen ranks are the ones the layers have.
    for record in report.layers:
        assert max(record.ranks) == budget.ranks[record.name]


def test_threshold_beats_uniform_rank_at_the_same_size():
    model, x = two_branch_model()
    ratio = 12
    uniform = uniform_at_budget(model, ratio)
    tt_model = tensorize(model, model_ratio=ratio, min_params=1000, verbose=0)
    # Same budget: both fit it.
    budget = model.count_params() / ratio
    assert uniform.count_params() <= tt_model.count_params() <= budget
    ranks = tt_model.tensorize_report.allocation.ranks
    assert ranks["fc_a"] < ranks["fc_b"]  # the structured layer needs less
    assert output_error(model, tt_model, x) < 0.8 * output_error(
        model, uniform, x
    )


def test_calibrated_greedy_beats_uniform_rank_at_the_same_size():
    # Both kernels alike: equal weight errors, but fc_b barely reaches
    # the output, which only data can tell.
    model, x = two_branch_model(ranks=(8, 8), weight=0.05)
    uniform = uniform_at_budget(model, RATIO)
    tt_model = calibrated_budget(model, x)
    budget = tt_model.tensorize_report.allocation
    # The default with data tries both rules; the greedy one is kept here.
    assert budget.method == "auto" and budget.calibrated
    assert budget.chosen_method == "greedy"
    assert budget.candidates["greedy"] < budget.candidates["threshold"]
    assert tt_model.count_params() <= model.count_params() / RATIO
    assert budget.ranks["fc_a"] > budget.ranks["fc_b"]
    # Measured on examples the calibration did not see.
    assert output_error(model, tt_model, x[128:]) < 0.7 * output_error(
        model, uniform, x[128:]
    )
    for a in budget.layers:
        assert all(o.sensitivity is not None for o in a.options)
    assert "output change" in str(tt_model.tensorize_report)


def test_sensitivity_is_the_measured_output_change():
    model, x = two_branch_model(ranks=(None, None))
    tt_model = tensorize(
        model,
        model_ratio=RATIO,
        calibration_data=x,
        min_params=1000,
        verbose=0,
    )
    budget = tt_model.tensorize_report.allocation
    fc_a = next(a for a in budget.layers if a.name == "fc_a")
    # fc_a alone at its chosen rank, measured independently.
    only_a = tensorize(
        model, layers={"fc_a": {"tt_rank": fc_a.tt_rank}}, verbose=0
    )
    expected = output_error(model, only_a, x) ** 2
    np.testing.assert_allclose(fc_a.option.sensitivity, expected, rtol=1e-3)


def test_embedding_and_dense_share_one_budget():
    inputs = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(1024, 32, name="table")(inputs)
    h = keras.layers.GlobalAveragePooling1D()(h)
    h = keras.layers.Dense(512, activation="relu", name="fc")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(h))
    tt_model = tensorize(model, model_ratio=20, verbose=0)
    kinds = {r.kind for r in tt_model.tensorize_report.layers}
    assert kinds == {"Embedding", "Dense"}
    assert model.count_params() / tt_model.count_params() >= 20
    assert (
        tt_model.tensorize_report.allocation.predicted_params
        == tt_model.count_params()
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model_ratio": 1e6}, "model_ratio.*cannot be met"),
        ({"model_ratio": 0.5}, "model_ratio"),
        ({"model_ratio": float("nan")}, "model_ratio"),
        ({"model_ratio": 4, "tt_rank": 3}, "model_ratio.*tt_rank=3"),
        ({"model_ratio": 4, "allocation": "best"}, "allocation='best'"),
        ({"calibration_data": np.zeros((4, 128))}, "without `model_ratio`"),
        (
            {"model_ratio": 4, "calibration_data": np.zeros((4, 100))},
            "calibration_data.*shape",
        ),
        (
            {"model_ratio": 4, "calibration_data": np.full((4, 128), np.nan)},
            "calibration_data.*NaN",
        ),
        (
            {"model_ratio": 4, "calibration_data": np.zeros((0, 128))},
            "calibration_data",
        ),
        (
            {"model_ratio": 4, "layers": {"fc_a": {"tt_rank": 2}}},
            "per-layer",
        ),
    ],
)
def test_bad_budget_arguments_leave_the_model_untouched(kwargs, match):
    model, _ = two_branch_model()
    before = snapshot(model)
    config = model.get_config()
    kwargs.setdefault("min_params", 1000)
    with pytest.raises(ValueError, match=match):
        tensorize(model, verbose=0, **kwargs)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.get_config() == config
    assert all("call" not in vars(layer) for layer in model.layers)


@pytest.mark.parametrize("kernel_ranks", [(8, 8), (2, 8)])
def test_auto_keeps_the_allocation_that_changes_the_outputs_less(
    kernel_ranks,
):
    model, x = two_branch_model(ranks=kernel_ranks, weight=0.05)
    sample = x[:128]
    results = {
        rule: calibrated_budget(model, x, allocation=rule)
        for rule in ("auto", "greedy", "threshold")
    }
    # Each allocation's whole-model change, measured on its own result.
    measured = {
        rule: output_error(model, tt_model, sample) ** 2
        for rule, tt_model in results.items()
    }
    auto = results["auto"].tensorize_report.allocation
    for rule in ("greedy", "threshold"):
        budget = results[rule].tensorize_report.allocation
        assert budget.chosen_method == rule and budget.candidates is None
        np.testing.assert_allclose(
            budget.output_change, measured[rule], rtol=1e-3
        )
        np.testing.assert_allclose(
            auto.candidates[rule], measured[rule], rtol=1e-3
        )
    kept = min(("greedy", "threshold"), key=measured.get)
    assert auto.chosen_method == kept
    assert auto.ranks == results[kept].tensorize_report.allocation.ranks
    assert measured["auto"] <= min(measured["greedy"], measured["threshold"])
    assert f"{kept} kept" in str(results["auto"].tensorize_report)


def test_auto_without_data_is_the_threshold_rule():
    model, _ = two_branch_model()
    auto = tensorize(
        model, model_ratio=RATIO, allocation="auto", min_params=1000, verbose=0
    )
    threshold = tensorize(model, model_ratio=RATIO, min_params=1000, verbose=0)
    budget = auto.tensorize_report.allocation
    assert budget.chosen_method == "threshold" and budget.output_change is None
    assert budget.ranks == threshold.tensorize_report.allocation.ranks


def test_auto_keeps_threshold_when_single_layer_sensitivities_mislead(
    monkeypatch,
):
    # Single-layer changes that say the opposite of the joint one (as
    # when changes saturate or interact): the greedy rule follows them,
    # the joint measurement of both allocations does not.
    from keras_tt import calibration

    class Misleading(calibration.OutputChange):
        def __call__(self, layer, new_layer):
            true = super().__call__(layer, new_layer)
            return 1.0 / (1.0 + true) if layer.name == "fc_a" else true

    monkeypatch.setattr(calibration, "OutputChange", Misleading)
    model, x = two_branch_model(ranks=(8, 8))
    tt_model = calibrated_budget(model, x)
    budget = tt_model.tensorize_report.allocation
    assert budget.candidates["threshold"] < budget.candidates["greedy"]
    assert budget.chosen_method == "threshold"
    np.testing.assert_allclose(
        budget.output_change,
        output_error(model, tt_model, x[:128]) ** 2,
        rtol=1e-3,
    )
    threshold = calibrated_budget(model, x, allocation="threshold")
    assert budget.ranks == threshold.tensorize_report.allocation.ranks
