"""Property-based tests: the guarantees hold for random shapes and data.

Bounded examples, no deadline: the whole module stays within a few seconds
per property on two cores.
"""

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_tt

pytestmark = pytest.mark.multibackend

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def tt_shapes(draw, max_cores=6, max_mode=4):
    """``(in_modes, out_modes, tt_rank)`` with 1..6 cores."""
    d = draw(st.integers(1, max_cores))
    in_modes = tuple(draw(st.integers(1, max_mode)) for _ in range(d))
    out_modes = tuple(draw(st.integers(1, max_mode)) for _ in range(d))
    # Keep the widths small enough for a dense reference.
    if math.prod(in_modes) > 512 or math.prod(out_modes) > 512:
        in_modes = in_modes[:3]
        out_modes = out_modes[:3]
    tt_rank = draw(st.integers(1, 5))
    return in_modes, out_modes, tt_rank


@SETTINGS
@pytest.mark.filterwarnings("ignore:.*exceeds the largest useful")
@given(
    shape=tt_shapes(),
    leading=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    dtype=st.sampled_from(["float32", "float64"]),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_equals_x_times_full_kernel_plus_bias(
    shape, leading, dtype, use_bias, seed
):
    if dtype == "float64" and keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            dtype = "float32"
    in_modes, out_modes, tt_rank = shape
    units = math.prod(out_modes)
    layer = keras_tt.TTDense(
        units,
        tt_rank,
        in_modes=in_modes,
        out_modes=out_modes,
        use_bias=use_bias,
        bias_initializer="random_normal",
        dtype=dtype,
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(*leading, math.prod(in_modes)))
    with np.errstate(all="ignore"):
        y = keras.ops.convert_to_numpy(layer(x.astype(dtype)))
    expected = x @ layer.full_kernel()
    if use_bias:
        expected = expected + keras.ops.convert_to_numpy(layer.bias)
    tol = 1e-4 if dtype == "float32" else 1e-10
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * scale)


@st.composite
def matrices(draw):
    in_modes, out_modes, _ = draw(tt_shapes(max_cores=4, max_mode=5))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(math.prod(in_modes), math.prod(out_modes)))
    # Give the spectrum some decay, as trained kernels have.
    return matrix * draw(st.floats(0.01, 100.0)), in_modes, out_modes


@SETTINGS
@pytest.mark.filterwarnings("ignore:.*exceeds the largest useful")
@given(data=matrices(), eps=st.floats(1e-3, 0.9))
def test_tt_svd_meets_its_error_bound(data, eps):
    matrix, in_modes, out_modes = data
    result = keras_tt.tt_svd(matrix, in_modes, out_modes, rel_error=eps)
    error = np.linalg.norm(matrix - keras_tt.full_matrix(result))
    assert error <= eps * np.linalg.norm(matrix) * (1 + 1e-6) + 1e-12
    assert result.rel_error <= eps * (1 + 1e-6)


@SETTINGS
@pytest.mark.filterwarnings("ignore:.*exceeds the largest useful")
@given(data=matrices(), eps=st.floats(1e-3, 0.5), cap=st.integers(1, 6))
def test_tt_round_never_increases_the_error_bound(data, eps, cap):
    matrix, in_modes, out_modes = data
    norm = np.linalg.norm(matrix)
    exact = keras_tt.tt_svd(matrix, in_modes, out_modes)
    rounded = keras_tt.tt_round(exact, rel_error=eps)
    error = np.linalg.norm(matrix - keras_tt.full_matrix(rounded))
    assert error <= eps * norm * (1 + 1e-6) + 1e-12
    # Rounding to a rank cap keeps ranks within it and loses no more than a
    # TT-SVD would need at the ranks it kept, up to the rounding's own bound.
    capped = keras_tt.tt_round(exact, max_rank=cap)
    assert max(capped.ranks) <= max(cap, 1)
    again = keras_tt.tt_round(capped, max_rank=cap)
    error_capped = np.linalg.norm(matrix - keras_tt.full_matrix(capped))
    error_again = np.linalg.norm(matrix - keras_tt.full_matrix(again))
    assert error_again <= error_capped * (1 + 1e-6) + 1e-9 * norm


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(shape=tt_shapes(max_cores=5), seed=st.integers(0, 2**16))
@pytest.mark.filterwarnings("ignore:.*exceeds the largest useful")
def test_exported_float32_file_matches_keras(shape, seed, tmp_path_factory):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("export needs the TensorFlow backend")
    interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")
    in_modes, out_modes, tt_rank = shape
    model = keras.Sequential(
        [
            keras.Input((math.prod(in_modes),)),
            keras_tt.TTDense(
                math.prod(out_modes),
                tt_rank,
                in_modes=in_modes,
                out_modes=out_modes,
                bias_initializer="random_normal",
            ),
        ]
    )
    path = str(tmp_path_factory.mktemp("export") / "model.tflite")
    keras_tt.export_tflite(model, path, batch_size=3, verbose=False)
    x = np.random.default_rng(seed).normal(size=(3, math.prod(in_modes)))
    x = x.astype("float32")
    interpreter = interpreter_lib.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
