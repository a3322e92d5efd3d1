"""Making tensorflow-model-optimization aware of the tf_keras TT layers.

Importing tensorflow-model-optimization sets ``TF_USE_LEGACY_KERAS=1`` for
the whole process, so keras_tt never imports it on its own: the layers are
registered with it when it is already loaded (when a layer is created, when
`keras_tt.tf_keras` is imported) or when a keras_tt function that needs it
is called (`register`).
"""

from __future__ import annotations

import sys

_MODULE = "tensorflow_model_optimization"
_registered = False


def import_tfmot():
    """``tensorflow_model_optimization``, with a clear error when missing."""
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as error:
        raise ImportError(
            "This needs tensorflow-model-optimization and tf_keras: "
            "`pip install keras-tt[tfmot]`."
        ) from error
    return tfmot


def register_if_loaded() -> None:
    """`register`, if tensorflow-model-optimization is already imported."""
    if not _registered and _MODULE in sys.modules:
        register()


def register() -> None:
    """Register the tf_keras TT layers with tensorflow-model-optimization.

    * ``TTDense`` becomes a virtual subclass of tfmot's ``ClusterableLayer``
      and ``PrunableLayer`` (it has the methods both ask for), so
      ``cluster_weights`` and ``prune_low_magnitude`` accept it;
    * `TTDenseQuantizeConfig` becomes the default 8-bit quantization config
      of ``TTDense``, so ``quantize_model`` and ``quantize_apply`` of an
      annotated model quantize it without a ``quantize_config`` argument.

    Idempotent; imports tensorflow-model-optimization.
    """
    global _registered
    if _registered:
        return
    tfmot = import_tfmot()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E501
        default_8bit_quantize_registry as registry_lib,
    )

    from keras_tt.tf_keras.layers import TTDense
    from keras_tt.tf_keras.quantization import TTDenseQuantizeConfig

    tfmot.clustering.keras.ClusterableLayer.register(TTDense)
    tfmot.sparsity.keras.PrunableLayer.register(TTDense)
    # The default registry maps layer classes to `_QuantizeInfo` records,
    # or directly to a `QuantizeConfig` (as it does for `Activation`): an
    # entry of the second kind, tagged with the layer class, is returned
    # as it is by `get_quantize_config`.
    infos = registry_lib.Default8BitQuantizeRegistry._LAYER_QUANTIZE_INFO
    if not any(getattr(i, "layer_type", None) is TTDense for i in infos):
        config = TTDenseQuantizeConfig()
        config.layer_type = TTDense
        infos.append(config)
    _registered = True
