"""Checks of `export_tflite`'s arguments, run before any conversion work."""

from __future__ import annotations

import math

import numpy as np

QUANTIZATIONS = (None, "float32", "float16", "dynamic", "int8")
IO_DTYPES = ("float32", "int8")


def check_backend() -> None:
    """Refuse to export under a Keras backend other than TensorFlow."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            "TFLite/LiteRT export needs the TensorFlow backend of Keras: the "
            "converter traces the model as a TensorFlow graph. Run with "
            "KERAS_BACKEND=tensorflow (set before Keras is imported). "
            f"Current backend: {backend!r}"
        )


def check_export_arguments(
    quantization, representative_data, batch_size, io_dtype, tolerance, verbose
) -> None:
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "Received an invalid value for `quantization`, expected one of "
            f"{QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected "
            "sample inputs (a NumPy array, or an iterable of batches) to "
            "calibrate the full-integer export with quantization='int8'. "
            "Received: representative_data=None"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(
            "Received an invalid value for `batch_size`, expected a positive "
            "integer or None (resizable batch). "
            f"Received: batch_size={batch_size!r}"
        )
    if io_dtype not in IO_DTYPES:
        raise ValueError(
            "Received an invalid value for `io_dtype`, expected one of "
            f"{IO_DTYPES}. Received: io_dtype={io_dtype!r}"
        )
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(
            "Received an invalid value for `io_dtype`, integer inputs and "
            "outputs need quantization='int8'. Received: "
            f"io_dtype={io_dtype!r} with quantization={quantization!r}"
        )
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float, np.integer, np.floating))
        or not math.isfinite(tolerance)
        or tolerance <= 0
    ):
        raise ValueError(
            "Received an invalid value for `tolerance`, expected a positive "
            "finite number (the largest relative error accepted for a "
            f"float32 export). Received: tolerance={tolerance!r}"
        )
    if verbose not in (0, 1, 2) or not isinstance(
        verbose, (bool, int, np.integer)
    ):
        raise ValueError(
            "Received an invalid value for `verbose`, expected 0 (silent), "
            "1 or 2 (print the report), as in `keras_tt.tensorize`; True and "
            f"False are 1 and 0. Received: verbose={verbose!r}"
        )
