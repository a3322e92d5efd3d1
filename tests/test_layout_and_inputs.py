"""The single mode/rank resolver, width limits and what `TTDense` accepts."""

import math
import os
import zipfile

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt import modes

pytestmark = pytest.mark.multibackend


def _is_smooth(n):
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


def test_padded_width_is_the_smallest_7_smooth_width_at_or_above():
    for width in range(1, 3000):
        expected = next(w for w in range(width, 2 * width + 1) if _is_smooth(w))
        assert modes.padded_width(width) == expected


@pytest.mark.parametrize("width", [10**9 + 7, 2**31 - 1, 2**31 - 2])
def test_padded_width_of_huge_widths_is_smooth_and_close(width):
    padded = modes.padded_width(width)
    assert padded >= width and _is_smooth(padded)
    assert (padded - width) / width <= modes.MAX_PADDING_OVERHEAD


def test_padding_overhead_bound_holds_below_100k():
    worst = max((modes.padded_width(w) - w) / w for w in range(1, 100_000, 7))
    assert worst <= modes.MAX_PADDING_OVERHEAD


@pytest.mark.parametrize(
    "units, message",
    [
        (0, "expected a positive integer"),
        (-3, "expected a positive integer"),
        (2.0, "expected a positive integer"),
        (True, "expected a positive integer"),
        (10**12, "expected at most 2,147,483,647"),
        (2**61 - 1, "expected at most 2,147,483,647"),
    ],
)
def test_units_out_of_range_are_refused(units, message):
    with pytest.raises(ValueError, match=message) as info:
        keras_tt.TTDense(units, tt_rank=2)
    assert f"units={units!r}" in str(info.value)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((), "rank >= 2"),
        ((8,), "rank >= 2"),
        ((None, None), "must be known"),
        ((None, 0), "at least 1"),
        ((None, 2**31), "at most 2,147,483,647"),
    ],
)
def test_bad_input_shapes_are_refused_at_build(shape, message):
    with pytest.raises(ValueError, match=message) as info:
        keras_tt.TTDense(4, tt_rank=2).build(shape)
    assert "input_shape=" in str(info.value)


def test_resolve_layout_agrees_with_the_built_layer():
    for input_dim, units, given in [
        (1021, 10, {}),
        (784, 300, {"in_modes": (7, 4, 4, 7)}),
        (100, 96, {"out_modes": (4, 4, 6)}),
    ]:
        layout = modes.resolve_layout(input_dim, units, 3, **given)
        layer = keras_tt.TTDense(units, 3, **given)
        layer.build((None, input_dim))
        assert layer.layout == layout
        assert [tuple(c.shape) for c in layer.cores] == list(layout.core_shapes)
        assert layer.num_core_params == layout.num_params
        assert math.prod(layout.in_modes) == layout.padded_input_dim


def test_resolve_layout_names_the_caller_arguments():
    with pytest.raises(ValueError, match="`vocab_modes`"):
        modes.resolve_layout(
            100,
            8,
            2,
            in_modes=(3, 3),
            names=("input_dim", "output_dim", "vocab_modes", "embed_modes"),
        )


def test_integer_inputs_are_cast_like_dense():
    layer = keras_tt.TTDense(6, 2, in_modes=(2, 4))
    x = np.arange(24).reshape(3, 8).astype("int32")
    y = keras.ops.convert_to_numpy(layer(x))
    bias = keras.ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(
        y, x @ layer.full_kernel() + bias, rtol=1e-5, atol=1e-4
    )
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


def test_stored_weights_of_the_wrong_shape_are_refused(tmp_path):
    model = keras.Sequential([keras.Input((16,)), keras_tt.TTDense(8, 2)])
    path = str(tmp_path / "model.keras")
    model.save(path)
    # A config edited to claim another rank than the stored cores.
    tampered = str(tmp_path / "tampered.keras")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"tt_rank": 2', b'"tt_rank": 3')
                assert b'"tt_rank": 3' in data
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="but the file stores shapes"):
        keras.models.load_model(tampered)
    assert os.path.exists(path)


def test_one_rank_over_automatic_modes_is_a_quiet_cap():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layout = modes.resolve_layout(1000, 64, tt_rank=16)
    assert max(layout.ranks) <= 16
    assert layout.ranks == tuple(
        min(16, limit) if 0 < k < len(layout.ranks) - 1 else 1
        for k, limit in enumerate(
            modes.max_tt_ranks(layout.in_modes, layout.out_modes)
        )
    )
    with pytest.warns(UserWarning, match="exceeds the largest useful"):
        modes.resolve_layout(6, 6, tt_rank=50, in_modes=(2, 3))
    with pytest.warns(UserWarning, match="exceeds the largest useful"):
        modes.resolve_layout(6, 6, tt_rank=[50], in_modes=None)


def test_target_ratio_on_a_padded_width_counts_the_unpadded_kernel():
    dense = keras.Sequential(
        [keras.Input((1021,)), keras.layers.Dense(256, name="fc")]
    )
    tt = keras_tt.tensorize(dense, target_ratio=20, verbose=0)
    layer = tt.get_layer("fc")
    assert layer.padded_input_dim == 1024 > layer.input_dim == 1021
    ratio = 1021 * 256 / layer.num_core_params
    assert ratio >= 20
    # The largest uniform rank that reaches the ratio: one more misses it.
    inner = max(layer.tt_ranks)
    ranks = modes.resolve_tt_ranks(
        inner + 1, layer.in_modes, layer.out_modes, warn=False
    )
    from keras_tt.tt_matrix import num_tt_params

    assert (
        1021 * 256 / num_tt_params(layer.in_modes, layer.out_modes, ranks) < 20
    )
