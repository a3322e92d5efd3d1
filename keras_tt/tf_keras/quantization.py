"""Quantization-aware training of the tf_keras TT layers with tfmot.

tensorflow-model-optimization's default 8-bit scheme fake-quantizes a
layer's weights and its output. A `TTDense` layer computes its output
through a chain of einsum contractions, and the converter needs a range for
every tensor in that chain to keep it in int8: without one it falls back to
float around the contractions. `TTDenseQuantizeConfig` therefore also
fake-quantizes the result of every contraction step, so that a converted
QAT model is int8 from its QUANTIZE op to its DEQUANTIZE op.

Importing this module imports tensorflow-model-optimization (which sets
``TF_USE_LEGACY_KERAS=1`` for the process).
"""

from __future__ import annotations

import tensorflow_model_optimization as tfmot
import tf_keras

from keras_tt.tf_keras import _tfmot
from keras_tt.tf_keras.layers import TTDense

_quantizers = tfmot.quantization.keras.quantizers


class _StepActivation:
    """The identity, named ``linear`` so that tfmot quantizes its output."""

    __name__ = "linear"

    def __call__(self, x):
        return x


class _NamedQuantizer(tfmot.quantization.keras.quantizers.Quantizer):
    """An activation quantizer whose range variables get their own name.

    tfmot names every activation range ``post_activation_min/max``; the
    steps of one layer need distinct names (``step_0_min``, ...).
    """

    def __init__(self, name):
        self.name = name
        self._quantizer = _quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False
        )

    def build(self, tensor_shape, name, layer):
        return self._quantizer.build(tensor_shape, self.name, layer)

    def __call__(self, inputs, training, weights, **kwargs):
        return self._quantizer(inputs, training, weights, **kwargs)

    def get_config(self):
        return {"name": self.name}

    def __eq__(self, other):
        return isinstance(other, _NamedQuantizer) and other.name == self.name

    def __ne__(self, other):
        return not self.__eq__(other)


@tf_keras.utils.register_keras_serializable(package="keras_tt")
class TTDenseQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """8-bit QAT of a tf_keras `TTDense`, intermediate results included.

    * Each core is fake-quantized per tensor, symmetric, narrow range (as
      tfmot quantizes a ``Dense`` kernel per tensor);
    * the result of every contraction step is fake-quantized with a
      moving-average range, asymmetric (as tfmot quantizes activations);
    * the output, after bias and activation, likewise.

    The bias stays float during training; the converter stores it in
    int32. `keras_tt.tf_keras` registers this config as the default one of
    `TTDense`, so ``tfmot.quantization.keras.quantize_model`` and
    ``quantize_apply`` use it without being told.

    Example:

    ```python
    import tensorflow_model_optimization as tfmot
    import keras_tt.tf_keras as ttk

    qat_model = tfmot.quantization.keras.quantize_model(model)
    # or, for some layers only:
    annotated = tfmot.quantization.keras.quantize_annotate_layer(
        ttk.TTDense(64, tt_rank=8), ttk.TTDenseQuantizeConfig())
    ```
    """

    def _check(self, layer):
        if not isinstance(layer, TTDense):
            raise ValueError(
                "Received an invalid value for `layer`, expected a "
                "keras_tt.tf_keras.TTDense layer. "
                f"Received: layer={type(layer).__name__}"
            )

    def get_weights_and_quantizers(self, layer):
        self._check(layer)
        return [
            (
                core,
                _quantizers.LastValueQuantizer(
                    num_bits=8,
                    per_axis=False,
                    symmetric=True,
                    narrow_range=True,
                ),
            )
            for core in layer.cores
        ]

    def get_activations_and_quantizers(self, layer):
        self._check(layer)
        output = (
            layer.activation,
            _quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            ),
        )
        steps = [
            (_StepActivation(), _NamedQuantizer(f"step_{k}"))
            for k in range(len(layer.in_modes))
        ]
        return [output, *steps]

    def set_quantize_weights(self, layer, quantize_weights):
        names = layer.core_names
        if len(quantize_weights) != len(names):
            raise ValueError(
                f"`set_quantize_weights` expected {len(names)} cores for "
                f"layer '{layer.name}'. Received: {len(quantize_weights)} "
                "weights"
            )
        for name, weight in zip(names, quantize_weights):
            setattr(layer, name, weight)

    def set_quantize_activations(self, layer, quantize_activations):
        expected = 1 + len(layer.in_modes)
        if len(quantize_activations) != expected:
            raise ValueError(
                f"`set_quantize_activations` expected {expected} activations "
                f"for layer '{layer.name}' (its output and one per "
                f"contraction step). Received: {len(quantize_activations)}"
            )
        layer.activation = quantize_activations[0]
        layer.step_quantizers = list(quantize_activations[1:])

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def quantize_model(model, quantized_layer_name_prefix="quant_"):
    """``tfmot.quantization.keras.quantize_model`` with TT layers registered.

    Equivalent to calling tfmot's function after
    `keras_tt.tf_keras.register_tfmot`. The model is not modified; the
    returned model has copies of its weights and no optimizer.
    """
    _tfmot.register()
    return tfmot.quantization.keras.quantize_model(
        model, quantized_layer_name_prefix=quantized_layer_name_prefix
    )


def quantize_scope(*args):
    """``tfmot.quantization.keras.quantize_scope`` that knows the TT layers.

    Load a saved QAT model inside it: QAT wrappers deserialise the layers
    they wrap by class name, which the registration alone does not cover
    for HDF5 files.

    ```python
    with keras_tt.tf_keras.quantize_scope():
        model = tf_keras.models.load_model("qat.h5")
    ```
    """
    objects = {
        "TTDense": TTDense,
        "TTDenseQuantizeConfig": TTDenseQuantizeConfig,
    }
    for extra in args:
        objects.update(extra)
    return tfmot.quantization.keras.quantize_scope(objects)
