"""Running a ``.tflite`` file through LiteRT's ``CompiledModel`` API.

``ai_edge_litert.compiled_model.CompiledModel`` is the API that Android
apps use (``CompiledModel.create(...)`` in Kotlin); the export runs every
file through it on the CPU accelerator, beside the ``Interpreter``.

Two facts of the Python API shape the code: after
``resize_input_tensor`` the output buffers it creates keep the
signature's static shape (batch 1), so outputs are read into host-memory
buffers of the resized shape; and the runtime logs its setup on the
process's standard error, which is captured and shown only on failure.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tempfile

import numpy as np

from keras_tt.export._litert import import_litert
from keras_tt.export.runtime import _from_model
from keras_tt.export.runtime import _to_model

NAME = "compiled_model"


@contextlib.contextmanager
def _native_stderr_captured():
    """Send file descriptor 2 to a temporary file; yield a reader of it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield lambda: (log.seek(0), log.read())[1].decode(errors="replace")
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class CompiledModelRunner:
    """Run a ``.tflite`` file with ``CompiledModel`` on the CPU accelerator.

    Args:
        path: the ``.tflite`` file.
        info: its `TFLiteInfo` (input and output types, scales).
    """

    def __init__(self, path, info):
        self._module = import_litert("compiled_model", "Running CompiledModel")
        self._path = os.fspath(path)
        self._info = info

    def __call__(self, feed: dict, output_shapes) -> list[np.ndarray]:
        """Outputs (dequantised to float32) for ``feed``, ``{name: array}``.

        ``output_shapes`` are the shapes the outputs must have (the Keras
        model's); a smaller output buffer fails the run.
        """
        module = self._module
        with _native_stderr_captured() as log:
            try:
                result = self._run(module, feed, output_shapes)
                # Release the runtime while its log is still captured.
                gc.collect()
                return result
            except (RuntimeError, ValueError) as error:
                text = log().strip().splitlines()
                detail = "; ".join(line for line in text[-5:] if line)
                raise RuntimeError(
                    f"CompiledModel failed: {error}"
                    + (f" (runtime log: {detail})" if detail else "")
                ) from error

    def _run(self, module, feed, output_shapes):
        model = module.CompiledModel.from_file(
            self._path, hardware_accel=module.HardwareAccelerator.CPU
        )
        signature = model.get_signature_by_index(0)
        inputs = {t.name: t for t in self._info.inputs}
        outputs = {t.name: t for t in self._info.outputs}
        for index, name in enumerate(signature["inputs"]):
            shape = feed[name].shape
            if list(shape) != list(inputs[name].shape):
                model.resize_input_tensor(index, list(shape))
        in_buffers = model.create_input_buffers(0)
        for buffer, name in zip(in_buffers, signature["inputs"]):
            tensor = inputs[name]
            detail = {
                "dtype": np.dtype(tensor.dtype),
                "quantization": (tensor.scale, tensor.zero_point),
            }
            buffer.write(np.ascontiguousarray(_to_model(feed[name], detail)))
        order = [t.name for t in self._info.outputs]
        out_arrays, out_buffers = [], []
        for name in signature["outputs"]:
            shape = output_shapes[order.index(name)]
            array = np.zeros(shape, np.dtype(outputs[name].dtype))
            out_arrays.append(array)
            out_buffers.append(
                module.TensorBuffer.create_from_host_memory(array)
            )
        model.run_by_index(0, in_buffers, out_buffers)
        results = {}
        for name, array, buffer in zip(
            signature["outputs"], out_arrays, out_buffers
        ):
            tensor = outputs[name]
            raw = buffer.read(array.size, array.dtype).reshape(array.shape)
            detail = {
                "dtype": np.dtype(tensor.dtype),
                "quantization": (tensor.scale, tensor.zero_point),
            }
            results[name] = _from_model(raw, detail)
        return [results[name] for name in order]
