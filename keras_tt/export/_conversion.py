"""From a Keras model to TFLite bytes: the serving function and converter.

The model is traced through a ``tf.function`` with an explicit input
signature and converted by ``tf.lite.TFLiteConverter`` restricted to the
builtin op sets, so the file runs on the stock LiteRT runtime without the
Flex (TF ops) delegate. TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import logging
import warnings

from keras_tt.export import _input_data


def input_specs(inputs, batch_size):
    """One ``tf.TensorSpec`` per `ModelInput`, named as in the file."""
    import tensorflow as tf

    return [
        tf.TensorSpec((batch_size,) + i.shape, i.dtype, name=i.name)
        for i in inputs
    ]


def _litert_contraction(quantization=None):
    """Trace TT layers with the plans chosen for LiteRT.

    Under ``contraction_scope("litert")`` each TT layer left on ``"auto"``
    gets the plan (chain, merged cores or the rebuilt kernel and one
    matmul) of least cost under the LiteRT cost model for its static
    shapes, and merged cores are computed in the file from the cores, never
    stored as constants: the file stays as small as the cores. A full-integer
    export keeps the chain for ``"auto"`` layers: its constant cores are
    quantised per channel, more accurately than computed merged cores.
    """
    from keras_tt import contraction_plans

    if quantization == "int8":
        return contraction_plans.contraction_scope(
            contraction_plans.LITERT_INT8
        )
    return contraction_plans.contraction_scope(contraction_plans.LITERT)


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def make_converter(model, specs, quantization, batches, io_dtype):
    """A builtin-ops-only ``TFLiteConverter`` for ``model``."""
    import tensorflow as tf

    @tf.function(input_signature=specs, autograph=False)
    def serve(*inputs):
        return model(_input_data.pack(model, inputs), training=False)

    with _litert_contraction(quantization):
        concrete = serve.get_concrete_function()
    # Without a trackable object the converter freezes the variables into
    # constants, so MatMuls against them lower to FULLY_CONNECTED; with one,
    # they stay resource variables (VAR_HANDLE / READ_VARIABLE, BATCH_MATMUL)
    # and int8 calibration fails. The converter logs a deprecation notice
    # for this choice, which is dropped here.
    absl_logger = logging.getLogger("absl")
    notice = _DropMessage("trackable_obj")
    absl_logger.addFilter(notice)
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    finally:
        absl_logger.removeFilter(notice)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Per-channel weights raise FULLY_CONNECTED to a version (12) that
        # only runtimes >= 2.17 load; per-tensor weights keep older ones.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True  # noqa: E501
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        converter.representative_dataset = lambda: iter(batches)
        if io_dtype == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter


def is_converter_error(error: BaseException) -> bool:
    """Whether ``error`` is tf.lite's ``ConverterError`` (not public)."""
    return type(error).__name__ == "ConverterError"


def convert(converter) -> bytes:
    """Run the converter, without its notice about int8 statistics."""
    with warnings.catch_warnings():
        # Emitted by the frozen-graph path for every int8 model; the
        # calibration supplies the statistics it asks for.
        warnings.filterwarnings(
            "ignore",
            message="Statistics for quantized inputs were expected",
        )
        return converter.convert()
