"""QAT, pruning and clustering of tf_keras TT models, and their export."""

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")
tfmot = pytest.importorskip("tensorflow_model_optimization")

from keras_tt.tf_keras import TTDense  # noqa: E402
from keras_tt.tf_keras import TTDenseQuantizeConfig  # noqa: E402
from keras_tt.tf_keras import export_tflite  # noqa: E402
from keras_tt.tf_keras import quantize_scope  # noqa: E402
from keras_tt.tf_keras import register_tfmot  # noqa: E402

pytestmark = pytest.mark.tfmot

quantize = tfmot.quantization.keras
sparsity = tfmot.sparsity.keras
clustering = tfmot.clustering.keras


def _model(input_dim=196, activation="relu"):
    inputs = tf_keras.Input((input_dim,))
    h = TTDense(60, 4, activation=activation, name="tt")(inputs)
    outputs = tf_keras.layers.Dense(10, name="head")(h)
    return tf_keras.Model(inputs, outputs)


def _data(rng, input_dim=196, n=256):
    x = rng.standard_normal((n, input_dim)).astype("float32")
    return x, (np.abs(x[:, :10]).argmax(axis=1)).astype("int32")


def _fit(model, x, y, epochs=2, callbacks=None):
    model.compile(
        tf_keras.optimizers.Adam(1e-3),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks
    )
    return model


class _NoStepsConfig(TTDenseQuantizeConfig):
    """tfmot's default behaviour: weights and output only."""

    def get_activations_and_quantizers(self, layer):
        return super().get_activations_and_quantizers(layer)[:1]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]


@pytest.mark.parametrize(
    "input_dim, activation", [(196, "relu"), (97, None), (200, "tanh")]
)
def test_quantize_model_gives_an_int8_file_from_quantize_to_dequantize(
    rng, tmp_path, input_dim, activation
):
    x, y = _data(rng, input_dim)
    model = _model(input_dim, activation)
    qat = _fit(quantize.quantize_model(model), x, y, epochs=1)
    wrapper = qat.get_layer("quant_tt")
    assert isinstance(wrapper.layer, TTDense)
    steps = [w for w in wrapper.weights if "step_" in w.name]
    assert len(steps) == 2 * len(wrapper.layer.in_modes)
    # Every step range was learnt from data.
    assert all(float(np.abs(w.numpy())) > 0 for w in steps)
    result = export_tflite(qat, tmp_path / "qat.tflite", quantization="int8")
    assert result.qat and result.int8_only, result.float_ops
    assert result.info.builtin_only
    assert {"QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED"} <= set(
        result.op_counts
    )
    # The file computes what the QAT model emulates.
    assert result.relative_error < 0.05


def test_without_step_ranges_the_converter_falls_back_to_float(rng, tmp_path):
    x, y = _data(rng)
    annotated = tf_keras.models.clone_model(
        _model(),
        clone_function=lambda layer: (
            quantize.quantize_annotate_layer(
                layer.__class__.from_config(layer.get_config()),
                _NoStepsConfig(),
            )
            if isinstance(layer, TTDense)
            else layer.__class__.from_config(layer.get_config())
        ),
    )
    with quantize.quantize_scope({"_NoStepsConfig": _NoStepsConfig}):
        qat = _fit(quantize.quantize_apply(annotated), x, y, epochs=1)
    result = export_tflite(qat, tmp_path / "qat.tflite", quantization="int8")
    assert result.float_ops  # the contraction chain stays in float


def test_annotate_and_apply_with_the_explicit_config(rng):
    x, y = _data(rng)
    inputs = tf_keras.Input((196,))
    h = quantize.quantize_annotate_layer(
        TTDense(60, 4, activation="relu", name="tt"), TTDenseQuantizeConfig()
    )(inputs)
    outputs = tf_keras.layers.Dense(10, name="head")(h)
    annotated = quantize.quantize_annotate_model(
        tf_keras.Model(inputs, outputs)
    )
    qat = quantize.quantize_apply(annotated)
    float_out = _model()(x)  # shapes only
    assert qat(x).shape == float_out.shape


def test_qat_model_saves_and_reloads(rng, tmp_path):
    x, _ = _data(rng, n=8)
    qat = quantize.quantize_model(_model())
    # tfmot's own QuantizeLayer does not reload from the `.keras` format
    # in tfmot 0.8.1; HDF5 is the format its guides use.
    path = str(tmp_path / "qat.h5")
    qat.save(path)
    with quantize_scope():
        loaded = tf_keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), qat(x).numpy(), atol=1e-5)


def test_qat_starts_close_to_the_float_model(rng):
    x, y = _data(rng)
    model = _fit(_model(), x, y, epochs=2)
    qat = quantize.quantize_model(model)
    # Calibrate the moving-average ranges, without changing the weights.
    for _ in range(5):
        qat(x, training=True)
    float_out, qat_out = model(x).numpy(), qat(x).numpy()
    error = np.linalg.norm(qat_out - float_out) / np.linalg.norm(float_out)
    assert error < 0.1


def test_pruning_the_cores_and_stripping(rng, tmp_path):
    x, y = _data(rng, 784)
    model = _model(784)
    # prune_low_magnitude wraps the model's own layers: export it first.
    dense = export_tflite(model, tmp_path / "float.tflite")
    schedule = sparsity.ConstantSparsity(0.75, begin_step=0, frequency=1)
    pruned = sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
    _fit(pruned, x, y, epochs=2, callbacks=[sparsity.UpdatePruningStep()])
    stripped = sparsity.strip_pruning(pruned)
    layer = stripped.get_layer("tt")
    assert isinstance(layer, TTDense)
    for core in layer.cores:
        zeros = float(np.mean(core.numpy() == 0))
        assert zeros == pytest.approx(0.75, abs=0.02)
    np.testing.assert_allclose(
        stripped(x).numpy(), pruned(x).numpy(), atol=1e-5
    )
    small = export_tflite(stripped, tmp_path / "pruned.tflite")
    assert small.zipped_size < dense.zipped_size
    assert small.relative_error < 1e-5


def test_clustering_the_cores(rng, tmp_path):
    x, y = _data(rng)
    model = _fit(_model(), x, y, epochs=1)
    register_tfmot()
    clustered = clustering.cluster_weights(
        model,
        number_of_clusters=8,
        cluster_centroids_init=clustering.CentroidInitialization.LINEAR,
    )
    _fit(clustered, x, y, epochs=1)
    stripped = clustering.strip_clustering(clustered)
    layer = stripped.get_layer("tt")
    assert isinstance(layer, TTDense)
    for core in layer.cores:
        assert len(np.unique(core.numpy())) <= 8
    np.testing.assert_allclose(
        stripped(x).numpy(), clustered(x).numpy(), atol=1e-4
    )
    result = export_tflite(stripped, tmp_path / "clustered.tflite")
    assert result.relative_error < 1e-5


def test_post_training_int8_export_is_int8_too(rng, tmp_path):
    x, y = _data(rng)
    model = _fit(_model(97, None), x[:, :97], y, epochs=1)
    result = export_tflite(
        model,
        tmp_path / "ptq.tflite",
        quantization="int8",
        representative_data=x[:, :97],
    )
    assert result.int8_only and not result.qat
    with pytest.raises(ValueError, match="representative_data"):
        export_tflite(model, tmp_path / "x.tflite", quantization="int8")
    with pytest.raises(ValueError, match="`quantization`"):
        export_tflite(model, tmp_path / "x.tflite", quantization="int4")
