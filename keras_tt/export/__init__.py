"""Export to TFLite/LiteRT with builtin ops only, and checks of the result.

`export_tflite` converts a Keras model (TT layers and ordinary layers) to a
``.tflite`` file that the stock LiteRT runtime runs without the Flex
delegate, verifies it in the LiteRT interpreter and reports its size, ops,
op versions and minimum runtime version. `inspect_tflite` prints the same
facts for any ``.tflite`` file; `evaluate_tflite` measures accuracy and
latency on held-out data.

These functions need the LiteRT runtime: ``pip install ai-edge-litert``.
"""

# Exporting a Keras model.
from keras_tt.export.tflite import (
    Comparison,
    ExportReport,
    UnsupportedOpError,
    VerificationError,
    export_keras_file,
    export_tflite,
)

# Reading any .tflite file.
from keras_tt.export.inspect import OpInfo, TensorInfo, TFLiteInfo, inspect_tflite

# Running .tflite files on NumPy data.
from keras_tt.export.runtime import TFLiteRunner, evaluate_tflite

__all__ = [
    "Comparison",
    "ExportReport",
    "OpInfo",
    "TFLiteInfo",
    "TFLiteRunner",
    "TensorInfo",
    "UnsupportedOpError",
    "VerificationError",
    "evaluate_tflite",
    "export_keras_file",
    "export_tflite",
    "inspect_tflite",
]
