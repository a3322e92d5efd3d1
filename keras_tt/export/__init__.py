"""Export to TFLite/LiteRT with builtin ops only, and checks of the result.

`export_tflite` converts a Keras model (TT layers and ordinary layers) to a
``.tflite`` file that the stock LiteRT runtime runs without the Flex
delegate, verifies it in the LiteRT interpreter and reports its size, ops,
op versions and minimum runtime version. `inspect_tflite` prints the same
facts for any ``.tflite`` file; `evaluate_tflite` measures accuracy and
latency on held-out data.

These functions need the LiteRT runtime: ``pip install ai-edge-litert``.
The export needs the TensorFlow backend of Keras; importing this package
does not import TensorFlow, so ``import keras_tt`` works on every backend.
"""

# Reading any .tflite file.
from keras_tt.export.inspect import OpInfo
from keras_tt.export.inspect import TensorInfo
from keras_tt.export.inspect import TFLiteInfo
from keras_tt.export.inspect import inspect_tflite

# What the export reports or raises.
from keras_tt.export.report import Comparison
from keras_tt.export.report import ExportReport
from keras_tt.export.report import UnsupportedOpError
from keras_tt.export.report import VerificationError

# Running .tflite files on NumPy data.
from keras_tt.export.runtime import TFLiteRunner
from keras_tt.export.runtime import evaluate_tflite

# Exporting a Keras model.
from keras_tt.export.tflite import export_keras_file
from keras_tt.export.tflite import export_tflite

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
