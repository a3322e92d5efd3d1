"""keras_tt for `tf_keras` (Keras 2) and tensorflow-model-optimization.

tensorflow-model-optimization (tfmot) works on `tf_keras` models. This
package holds the `tf_keras` twins of keras_tt's layers and pass, sharing
their mathematics (modes, ranks, the einsum chain, TT-SVD), and what tfmot
needs from them:

* `TTDense`: a `tf_keras` TT layer, prunable and clusterable;
* `tensorize`: replace the Dense layers of a trained `tf_keras` model;
* `TTDenseQuantizeConfig`: 8-bit quantization-aware training that also
  quantizes every contraction step, for fully-int8 TFLite files;
* `export_tflite`: convert a (QAT, pruned, clustered) `tf_keras` model and
  report its ops and sizes.

Install with ``pip install keras-tt[tfmot]``. Nothing here is imported by
``import keras_tt``; `tf_keras` is imported with this package's modules and
tfmot only when a function that needs it runs (importing tfmot sets
``TF_USE_LEGACY_KERAS=1`` for the process).
"""

import importlib

_LAZY = {
    "TTDense": "keras_tt.tf_keras.layers",
    "dense_to_tt_dense": "keras_tt.tf_keras.layers",
    "tensorize": "keras_tt.tf_keras._tensorize",
    "model_report": "keras_tt.tf_keras._tensorize",
    "TTDenseQuantizeConfig": "keras_tt.tf_keras.quantization",
    "quantize_model": "keras_tt.tf_keras.quantization",
    "quantize_scope": "keras_tt.tf_keras.quantization",
    "register_tfmot": "keras_tt.tf_keras._tfmot",
    "strip_pruning": "keras_tt.tf_keras.export",
    "strip_clustering": "keras_tt.tf_keras.export",
    "export_tflite": "keras_tt.tf_keras.export",
    "TFLiteExport": "keras_tt.tf_keras.export",
}

_RENAMED = {"register_tfmot": "register"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(
            f"module 'keras_tt.tf_keras' has no attribute {name!r}"
        )
    module = importlib.import_module(_LAZY[name])
    value = getattr(module, _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
