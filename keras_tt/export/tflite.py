"""`export_tflite`: a Keras model to a verified, builtin-only ``.tflite``.

This module runs the export's stages in order; each stage lives in its own
private module: argument checks (`_arguments`), the conversion
(`_conversion`), tracing unsupported ops back to layers (`_op_audit`),
calibration data (`_input_data`), the comparison with Keras
(`_verification`) and the atomic write (`_files`). The file is first written
next to its destination under a temporary name, checked in the LiteRT
interpreter, and only then moved into place.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import zipfile
from typing import Any

import numpy as np

from keras_tt.export import _arguments
from keras_tt.export import _conversion
from keras_tt.export import _files
from keras_tt.export import _input_data
from keras_tt.export import _op_audit
from keras_tt.export import _verification
from keras_tt.export.inspect import inspect_tflite
from keras_tt.export.report import ExportReport
from keras_tt.export.report import VerificationError
from keras_tt.export.runtime import RUNTIMES

# A float32 export must match Keras to this relative error (Frobenius norm
# of the difference over that of the Keras outputs).
FLOAT32_TOLERANCE = 1e-5


def export_tflite(
    model,
    path: str | os.PathLike,
    quantization: str | None = None,
    representative_data: Any = None,
    batch_size: int | None = None,
    io_dtype: str = "float32",
    validation_data: Any = None,
    tolerance: float = FLOAT32_TOLERANCE,
    verbose: int = 1,
) -> ExportReport:
    """Export a Keras model to a ``.tflite`` file that needs builtin ops only.

    The model is traced with an explicit input signature, converted with
    ``tf.lite.TFLiteConverter`` restricted to the builtin op sets (never
    ``SELECT_TF_OPS``), written under a temporary name beside ``path``,
    verified, and moved to ``path`` only if verification passes. The user's
    model is not modified.

    Verification loads the file in the LiteRT ``Interpreter``
    (``ai_edge_litert``) with its default XNNPACK delegate and with the
    reference kernels alone, and through the ``CompiledModel`` API (the
    one Android apps use) on the CPU accelerator; it checks that every op
    is a builtin (and, for ``"int8"``, that the file computes in int8),
    runs it at batch 1 and, for a resizable batch, after resizing to a
    larger batch, and compares with the Keras model's outputs. A float32
    export must match within ``tolerance`` (relative error, Frobenius norm
    of the difference over that of the Keras outputs); for quantised
    exports the error (and, with labels, the accuracy change) is reported.
    NaN or infinite outputs on either side fail verification.

    Args:
        model: a Keras model with known inputs (Functional or Sequential),
            which may hold `keras_tt.TTDense` and ordinary layers.
        path: where to write the ``.tflite`` file.
        quantization: ``None`` or ``"float32"`` (no quantisation),
            ``"float16"`` (weights stored as float16), ``"dynamic"``
            (dynamic-range: int8 weights for tensors of at least 1024
            elements, float activations) or ``"int8"`` (full integer,
            calibrated on ``representative_data``; every op quantised, TT
            cores included).
        representative_data: calibration inputs for ``"int8"``: samples (an
            array for a one-input model, a list of arrays in
            ``model.inputs`` order, or a dict keyed by input name), each
            used as a batch of one; an iterable of batches (each in one of
            those forms); or a callable returning such an iterable. A few
            hundred samples suffice. With the other modes it only supplies
            the verification samples. Every array keeps its input's dtype:
            token ids stay integers.
        batch_size: ``None`` for a resizable batch axis (the default), or a
            fixed batch size.
        io_dtype: for ``"int8"``, ``"float32"`` inputs and outputs (the
            model quantises on entry and dequantises on exit) or
            ``"int8"`` (the caller quantises with the input tensor's scale
            and zero point).
        validation_data: inputs ``x`` (in a form accepted for
            ``representative_data`` samples) or a tuple ``(x, labels)`` to
            compare on; defaults to the representative data, else to random
            inputs: normal floats, and for an integer input ids below the
            size of the smallest lookup table (``keras.layers.Embedding``)
            it feeds. An integer input that feeds none needs data.
        tolerance: largest relative error accepted for a float32 export.
        verbose: 0 for silence; 1 or 2 to print the report (``True`` and
            ``False`` count as 1 and 0), as in `keras_tt.tensorize`.

    Returns:
        An `ExportReport`: file size, op types and versions, minimum runtime
        version, the comparisons with Keras and, with labels, the accuracy
        of both models.

    Raises:
        ValueError: for invalid arguments.
        UnsupportedOpError: (a `ValueError`) when a layer needs an op that is
            not a LiteRT builtin; it names the op and the layer, and no file
            is written.
        VerificationError: when the converted model does not load or run in
            the interpreter, or a float32 export does not match Keras; no
            file is written.

    Example:

    >>> import os, tempfile
    >>> import numpy as np, keras, keras_tt
    >>> from keras_tt.export import export_tflite
    >>> model = keras.Sequential([
    ...     keras.Input((256,)),
    ...     keras_tt.TTDense(64, tt_rank=4, activation="relu"),
    ...     keras.layers.Dense(10),
    ... ])
    >>> folder = tempfile.mkdtemp()
    >>> report = export_tflite(model, os.path.join(folder, "m.tflite"),
    ...                        verbose=0)
    >>> report.info.builtin_only, report.relative_error < 1e-5
    (True, True)
    >>> # The plan the export took for one row (a resizable batch):
    >>> from keras_tt.contraction_plans import contraction_scope
    >>> with contraction_scope("litert"):
    ...     print(model.layers[0].contraction_plan(1).name)
    chain, right_to_left
    >>> x = np.random.default_rng(0).normal(size=(32, 256)).astype("float32")
    >>> report = export_tflite(model, os.path.join(folder, "m_int8.tflite"),
    ...                        quantization="int8", representative_data=x,
    ...                        verbose=0)
    >>> report.quantization, report.info.builtin_only
    ('int8', True)
    """

    # 1. Check the arguments and the data before any work.
    _arguments.check_backend()
    _arguments.check_export_arguments(
        quantization,
        representative_data,
        batch_size,
        io_dtype,
        tolerance,
        verbose,
    )
    if quantization == "float32":
        quantization = None
    path, folder = _files.check_output_path(path)
    inputs = _input_data.model_inputs(model)
    batches = None
    if representative_data is not None:
        batches = _input_data.calibration_batches(
            representative_data, inputs, batch_size
        )
        if quantization == "int8":
            _input_data.check_calibration_range(batches, inputs)
    arrays, labels, source = _verification.samples(
        model, inputs, validation_data, batches
    )

    # 2. Convert with builtin ops only; name the ops and layers that block it.
    specs = _conversion.input_specs(inputs, batch_size)
    converter = _conversion.make_converter(
        model, specs, quantization, batches, io_dtype
    )
    try:
        content = _conversion.convert(converter)
    except Exception as error:
        if not _conversion.is_converter_error(error):
            raise
        _op_audit.raise_unsupported(error, model, quantization)

    # 3. Write beside the destination under a temporary name.
    temp_path = _files.write_temporary(content, folder)
    try:
        # 4. Check the op list: builtins only, and integer ops for "int8".
        info = inspect_tflite(temp_path)
        _op_audit.check_builtin_only(info)
        if quantization == "int8":
            _op_audit.check_full_integer(info)

        # 5. Run it in the Interpreter (XNNPACK, reference kernels) and
        #    through the CompiledModel API; compare each with Keras.
        reference = _verification.keras_outputs(model, arrays)
        _verification.check_finite(reference, "Keras model's")
        comparisons, tflite_outputs = [], None
        for runtime in RUNTIMES:
            try:
                checks, outputs = _verification.compare(
                    temp_path, inputs, arrays, reference, batch_size, runtime
                )
            except (RuntimeError, ValueError) as error:
                if isinstance(error, VerificationError):
                    raise
                raise VerificationError(
                    f"The exported model fails in the LiteRT interpreter "
                    f"(runtime={runtime}): {error}"
                ) from error
            comparisons.extend(checks)
            if tflite_outputs is None:
                tflite_outputs = outputs
        try:
            comparisons.extend(
                _verification.compare_compiled_model(
                    temp_path, info, inputs, arrays, reference, batch_size
                )
            )
        except (RuntimeError, ValueError) as error:
            if isinstance(error, VerificationError):
                raise
            raise VerificationError(
                "The exported model fails through LiteRT's CompiledModel "
                f"API (CPU accelerator): {error}"
            ) from error
        checked_tolerance = tolerance if quantization is None else None
        if checked_tolerance is not None:
            _verification.check_tolerance(comparisons, checked_tolerance)
        keras_accuracy = tflite_accuracy = None
        if labels is not None:
            keras_accuracy = _verification.accuracy(reference, labels)
            tflite_accuracy = _verification.accuracy(tflite_outputs, labels)

        # 6. Move into place, with the permissions of a newly created file.
        _files.publish(temp_path, path)
    except BaseException:
        _files.remove_quietly(temp_path)
        raise

    # 7. Report, with what was actually quantised.
    notes = _op_audit.quantization_warnings(quantization, info)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    report = ExportReport(
        path=path,
        quantization=quantization,
        info=dataclasses.replace(info, path=path),
        comparisons=tuple(comparisons),
        tolerance=checked_tolerance,
        num_samples=len(arrays[0]),
        sample_source=source,
        keras_accuracy=keras_accuracy,
        tflite_accuracy=tflite_accuracy,
        warnings=tuple(notes),
    )
    if verbose:
        print(report.summary())
    return report


def export_keras_file(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike,
    quantization: str | None = None,
    representative_path: str | os.PathLike | None = None,
    batch_size: int | None = None,
    io_dtype: str = "float32",
    verbose: int = 1,
) -> ExportReport:
    """`export_tflite` for a saved ``.keras`` model and a ``.npy`` of samples.

    This is what ``keras-tt export IN.keras OUT.tflite`` runs.

    Args:
        model_path: a model saved with ``model.save("m.keras")``; keras_tt
            layers are registered, so no ``custom_objects`` are needed.
        output_path: the ``.tflite`` file to write.
        quantization: as for `export_tflite`.
        representative_path: a ``.npy`` file of sample inputs (first axis:
            samples), used to calibrate ``"int8"`` and to verify.
        batch_size: as for `export_tflite`.
        io_dtype: as for `export_tflite`.
        verbose: 0 for silence; 1 or 2 to print the report (``True`` and
            ``False`` count as 1 and 0), as in `keras_tt.tensorize`.

    Returns:
        The `ExportReport`.
    """
    _arguments.check_backend()
    _arguments.check_export_arguments(
        quantization,
        representative_path,
        batch_size,
        io_dtype,
        FLOAT32_TOLERANCE,
        verbose,
    )
    model_path = _files.check_input_file(model_path, "model_path", (".keras",))
    if representative_path is not None:
        representative_path = _files.check_input_file(
            representative_path, "representative_path", (".npy",)
        )
    output_path, _ = _files.check_output_path(
        output_path,
        "output_path",
        inputs=[
            ("model_path", model_path),
            ("representative_path", representative_path),
        ],
    )
    import keras

    import keras_tt  # noqa: F401  (registers TTDense for deserialisation)

    representative = None
    if representative_path is not None:
        try:
            representative = np.load(representative_path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ValueError(
                "Received an invalid value for `representative_path`, "
                "expected a .npy file of sample inputs (saved with "
                f"numpy.save). Received: representative_path="
                f"{representative_path!r} ({error})"
            ) from None
    try:
        model = keras.models.load_model(model_path, compile=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(
            "Received an invalid value for `model_path`, expected a model "
            "saved with `model.save('m.keras')`. Received: "
            f"model_path={model_path!r} ({type(error).__name__}: {error})"
        ) from error
    return export_tflite(
        model,
        output_path,
        quantization=quantization,
        representative_data=representative,
        batch_size=batch_size,
        io_dtype=io_dtype,
        verbose=verbose,
    )
