"""A catalogue of bad inputs to the public API, and what each must do.

Every case calls one entry point with one bad value and pins the exception
type and the key words of its message (the argument, what was expected, the
value received). For calls that take a model or a path, the case also
checks that the model's weights and config and any file already at the
target path are unchanged afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import modes


@dataclasses.dataclass
class Case:
    """``call()`` must raise ``error`` with every word of ``words``."""

    id: str
    call: Callable
    error: type | tuple
    words: tuple[str, ...]


def _check(case: Case):
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value).lower()
    missing = [w for w in case.words if w.lower() not in message]
    assert not missing, f"{missing} not in message: {info.value}"


def _cases(*rows):
    return [Case(*row) for row in rows]


def _ids(case):
    return case.id


# ------------------------------------------------------------------ layer

V = ValueError

LAYER_CASES = _cases(
    ("units_zero", lambda: keras_tt.TTDense(0, 2), V, ("`units`", "units=0")),
    ("units_negative", lambda: keras_tt.TTDense(-4, 2), V, ("units=-4",)),
    ("units_float", lambda: keras_tt.TTDense(8.0, 2), V, ("units=8.0",)),
    ("units_str", lambda: keras_tt.TTDense("8", 2), V, ("units='8'",)),
    ("units_none", lambda: keras_tt.TTDense(None, 2), V, ("units=none",)),
    ("units_bool", lambda: keras_tt.TTDense(True, 2), V, ("units=true",)),
    (
        "units_huge",
        lambda: keras_tt.TTDense(10**12, 2),
        V,
        ("`units`", "at most 2,147,483,647"),
    ),
    ("rank_zero", lambda: keras_tt.TTDense(8, 0), V, ("`tt_rank`", "=0")),
    ("rank_negative", lambda: keras_tt.TTDense(8, -1), V, ("tt_rank=-1",)),
    ("rank_float", lambda: keras_tt.TTDense(8, 2.5), V, ("tt_rank=2.5",)),
    ("rank_str", lambda: keras_tt.TTDense(8, "4"), V, ("tt_rank='4'",)),
    ("rank_none", lambda: keras_tt.TTDense(8, None), V, ("tt_rank=none",)),
    ("rank_list_zero", lambda: keras_tt.TTDense(8, [2, 0]), V, ("[2, 0]",)),
    ("rank_list_str", lambda: keras_tt.TTDense(8, [2, "a"]), V, ("tt_rank",)),
    ("rank_bool", lambda: keras_tt.TTDense(8, True), V, ("tt_rank=true",)),
    (
        "rank_wrong_length",
        lambda: keras_tt.TTDense(8, [2, 2, 2], in_modes=(2, 4)),
        V,
        ("`tt_rank`", "1 inner ranks", "(2, 2, 2)"),
    ),
    (
        "in_modes_empty",
        lambda: keras_tt.TTDense(8, 2, in_modes=()),
        V,
        ("`in_modes`", "non-empty"),
    ),
    (
        "in_modes_zero",
        lambda: keras_tt.TTDense(8, 2, in_modes=(2, 0)),
        V,
        ("`in_modes`", "(2, 0)"),
    ),
    (
        "in_modes_negative",
        lambda: keras_tt.TTDense(8, 2, in_modes=(4, -2)),
        V,
        ("`in_modes`",),
    ),
    (
        "in_modes_str",
        lambda: keras_tt.TTDense(8, 2, in_modes="24"),
        V,
        ("`in_modes`", "'24'"),
    ),
    (
        "in_modes_float",
        lambda: keras_tt.TTDense(8, 2, in_modes=(2.5, 2)),
        V,
        ("`in_modes`",),
    ),
    (
        "in_modes_int",
        lambda: keras_tt.TTDense(8, 2, in_modes=8),
        V,
        ("`in_modes`", "in_modes=8"),
    ),
    (
        "out_modes_product",
        lambda: keras_tt.TTDense(8, 2, out_modes=(3, 3)),
        V,
        ("`out_modes`", "product equals 8", "product is 9"),
    ),
    (
        "modes_lengths_differ",
        lambda: keras_tt.TTDense(8, 2, in_modes=(2, 2, 2), out_modes=(2, 4)),
        V,
        ("same length", "in_modes=(2, 2, 2)", "out_modes=(2, 4)"),
    ),
    (
        "activation_unknown",
        lambda: keras_tt.TTDense(8, 2, activation="nonexistent"),
        V,
        ("nonexistent",),
    ),
    (
        "initializer_unknown",
        lambda: keras_tt.TTDense(8, 2, kernel_initializer="nope_init"),
        V,
        ("nope_init",),
    ),
    (
        "regularizer_unknown",
        lambda: keras_tt.TTDense(8, 2, kernel_regularizer="nope_reg"),
        V,
        ("nope_reg",),
    ),
    (
        "constraint_unknown",
        lambda: keras_tt.TTDense(8, 2, kernel_constraint="nope_con"),
        V,
        ("nope_con",),
    ),
    (
        "build_scalar_shape",
        lambda: keras_tt.TTDense(8, 2).build(()),
        V,
        ("rank >= 2", "input_shape=()"),
    ),
    (
        "build_rank_1",
        lambda: keras_tt.TTDense(8, 2).build((16,)),
        V,
        ("rank >= 2", "input_shape=(16,)"),
    ),
    (
        "build_unknown_width",
        lambda: keras_tt.TTDense(8, 2).build((None, None)),
        V,
        ("must be known", "input_shape=(none, none)"),
    ),
    (
        "build_zero_width",
        lambda: keras_tt.TTDense(8, 2).build((None, 0)),
        V,
        ("at least 1", "input_shape=(none, 0)"),
    ),
    (
        "build_huge_width",
        lambda: keras_tt.TTDense(8, 2).build((None, 2**31)),
        V,
        ("at most 2,147,483,647",),
    ),
    (
        "build_in_modes_mismatch",
        lambda: keras_tt.TTDense(8, 2, in_modes=(2, 4)).build((None, 10)),
        V,
        ("`in_modes`", "product equals 10", "product is 8"),
    ),
    (
        "build_rank_list_wrong_length_auto_modes",
        lambda: keras_tt.TTDense(8, [2, 2, 2, 2, 2, 2, 2]).build((None, 16)),
        V,
        ("`tt_rank`", "inner ranks"),
    ),
    (
        "call_wrong_width",
        lambda: _built_layer()(np.ones((2, 9), "float32")),
        V,
        ("expected axis -1", "16", "9"),
    ),
    (
        "properties_before_build",
        lambda: keras_tt.TTDense(8, 2).full_kernel(),
        V,
        ("full_kernel", "built"),
    ),
)


def _built_layer():
    layer = keras_tt.TTDense(8, 2)
    layer.build((None, 16))
    return layer


def _dense(units=8, input_dim=16, **kwargs):
    layer = keras.layers.Dense(units, **kwargs)
    layer.build((None, input_dim))
    return layer


FROM_DENSE_CASES = _cases(
    (
        "not_a_dense",
        lambda: keras_tt.TTDense.from_dense(keras.layers.Flatten(), 2),
        V,
        ("`dense_layer`", "dense", "flatten"),
    ),
    (
        "unbuilt_dense",
        lambda: keras_tt.TTDense.from_dense(keras.layers.Dense(8), 2),
        V,
        ("not built",),
    ),
    (
        "no_rank_no_error",
        lambda: keras_tt.TTDense.from_dense(_dense()),
        V,
        ("`tt_rank`", "`rel_error`", "tt_rank=none"),
    ),
    (
        "rel_error_zero",
        lambda: keras_tt.TTDense.from_dense(_dense(), rel_error=0),
        V,
        ("`rel_error`", "strictly between 0 and 1", "rel_error=0"),
    ),
    (
        "rel_error_one",
        lambda: keras_tt.TTDense.from_dense(_dense(), rel_error=1.0),
        V,
        ("rel_error=1.0",),
    ),
    (
        "rel_error_str",
        lambda: keras_tt.TTDense.from_dense(_dense(), rel_error="0.1"),
        V,
        ("rel_error='0.1'",),
    ),
    (
        "rel_error_nan",
        lambda: keras_tt.TTDense.from_dense(_dense(), rel_error=float("nan")),
        V,
        ("rel_error=nan",),
    ),
    (
        "from_dense_rank_zero",
        lambda: keras_tt.TTDense.from_dense(_dense(), tt_rank=0),
        V,
        ("tt_rank=0",),
    ),
    (
        "from_dense_in_modes_mismatch",
        lambda: keras_tt.TTDense.from_dense(_dense(), 2, in_modes=(3, 5)),
        V,
        ("`in_modes`", "product equals 16", "product is 15"),
    ),
    (
        "from_dense_out_modes_mismatch",
        lambda: keras_tt.TTDense.from_dense(_dense(), 2, out_modes=(3, 3)),
        V,
        ("`out_modes`", "product equals 8"),
    ),
)


@pytest.mark.parametrize("case", LAYER_CASES + FROM_DENSE_CASES, ids=_ids)
def test_layer_refuses(case):
    _check(case)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"rel_error": 0},
        {"tt_rank": 0},
        {"tt_rank": 2, "in_modes": (3, 5)},
        {"tt_rank": 2, "out_modes": (3, 3)},
    ],
)
def test_from_dense_failures_leave_the_dense_layer_unchanged(kwargs):
    dense = _dense()
    before = [w.copy() for w in dense.get_weights()]
    config = dense.get_config()
    with pytest.raises(ValueError):
        keras_tt.TTDense.from_dense(dense, **kwargs)
    for old, new in zip(before, dense.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert dense.get_config() == config


# ---------------------------------------------------------- TT mathematics

_GOOD = np.arange(16.0).reshape(4, 4)
_CORE = np.ones((1, 2, 2, 1))

MATH_CASES = _cases(
    (
        "svd_none",
        lambda: keras_tt.tt_svd(None, (2, 2), (2, 2)),
        V,
        ("`matrix`", "matrix=none"),
    ),
    (
        "svd_str",
        lambda: keras_tt.tt_svd("abc", (2, 2), (2, 2)),
        V,
        ("`matrix`", "matrix='abc'"),
    ),
    (
        "svd_ragged",
        lambda: keras_tt.tt_svd([[1, 2], [3]], (2,), (2,)),
        V,
        ("`matrix`", "different lengths"),
    ),
    (
        "svd_3d",
        lambda: keras_tt.tt_svd(np.ones((4, 4, 1)), (2, 2), (2, 2)),
        V,
        ("2-d", "(4, 4, 1)"),
    ),
    (
        "svd_empty",
        lambda: keras_tt.tt_svd(np.ones((0, 4)), (1,), (4,)),
        V,
        ("non-empty", "(0, 4)"),
    ),
    (
        "svd_nan",
        lambda: keras_tt.tt_svd(np.full((4, 4), np.nan), (2, 2), (2, 2)),
        V,
        ("finite", "16 nan"),
    ),
    (
        "svd_inf",
        lambda: keras_tt.tt_svd(np.full((4, 4), np.inf), (2, 2), (2, 2)),
        V,
        ("finite", "16 infinite"),
    ),
    (
        "svd_complex",
        lambda: keras_tt.tt_svd(np.ones((4, 4), complex), (2, 2), (2, 2)),
        V,
        ("real numeric", "complex"),
    ),
    (
        "svd_in_modes_product",
        lambda: keras_tt.tt_svd(_GOOD, (2, 3), (2, 2)),
        V,
        ("`in_modes`", "product equals 4"),
    ),
    (
        "svd_out_modes_product",
        lambda: keras_tt.tt_svd(_GOOD, (2, 2), (4, 2)),
        V,
        ("`out_modes`", "product equals 4"),
    ),
    (
        "svd_modes_lengths",
        lambda: keras_tt.tt_svd(_GOOD, (2, 2), (4,)),
        V,
        ("same length",),
    ),
    (
        "svd_max_rank_zero",
        lambda: keras_tt.tt_svd(_GOOD, (2, 2), (2, 2), max_rank=0),
        V,
        ("`max_rank`", "max_rank=0"),
    ),
    (
        "svd_rel_error_big",
        lambda: keras_tt.tt_svd(_GOOD, (2, 2), (2, 2), rel_error=1.5),
        V,
        ("`rel_error`", "rel_error=1.5"),
    ),
    (
        "svd_method",
        lambda: keras_tt.tt_svd(_GOOD, (2, 2), (2, 2), method="qr"),
        V,
        ("`method`", "'qr'"),
    ),
    (
        "round_none",
        lambda: keras_tt.tt_round(None, max_rank=2),
        V,
        ("`cores`", "cores=none"),
    ),
    ("round_empty", lambda: keras_tt.tt_round([], max_rank=2), V, ("`cores`",)),
    (
        "round_broken_chain",
        lambda: keras_tt.tt_round([np.ones((1, 2, 2, 3)), _CORE], max_rank=1),
        V,
        ("`cores`", "match the first axis"),
    ),
    (
        "round_max_rank_negative",
        lambda: keras_tt.tt_round([_CORE, _CORE], max_rank=-1),
        V,
        ("max_rank=-1",),
    ),
    (
        "round_rel_error_zero",
        lambda: keras_tt.tt_round([_CORE, _CORE], rel_error=0.0),
        V,
        ("rel_error=0.0",),
    ),
    (
        "error_larger_matrix",
        lambda: keras_tt.tt_error([_CORE], np.ones((3, 3))),
        V,
        ("`matrix`", "no larger", "(3, 3)"),
    ),
    (
        "error_ragged",
        lambda: keras_tt.tt_error([_CORE], [[1, 2], [3]]),
        V,
        ("`matrix`", "different lengths"),
    ),
    (
        "full_matrix_none",
        lambda: keras_tt.full_matrix(None),
        V,
        ("`cores`", "cores=none"),
    ),
    (
        "full_matrix_str",
        lambda: keras_tt.full_matrix("ab"),
        V,
        ("`cores`", "cores='ab'"),
    ),
    ("full_matrix_empty", lambda: keras_tt.full_matrix([]), V, ("cores=[]",)),
    (
        "full_matrix_3d_core",
        lambda: keras_tt.full_matrix([np.ones((2, 2, 1))]),
        V,
        ("4-d", "(2, 2, 1)"),
    ),
    (
        "full_matrix_boundary_rank",
        lambda: keras_tt.full_matrix([np.ones((2, 2, 2, 1))]),
        V,
        ("boundary ranks of 1", "(2, 2, 2, 1)"),
    ),
    (
        "full_matrix_zero_size",
        lambda: keras_tt.full_matrix([np.ones((1, 0, 2, 1))]),
        V,
        ("size 0", "(1, 0, 2, 1)"),
    ),
    (
        "auto_modes_zero",
        lambda: keras_tt.auto_modes(0, 4),
        V,
        ("positive integer", "=0"),
    ),
    (
        "auto_modes_str",
        lambda: keras_tt.auto_modes(4, "8"),
        V,
        ("positive integer", "'8'"),
    ),
    (
        "auto_modes_huge",
        lambda: keras_tt.auto_modes(2**40, 4),
        V,
        ("at most 2,147,483,647",),
    ),
    (
        "max_ranks_str",
        lambda: keras_tt.max_tt_ranks("ab", (1,)),
        V,
        ("`in_modes`", "'ab'"),
    ),
    (
        "max_ranks_lengths",
        lambda: keras_tt.max_tt_ranks((2, 2), (2,)),
        V,
        ("same length",),
    ),
    (
        "padded_width_negative",
        lambda: modes.padded_width(-5),
        V,
        ("positive integer", "=-5"),
    ),
    (
        "layout_names",
        lambda: modes.resolve_layout(
            100,
            8,
            2,
            in_modes=(3, 3),
            names=("input_dim", "output_dim", "vocab_modes", "embed_modes"),
        ),
        V,
        ("`vocab_modes`", "product equals 100"),
    ),
    (
        "initializer_scale",
        lambda: keras_tt.TTVarianceScaling(scale=-1.0),
        V,
        ("scale",),
    ),
    (
        "initializer_mode",
        lambda: keras_tt.TTVarianceScaling(mode="fan_sideways"),
        V,
        ("fan_sideways",),
    ),
    (
        "initializer_distribution",
        lambda: keras_tt.TTVarianceScaling(distribution="cauchy"),
        V,
        ("cauchy",),
    ),
    (
        "initializer_called_on_a_ranked_core",
        lambda: keras_tt.TTVarianceScaling()((2, 4, 4, 2)),
        V,
        ("core_initializer", "(2, 4, 4, 2)"),
    ),
)


@pytest.mark.parametrize("case", MATH_CASES, ids=_ids)
def test_tt_mathematics_refuses(case):
    _check(case)


# ---------------------------------------------------------- serialization


def _saved_model(tmp_path):
    model = keras.Sequential([keras.Input((16,)), keras_tt.TTDense(8, 2)])
    path = str(tmp_path / "model.keras")
    model.save(path)
    return path


def _tampered(tmp_path, old: bytes, new: bytes):
    import zipfile

    path = _saved_model(tmp_path)
    out = str(tmp_path / "tampered.keras")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                assert old in data
                data = data.replace(old, new)
            dst.writestr(item, data)
    return out


SERIALIZATION_CASES = [
    (
        "config_units_zero",
        lambda tmp: keras_tt.TTDense.from_config({"units": 0, "tt_rank": 2}),
        ("`units`", "units=0"),
    ),
    (
        "config_rank_str",
        lambda tmp: keras_tt.TTDense.from_config({"units": 4, "tt_rank": "x"}),
        ("`tt_rank`", "'x'"),
    ),
    (
        "file_rank_tampered",
        lambda tmp: keras.models.load_model(
            _tampered(tmp, b'"tt_rank": 2', b'"tt_rank": 3')
        ),
        ("but the file stores shapes",),
    ),
    (
        "file_units_tampered",
        lambda tmp: keras.models.load_model(
            _tampered(tmp, b'"units": 8', b'"units": 6')
        ),
        ("but the file stores shapes",),
    ),
    (
        "file_units_huge",
        lambda tmp: keras.models.load_model(
            _tampered(tmp, b'"units": 8', b'"units": 1000000000000')
        ),
        ("`units`", "at most 2,147,483,647"),
    ),
    (
        "file_modes_tampered",
        lambda tmp: keras.models.load_model(
            _tampered(tmp, b'"in_modes": null', b'"in_modes": [3, 5]')
        ),
        ("`in_modes`", "product equals 16"),
    ),
]


@pytest.mark.parametrize(
    "call, words",
    [case[1:] for case in SERIALIZATION_CASES],
    ids=[case[0] for case in SERIALIZATION_CASES],
)
def test_serialization_refuses(call, words, tmp_path):
    with pytest.raises((ValueError, TypeError)) as info:
        call(tmp_path)
    message = str(info.value).lower()
    assert all(w.lower() in message for w in words), str(info.value)


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _snapshot(model):
    return (
        [w.copy() for w in model.get_weights()],
        keras.saving.serialize_keras_object(model),
    )


def _assert_unchanged(model, snapshot):
    weights, config = snapshot
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert keras.saving.serialize_keras_object(model) == config


# ---------------------------------------------------------------- tensorize


def _mlp():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,), name="pixels")
    hidden = keras.layers.Dense(256, activation="relu", name="fc1")(inputs)
    outputs = keras.layers.Dense(10, name="head")(hidden)
    return keras.Model(inputs, outputs, name="mlp")


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.fc = keras.layers.Dense(256)

    def call(self, x):
        return self.fc(x)


def _subclassed():
    model = _Subclassed()
    model(np.ones((1, 64), "float32"))
    return model


TENSORIZE_CASES = [
    ("model_none", None, {"tt_rank": 4}, ("`model`",)),
    ("model_str", "model.keras", {"tt_rank": 4}, ("`model`",)),
    ("model_layer", "layer", {"tt_rank": 4}, ("`model`",)),
    ("model_subclassed", "subclassed", {"tt_rank": 4}, ("subclassed",)),
    ("model_unbuilt", "unbuilt", {"tt_rank": 4}, ("not built",)),
    ("rank_zero", "mlp", {"tt_rank": 0}, ("`tt_rank`", "tt_rank=0")),
    ("rank_str", "mlp", {"tt_rank": "4"}, ("tt_rank='4'",)),
    ("rank_bool", "mlp", {"tt_rank": True}, ("tt_rank=true",)),
    ("rel_error_two", "mlp", {"rel_error": 2.0}, ("rel_error=2.0",)),
    ("rel_error_negative", "mlp", {"rel_error": -0.1}, ("rel_error=-0.1",)),
    ("ratio_negative", "mlp", {"target_ratio": -1}, ("target_ratio=-1",)),
    ("ratio_str", "mlp", {"target_ratio": "x"}, ("target_ratio='x'",)),
    ("ratio_inf", "mlp", {"target_ratio": float("inf")}, ("target_ratio",)),
    (
        "rank_and_ratio",
        "mlp",
        {"tt_rank": 4, "target_ratio": 10},
        ("`tt_rank`", "`target_ratio`"),
    ),
    ("no_ranks", "mlp", {}, ("`tt_rank`", "`rel_error`", "`target_ratio`")),
    (
        "min_params_negative",
        "mlp",
        {"tt_rank": 4, "min_params": -1},
        ("`min_params`", "min_params=-1"),
    ),
    (
        "min_params_float",
        "mlp",
        {"tt_rank": 4, "min_params": 1.5},
        ("min_params=1.5",),
    ),
    (
        "min_params_bool",
        "mlp",
        {"tt_rank": 4, "min_params": True},
        ("min_params=true",),
    ),
    ("verbose_three", "mlp", {"tt_rank": 4, "verbose": 3}, ("`verbose`",)),
    (
        "layers_unknown_name",
        "mlp",
        {"tt_rank": 4, "layers": ["fc9"]},
        ("`layers`", "'fc9'", "fc1"),
    ),
    (
        "layers_not_dense",
        "mlp",
        {"tt_rank": 4, "layers": ["pixels"]},
        ("`layers`", "pixels"),
    ),
    (
        "layers_int",
        "mlp",
        {"tt_rank": 4, "layers": [3]},
        ("`layers`", "3"),
    ),
    (
        "layers_object_elsewhere",
        "mlp",
        {"tt_rank": 4, "layers": [keras.layers.Dense(3, name="stray")]},
        ("`layers`", "stray", "not part of the model"),
    ),
    (
        "layers_bad_setting",
        "mlp",
        {"tt_rank": 4, "layers": {"fc1": {"rank": 2}}},
        ("`layers`", "rank"),
    ),
    (
        "layers_setting_not_dict",
        "mlp",
        {"tt_rank": 4, "layers": {"fc1": 2}},
        ("`layers`", "fc1"),
    ),
    (
        "layers_setting_bad_rank",
        "mlp",
        {"layers": {"fc1": {"tt_rank": 0}}},
        ("tt_rank=0",),
    ),
    (
        "layers_setting_bad_modes",
        "mlp",
        {"tt_rank": 4, "layers": {"fc1": {"in_modes": (5, 5)}}},
        ("`in_modes`", "64"),
    ),
    (
        "modes_wrong_shape",
        "mlp",
        {"tt_rank": 4, "modes": (4, 4)},
        ("`modes`",),
    ),
    (
        "modes_unknown_layer",
        "mlp",
        {"tt_rank": 4, "modes": {"fc9": ((8, 8), (16, 16))}},
        ("`modes`", "fc9"),
    ),
    (
        "modes_product",
        "mlp",
        {"tt_rank": 4, "modes": ((8, 9), (16, 16))},
        ("`in_modes`", "64"),
    ),
    (
        "rank_wrong_length",
        "mlp",
        {"tt_rank": [4, 4, 4, 4, 4, 4, 4, 4]},
        ("`tt_rank`", "fc1"),
    ),
    (
        "ratio_unreachable",
        "mlp",
        {"target_ratio": 1e9},
        ("`target_ratio`", "fc1"),
    ),
    (
        "nothing_large_enough",
        "mlp",
        {"tt_rank": 4, "min_params": 10**9},
        ("min_params",),
    ),
]


def _tensorize_model(kind):
    if kind == "mlp":
        return _mlp()
    if kind == "layer":
        return _dense()
    if kind == "subclassed":
        return _subclassed()
    if kind == "unbuilt":
        return keras.Sequential([keras.layers.Dense(256)])
    return kind


@pytest.mark.parametrize(
    "kind, kwargs, words",
    [case[1:] for case in TENSORIZE_CASES],
    ids=[case[0] for case in TENSORIZE_CASES],
)
def test_tensorize_refuses_and_leaves_the_model_untouched(kind, kwargs, words):
    model = _tensorize_model(kind)
    snapshot = _snapshot(model) if isinstance(model, keras.Model) else None
    with pytest.raises((ValueError, TypeError)) as info:
        keras_tt.tensorize(model, **{"verbose": 0, **kwargs})
    message = str(info.value).lower()
    assert all(w.lower() in message for w in words), str(info.value)
    if snapshot is not None and model.built:
        _assert_unchanged(model, snapshot)


def test_layers_empty_list_says_nothing_was_selected():
    model = _mlp()
    with pytest.raises(ValueError) as info:
        keras_tt.tensorize(model, tt_rank=4, layers=[], verbose=0)
    message = str(info.value)
    assert "`layers`" in message
    # It must not claim that the 16,384-entry kernel is below min_params.
    assert "smaller than" not in message


# ------------------------------------------------------------------ export


def _export_model():
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras_tt.TTDense(8, 2, in_modes=(4, 4), activation="relu"),
            keras.layers.Dense(3),
        ]
    )


_X = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")


def _with_value(value, row=0):
    x = _X.copy()
    x[row, 3] = value
    return x


EXPORT_CASES = [
    ("quantization_int4", {"quantization": "int4"}, ("`quantization`", "int4")),
    (
        "int8_without_data",
        {"quantization": "int8"},
        ("`representative_data`", "representative_data=none"),
    ),
    ("batch_zero", {"batch_size": 0}, ("`batch_size`", "batch_size=0")),
    ("batch_negative", {"batch_size": -2}, ("batch_size=-2",)),
    ("batch_float", {"batch_size": 1.5}, ("batch_size=1.5",)),
    ("batch_bool", {"batch_size": True}, ("batch_size=true",)),
    ("io_dtype_uint8", {"io_dtype": "uint8"}, ("`io_dtype`", "uint8")),
    (
        "io_int8_needs_int8",
        {"io_dtype": "int8"},
        ("`io_dtype`", "quantization='int8'"),
    ),
    ("tolerance_negative", {"tolerance": -1}, ("`tolerance`", "-1")),
    ("tolerance_zero", {"tolerance": 0}, ("`tolerance`",)),
    ("tolerance_nan", {"tolerance": float("nan")}, ("`tolerance`", "nan")),
    ("tolerance_str", {"tolerance": "small"}, ("`tolerance`", "small")),
    (
        "calibration_nan",
        {"quantization": "int8", "representative_data": _with_value(np.nan)},
        ("`representative_data`", "nan"),
    ),
    (
        "calibration_inf",
        {"quantization": "int8", "representative_data": _with_value(np.inf)},
        ("`representative_data`", "inf"),
    ),
    (
        "calibration_wrong_width",
        {"quantization": "int8", "representative_data": np.ones((4, 15))},
        ("`representative_data`", "15"),
    ),
    (
        "calibration_text",
        {"quantization": "int8", "representative_data": "x.npy"},
        ("`representative_data`",),
    ),
    (
        "validation_nan",
        {"validation_data": _with_value(np.nan, row=5)},
        ("`validation_data`", "nan"),
    ),
    (
        "validation_wrong_width",
        {"validation_data": np.ones((4, 17), "float32")},
        ("`validation_data`", "17"),
    ),
    ("verbose_str", {"verbose": "loud"}, ("`verbose`",)),
]


@pytest.mark.parametrize(
    "kwargs, words",
    [case[1:] for case in EXPORT_CASES],
    ids=[case[0] for case in EXPORT_CASES],
)
def test_export_refuses_before_converting(kwargs, words, tmp_path):
    model = _export_model()
    snapshot = _snapshot(model)
    path = tmp_path / "model.tflite"
    path.write_bytes(b"an earlier file")
    with pytest.raises((ValueError, TypeError)) as info:
        keras_tt.export_tflite(model, str(path), **kwargs)
    message = str(info.value).lower()
    assert all(w.lower() in message for w in words), str(info.value)
    _assert_unchanged(model, snapshot)
    assert path.read_bytes() == b"an earlier file"
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


@pytest.mark.parametrize(
    "target, words",
    [("", ("`path`", "path=''")), (".", ("`path`", "folder", "path='.'"))],
    ids=["empty", "directory"],
)
def test_export_refuses_bad_paths(target, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path.parent))
    with pytest.raises(ValueError) as info:
        keras_tt.export_tflite(_export_model(), target)
    assert all(w.lower() in str(info.value).lower() for w in words)
    assert os.listdir(tmp_path) == []
    assert sorted(os.listdir(tmp_path.parent)) == before


def test_export_refuses_labels_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="`labels`"):
        keras_tt.export_tflite(
            _export_model(),
            str(tmp_path / "m.tflite"),
            validation_data=(_X, np.zeros(5, "int64")),
        )
    assert os.listdir(tmp_path) == []


def test_export_keras_file_never_writes_over_its_input(tmp_path):
    source = str(tmp_path / "model.keras")
    _export_model().save(source)
    digest = _digest(source)
    alias = str(tmp_path / "alias.tflite")
    os.symlink(source, alias)
    for target in (source, alias):
        with pytest.raises(ValueError, match="`output_path`.*overwritten"):
            keras_tt.export.export_keras_file(source, target)
    assert _digest(source) == digest


# --------------------------------------------------------------- inspect

INSPECT_CASES = [
    ("missing", lambda tmp: str(tmp / "nope.tflite"), ("nope.tflite",)),
    ("truncated", "truncated", ("not a valid .tflite",)),
    ("random_bytes", lambda tmp: os.urandom(64), ("not a valid .tflite",)),
    ("empty_bytes", lambda tmp: b"", ("not a valid .tflite",)),
    ("text_file", "text", ("not a valid .tflite",)),
    ("directory", lambda tmp: str(tmp), ("directory",)),
    ("none", lambda tmp: None, ("`source`",)),
    ("number", lambda tmp: 42, ("`source`", "42")),
]


def _inspect_source(kind, tmp_path):
    if callable(kind):
        return kind(tmp_path)
    if kind == "text":
        path = tmp_path / "notes.tflite"
        path.write_text("not a model")
        return str(path)
    path = tmp_path / "model.tflite"
    keras_tt.export_tflite(_export_model(), str(path), verbose=False)
    data = path.read_bytes()
    short = tmp_path / "short.tflite"
    short.write_bytes(data[: len(data) // 3])
    return str(short)


@pytest.mark.parametrize(
    "kind, words",
    [case[1:] for case in INSPECT_CASES],
    ids=[case[0] for case in INSPECT_CASES],
)
def test_inspect_refuses(kind, words, tmp_path):
    source = _inspect_source(kind, tmp_path)
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as info:
        keras_tt.inspect_tflite(source)
    message = str(info.value).lower()
    assert all(w.lower() in message for w in words), str(info.value)


# ------------------------------------------------------------------- CLI


def _run_cli(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "keras_tt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = folder / "model.keras"
    _mlp().save(str(model))
    (folder / "notes.keras").write_text("not a model")
    (folder / "data.txt").write_text("1 2 3")
    np.save(folder / "wide.npy", np.ones((4, 65), "float32"))
    os.symlink(model, folder / "alias.keras")
    return folder


CLI_CASES = [
    ("no_arguments", (), ("required", "command")),
    ("unknown_command", ("shrink", "model.keras"), ("shrink",)),
    (
        "missing_input",
        ("tensorize", "nope.keras", "o.keras", "--tt-rank", "4"),
        ("nope.keras",),
    ),
    (
        "text_named_keras",
        ("tensorize", "notes.keras", "o.keras", "--tt-rank", "4"),
        ("notes.keras", "not a valid .keras"),
    ),
    (
        "rank_zero",
        ("tensorize", "model.keras", "o.keras", "--tt-rank", "0"),
        ("--tt-rank", "0"),
    ),
    (
        "rank_word",
        ("tensorize", "model.keras", "o.keras", "--tt-rank", "four"),
        ("--tt-rank", "four"),
    ),
    (
        "rel_error_big",
        ("tensorize", "model.keras", "o.keras", "--rel-error", "3"),
        ("rel", "3"),
    ),
    (
        "output_is_input",
        ("tensorize", "model.keras", "model.keras", "--tt-rank", "4"),
        ("model.keras",),
    ),
    (
        "output_is_symlink_to_input",
        ("tensorize", "model.keras", "alias.keras", "--tt-rank", "4"),
        ("alias.keras",),
    ),
    (
        "export_over_input",
        ("export", "model.keras", "model.keras"),
        ("model.keras",),
    ),
    (
        "export_non_npy",
        (
            "export",
            "model.keras",
            "m.tflite",
            "--quantization",
            "int8",
            "--representative",
            "data.txt",
        ),
        ("data.txt", ".npy"),
    ),
    (
        "export_bad_quantization",
        ("export", "model.keras", "m.tflite", "--quantization", "int3"),
        ("int3",),
    ),
    (
        "export_wrong_width",
        (
            "export",
            "model.keras",
            "m.tflite",
            "--quantization",
            "int8",
            "--representative",
            "wide.npy",
        ),
        ("representative", "65"),
    ),
    ("inspect_missing", ("inspect", "nope.tflite"), ("nope.tflite",)),
    ("inspect_text", ("inspect", "data.txt"), ("data.txt",)),
]


@pytest.mark.parametrize(
    "args, words",
    [case[1:] for case in CLI_CASES],
    ids=[case[0] for case in CLI_CASES],
)
def test_cli_fails_with_one_line_and_status_2(args, words, cli_files):
    digests = {
        name: _digest(cli_files / name)
        for name in ("model.keras", "notes.keras", "data.txt", "wide.npy")
    }
    result = _run_cli(*args, cwd=cli_files)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if args:  # argparse prints its usage line before the error line
        assert "Traceback" not in result.stderr
        error_lines = [line for line in lines if not line.startswith(" ")]
        assert error_lines, result.stderr
    message = result.stderr.lower()
    assert all(w.lower() in message for w in words), result.stderr
    for name, digest in digests.items():
        assert _digest(cli_files / name) == digest
    assert not (cli_files / "o.keras").exists()
    assert not (cli_files / "m.tflite").exists()


@pytest.mark.slow
def test_infinite_calibration_value_is_refused_not_a_crash(tmp_path):
    """An Inf in int8 calibration data once crashed the converter (SIGSEGV);
    run in a subprocess so that a crash fails this test, not the run."""
    script = (
        "import numpy as np, keras, keras_tt\n"
        "m = keras.Sequential([keras.Input((16,)), "
        "keras_tt.TTDense(8, 2, in_modes=(4, 4))])\n"
        "x = np.ones((8, 16), 'float32'); x[2, 3] = np.inf\n"
        "try:\n"
        "    keras_tt.export_tflite(m, 'm.tflite', quantization='int8', "
        "representative_data=x)\n"
        "except ValueError as e:\n"
        "    print('REFUSED', e)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REFUSED" in result.stdout and "inf" in result.stdout.lower()
    assert not (tmp_path / "m.tflite").exists()
