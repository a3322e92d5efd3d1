"""TTEinsumDense against keras.layers.EinsumDense with the same kernel."""

import math

import keras
import numpy as np
import pytest
from tt_reference import naive_full_matrix

from keras_tt.layers.tt_einsum_dense import TTEinsumDense
from keras_tt.layers.tt_einsum_dense import parse_equation

pytestmark = pytest.mark.multibackend


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# (equation, output_shape, bias_axes, input_shape)
EQUATIONS = [
    ("ab,bc->ac", 6, "c", (3, 10)),
    ("abc,cd->abd", (None, 6), "d", (2, 4, 10)),
    ("abc,cde->abde", (None, 3, 4), "de", (2, 5, 12)),  # query/key/value
    ("abcd,cde->abe", (None, 8), "e", (2, 5, 3, 4)),  # attention output
    ("abc,cde->abde", (None, 3, 4), "e", (2, 5, 12)),  # bias over one axis
    ("abc,cde->abde", (5, 2, 7), None, (2, 5, 9)),  # padded widths
    ("...b,bc->...c", 6, "c", (2, 3, 4, 10)),
]

# Matrix products in other axis orders: Gemma and Llama attention
# (keras_hub), transposed kernels, permuted outputs.
REORDERED = [
    ("btd,ndh->btnh", (None, 3, 4), "nh", (2, 5, 12)),  # Gemma query
    ("bsd,kdh->bskh", (None, 2, 4), "h", (2, 5, 12)),  # Gemma key/value
    ("btnh,nhd->btd", (None, 8), "d", (2, 5, 3, 4)),  # Gemma output
    ("abc,dc->abd", (None, 6), "d", (2, 4, 10)),  # kernel transposed
    ("abc,cd->adb", (6, 4), "d", (2, 4, 10)),  # output permuted
    ("bqm,muh->bquh", (None, 3, 4), "uh", (2, 5, 12)),
    ("bkm,mvh->bkvh", (None, 3, 4), None, (2, 5, 12)),
    ("bquh,uhm->bqm", (None, 8), "m", (2, 5, 3, 4)),
    ("...d,hd->...h", 6, "h", (2, 3, 10)),
    ("abcd,ced->abe", (None, 7), "e", (2, 3, 4, 5)),  # contracted reordered
    ("abcd,dce->aeb", (6, 3), "e", (2, 3, 4, 5)),  # everything reordered
    ("acb,cd->abd", (None, 6), "d", (2, 10, 3)),  # input reordered
]


def _kernel_in_equation_order(matrix, parts, contracted_shape, free_shape):
    """A ``C x F`` matrix as the equation's kernel, by np.einsum."""
    tensor = matrix.reshape(contracted_shape + free_shape)
    return np.einsum(
        f"{parts.contracted}{parts.free}->{parts.kernel_spec}", tensor
    )


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, input_shape", EQUATIONS + REORDERED
)
def test_output_equals_einsum_dense_with_the_same_kernel(
    rng, equation, output_shape, bias_axes, input_shape
):
    tt = TTEinsumDense(
        equation,
        output_shape,
        tt_rank=3,
        bias_axes=bias_axes,
        bias_initializer="random_normal",
    )
    x = rng.standard_normal(input_shape).astype("float32")
    y = _numpy(tt(x))
    # Independent reference: the kernel rebuilt entry by entry from the
    # cores, in EinsumDense's own layer.
    cores = [_numpy(c).astype(np.float64) for c in tt.cores]
    matrix = naive_full_matrix(cores)[: tt.input_dim, : tt.units]
    kernel = _kernel_in_equation_order(
        matrix, tt.parts, tt.contracted_shape, tt.free_shape
    )
    dense = keras.layers.EinsumDense(
        equation, output_shape, bias_axes=bias_axes
    )
    dense.build(input_shape)
    dense.kernel.assign(kernel)
    if bias_axes:
        assert tuple(dense.bias.shape) == tuple(tt.bias.shape)
        dense.bias.assign(_numpy(tt.bias))
    expected = _numpy(dense(x))
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        tt.full_kernel(), _numpy(dense.kernel), atol=1e-5
    )
    assert tt.compute_output_shape(input_shape) == expected.shape


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, input_shape", EQUATIONS + REORDERED
)
def test_output_equals_np_einsum_of_the_full_kernel(
    rng, equation, output_shape, bias_axes, input_shape
):
    tt = TTEinsumDense(
        equation,
        output_shape,
        tt_rank=3,
        bias_axes=bias_axes,
        bias_initializer="random_normal",
    )
    x = rng.standard_normal(input_shape).astype("float32")
    y = _numpy(tt(x))
    expected = np.einsum(equation, x, tt.full_kernel())
    if bias_axes:
        expected = expected + _numpy(tt.bias)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, input_shape", EQUATIONS + REORDERED
)
def test_from_einsum_dense_at_full_rank_is_exact(
    rng, equation, output_shape, bias_axes, input_shape
):
    dense = keras.layers.EinsumDense(
        equation,
        output_shape,
        bias_axes=bias_axes,
        activation="tanh",
        bias_initializer="random_normal",
        name="proj",
    )
    dense.build(input_shape)
    tt = TTEinsumDense.from_einsum_dense(dense, tt_rank=10_000)
    x = rng.standard_normal(input_shape).astype("float32")
    np.testing.assert_allclose(
        _numpy(tt(x)), _numpy(dense(x)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        tt.full_kernel(), _numpy(dense.kernel), atol=1e-5
    )
    assert tt.name == "proj"
    # The dense kernel goes back into an EinsumDense unchanged.
    copy = keras.layers.EinsumDense(
        equation, output_shape, bias_axes=bias_axes, activation="tanh"
    )
    copy.build(input_shape)
    copy.set_weights(
        [tt.full_kernel()] + ([_numpy(tt.bias)] if bias_axes else [])
    )
    np.testing.assert_allclose(
        _numpy(copy(x)), _numpy(dense(x)), rtol=1e-4, atol=1e-5
    )


@pytest.mark.filterwarnings("ignore:Layer 'proj'.*more than")
@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, input_shape", REORDERED[:4]
)
def test_tensorize_replaces_reordered_einsum_dense(
    rng, equation, output_shape, bias_axes, input_shape
):
    import keras_tt

    inputs = keras.Input(input_shape[1:])
    hidden = keras.layers.EinsumDense(
        equation,
        output_shape,
        bias_axes=bias_axes,
        bias_initializer="random_normal",
        name="proj",
    )(inputs)
    outputs = keras.layers.Activation("tanh")(hidden)
    model = keras.Model(inputs, outputs)
    tt_model = keras_tt.tensorize(
        model, tt_rank=10_000, min_params=1, verbose=0
    )
    layer = tt_model.get_layer("proj")
    assert isinstance(layer, TTEinsumDense)
    x = rng.standard_normal(input_shape).astype("float32")
    np.testing.assert_allclose(
        _numpy(tt_model(x)), _numpy(model(x)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        layer.full_kernel(),
        _numpy(model.get_layer("proj").kernel),
        atol=1e-5,
    )


def test_inside_multi_head_attention_shapes(rng):
    # The four projections of a MultiHeadAttention, as Keras builds them.
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q = rng.standard_normal((2, 3, 8)).astype("float32")
    mha(q, q)
    for sub in (
        mha._query_dense,
        mha._key_dense,
        mha._value_dense,
        mha._output_dense,
    ):
        parse_equation(sub.equation)  # all expressible
        tt = TTEinsumDense.from_einsum_dense(sub, tt_rank=100)
        shape = (2, 3) + tuple(sub.kernel.shape)[: -len(tt.free_shape)]
        x = rng.standard_normal(shape).astype("float32")
        np.testing.assert_allclose(
            _numpy(tt(x)), _numpy(sub(x)), rtol=1e-4, atol=1e-5
        )


def test_rank_truncation_meets_error_budget(rng):
    dense = keras.layers.EinsumDense("abc,cd->abd", (None, 32))
    dense.build((None, 4, 64))
    tt = TTEinsumDense.from_einsum_dense(dense, rel_error=0.6)
    kernel = _numpy(dense.kernel)
    error = np.linalg.norm(tt.full_kernel() - kernel) / np.linalg.norm(kernel)
    assert error <= 0.6
    assert tt.num_core_params < kernel.size


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, input_shape",
    [EQUATIONS[2], REORDERED[0], REORDERED[2], REORDERED[10]],
)
def test_config_and_keras_file_round_trip(
    tmp_path, rng, equation, output_shape, bias_axes, input_shape
):
    inputs = keras.Input(input_shape[1:])
    outputs = TTEinsumDense(
        equation,
        output_shape,
        tt_rank=2,
        bias_axes=bias_axes,
        bias_initializer="random_normal",
    )(inputs)
    model = keras.Model(inputs, outputs)
    x = rng.standard_normal(input_shape).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], TTEinsumDense)
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)))


def test_training_reduces_the_loss(rng):
    inputs = keras.Input((4, 6))
    outputs = TTEinsumDense("abc,cd->abd", (None, 3), 2, bias_axes="d")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.05), "mse")
    x = rng.standard_normal((64, 4, 6)).astype("float32")
    y = x[..., :3] * 2
    history = model.fit(x, y, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_kernel_variance_is_glorot_of_the_matrix():
    variances = []
    for seed in range(20):
        layer = TTEinsumDense(
            "abc,cde->abde",
            (None, 4, 16),
            tt_rank=4,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        )
        layer.build((None, None, 48))
        variances.append(np.mean(layer.full_kernel() ** 2))
    assert np.mean(variances) == pytest.approx(2 / (48 + 64), rel=0.15)


@pytest.mark.parametrize(
    "equation, reason",
    [
        ("abc,acd->abd", "a batched kernel"),
        ("btnd,ndh->btnh", "a batched kernel"),
        ("bsd,ndh->bnh", "in neither the kernel nor the output"),
        ("abc,cd->ad", "a plain sum over the input"),
        ("abc,cde->abd", "a plain sum over the kernel"),
        ("abc,cd->abdz", "output axes \\['z'\\] are in neither"),
        ("ab,cd->abcd", "no axis is contracted"),
        ("abc,bc->a", "the kernel has no output axis"),
        ("ab...,bc->...c", "expected 'input,kernel->output'"),
        ("...b,bc->c", "'...' must start both"),
        ("aab,bc->ac", "the input repeats an axis"),
        ("ab,bcc->acc", "the kernel repeats an axis"),
        ("ab,bc->acc", "the output repeats an axis"),
    ],
)
def test_inexpressible_equations_are_refused_with_the_reason(equation, reason):
    with pytest.raises(ValueError, match=reason) as error:
        TTEinsumDense(equation, 4, tt_rank=2)
    assert "`equation`" in str(error.value)
    assert f"Received: equation={equation!r}" in str(error.value)


def test_bad_arguments_are_named():
    with pytest.raises(
        ValueError, match="`bias_axes`.*Received: bias_axes='b'"
    ):
        TTEinsumDense("abc,cd->abd", (None, 4), 2, bias_axes="b")
    with pytest.raises(ValueError, match="`output_shape`"):
        TTEinsumDense("abc,cde->abde", 4, 2)
    with pytest.raises(ValueError, match="`out_modes`, expected modes whose"):
        TTEinsumDense("abc,cd->abd", (None, 6), 2, out_modes=(2, 2))
    with pytest.raises(ValueError, match="expects inputs of rank 3"):
        TTEinsumDense("abc,cd->abd", (None, 6), 2).build((None, 4))
    with pytest.raises(ValueError, match="expected a `keras.layers.EinsumD"):
        TTEinsumDense.from_einsum_dense(keras.layers.Dense(3), tt_rank=2)


def test_parameter_count_matches_the_layout():
    layer = TTEinsumDense(
        "abc,cde->abde",
        (None, 12, 64),
        tt_rank=8,
        in_modes=(8, 12, 8),
        out_modes=(8, 12, 8),
        bias_axes="de",
    )
    layer.build((None, None, 768))
    expected = sum(
        math.prod(s) for s in [(1, 8, 8, 8), (8, 12, 12, 8), (8, 8, 8, 1)]
    )
    assert layer.num_core_params == expected
    assert layer.count_params() == expected + 768


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="LiteRT export runs on the TensorFlow backend only",
)
@pytest.mark.parametrize(
    "equation, inner, output_shape",
    [
        ("abc,cde->abde", (5, 32), (None, 4, 8)),
        ("...b,bc->...c", (5, 3, 32), 12),
        ("btd,ndh->btnh", (5, 32), (None, 4, 8)),
    ],
)
def test_resizable_batch_export_of_nd_inputs_matches_keras(
    tmp_path, equation, inner, output_shape
):
    pytest.importorskip("ai_edge_litert")
    import keras_tt

    keras.utils.set_random_seed(0)
    inputs = keras.Input(inner)
    layer = TTEinsumDense(
        equation,
        output_shape,
        tt_rank=3,
        bias_axes=parse_equation(equation).free,
        bias_initializer="ones",
    )
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "m.tflite")
    report = keras_tt.export_tflite(model, path, verbose=0)
    assert report.info.builtin_only
    assert {c.runtime for c in report.comparisons} >= {"compiled_model"}
    assert len({c.batch_size for c in report.comparisons}) >= 2
    assert report.relative_error < 1e-5
    x = np.random.default_rng(1).normal(size=(3, *inner)).astype("float32")
    expected = np.einsum(
        equation, x, layer.full_kernel()
    ) + keras.ops.convert_to_numpy(layer.bias)
    got = keras_tt.export.TFLiteRunner(path).predict(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_data_aware_init_reads_inputs_in_the_equations_axis_order(rng):
    # 'acb,cd->abd' on x is 'abc,cd->abd' on x with its last two axes
    # swapped: data-aware initialisation must give both the same cores.
    from keras_tt.data_aware import data_aware_init
    from keras_tt.tensorize import tensorize

    scales = np.exp(rng.normal(size=64) * 1.5).astype("float32")
    x = rng.standard_normal((60, 3, 64)).astype("float32") * scales
    kernel = rng.standard_normal((64, 32)).astype("float32")
    results = []
    for equation, inputs in (
        ("abc,cd->abd", x),
        ("acb,cd->abd", np.swapaxes(x, 1, 2)),
    ):
        model = keras.Sequential(
            [
                keras.Input(inputs.shape[1:]),
                keras.layers.EinsumDense(equation, (None, 32), name="proj"),
            ]
        )
        model.get_layer("proj").kernel.assign(kernel)
        tt_model = tensorize(model, tt_rank=3, min_params=1, verbose=0)
        [record] = data_aware_init(tt_model, model, inputs)
        assert record.kept
        results.append((record, tt_model.get_layer("proj").full_kernel()))
    (canonical, first), (reordered, second) = results
    assert reordered.error_after == pytest.approx(canonical.error_after, 1e-4)
    np.testing.assert_allclose(second, first, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "equation, output_shape, input_shape, in_modes",
    [
        ("abc,cd->abd", (None, 48), (3, 40, 60), (6, 10)),
        ("abc,cde->abde", (None, 4, 12), (2, 40, 61), None),  # 61 padded
        ("abcd,cde->abe", (None, 30), (2, 40, 8, 6), (6, 8)),
    ],
)
def test_every_contraction_equals_the_einsum_of_the_full_kernel(
    equation, output_shape, input_shape, in_modes
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")
    outputs = {}
    for contraction in ("chain", "dense", "auto"):
        keras.utils.set_random_seed(1)
        layer = TTEinsumDense(
            equation,
            output_shape,
            tt_rank=5,
            in_modes=in_modes,
            bias_axes=equation.split("->")[1][-1],
            bias_initializer="random_normal",
            contraction=contraction,
        )
        outputs[contraction] = _numpy(layer(x))
        assert layer.get_config()["contraction"] == contraction
        expected = np.einsum(equation, x, layer.full_kernel())
        expected = expected + _numpy(layer.bias)
        np.testing.assert_allclose(
            outputs[contraction], expected, rtol=1e-4, atol=1e-4
        )
    if input_shape[-1] == 61:  # the padded case pads its input
        assert layer.padded_input_dim > layer.input_dim
    with pytest.raises(ValueError, match="contraction"):
        TTEinsumDense(equation, output_shape, tt_rank=4, contraction="fast")


def test_auto_plans_for_the_rows_of_the_call():
    layer = TTEinsumDense(
        "abc,cd->abd",
        (None, 1024),
        tt_rank=8,
        in_modes=(4, 8, 8, 4),
        out_modes=(4, 8, 8, 4),
    )
    layer.build((None, None, 1024))
    one, many = layer.contraction_plan(1), layer.contraction_plan(4096)
    assert not one.is_dense and many.is_dense
    restored = TTEinsumDense.from_config(layer.get_config())
    assert restored.contraction == "auto"
