"""Run .tflite files in whichever LiteRT runtime this Python imports.

This script runs twice per check: in the host's Python (x86-64) and in an
aarch64 Python under qemu (see tools/verify_arm64.sh). It needs only NumPy
and a LiteRT runtime (``ai_edge_litert`` or the older ``tflite_runtime``),
never keras_tt, TensorFlow or Keras, and it keeps to what NumPy 1.x and
Python 3.8 offer, so that the same code runs in every runtime checked.

Usage:
    python tools/arm64_runner.py JOB.json OUT_FOLDER

JOB.json: ``{"files": [{"id": ..., "path": ..., "inputs": ...}, ...],
"batch1_samples": K}``; each ``inputs`` is a ``.npz`` with arrays ``x0``,
``x1``, ... (float32, first axis samples). For every file and every engine
(the Interpreter with XNNPACK, the Interpreter with the builtin reference
kernels only, and the CompiledModel API on the CPU when the runtime has
it), the outputs at batch 1 (the first K samples one at a time) and at a
resized batch (all samples at once; the fixed batch for a model that has
one) are written to ``OUT_FOLDER/<id>.<engine>.b<batch>.npz`` (arrays
``y0``, ``y1``, ..., dequantised to float32). ``OUT_FOLDER/progress.jsonl``
gets one line for the runtime (name, version, ``platform.machine()``) and
lines per file and engine: a ``started`` line before it runs, then whether
it loaded and ran (with the error text when not). A runtime that crashes
the process leaves a ``started`` line without its result, which the caller
reads to name the file and engine and to go on with the rest.
"""

import json
import os
import platform
import sys

import numpy as np

ENGINES = ("xnnpack", "reference", "compiled")


def _runtime():
    """(interpreter module, compiled_model module or None, name, version)."""
    try:
        from ai_edge_litert import interpreter

        name = "ai-edge-litert"
    except ImportError:
        from tflite_runtime import interpreter

        name = "tflite-runtime"
    try:
        from importlib import metadata

        version = metadata.version(name)
    except Exception:  # noqa: BLE001 - metadata is optional
        version = getattr(interpreter, "__version__", "unknown")
    compiled = None
    if name == "ai-edge-litert":
        try:
            from ai_edge_litert import compiled_model as compiled
        except ImportError:
            compiled = None
    return interpreter, compiled, name, version


def _to_model(array, detail):
    """A float array as the model input wants it (quantised if integer)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        q = np.round(array / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(dtype)
    return array.astype(dtype)


def _from_model(array, detail):
    """A model output as float32 (dequantised if integer)."""
    if np.dtype(detail["dtype"]).kind in "iu":
        scale, zero_point = detail["quantization"]
        return ((array.astype(np.float32) - zero_point) * scale).astype(
            np.float32
        )
    return array.astype(np.float32)


class InterpreterEngine:
    def __init__(self, module, path, reference):
        kwargs = {"model_path": path, "num_threads": 1}
        if reference:
            kwargs["experimental_op_resolver_type"] = (
                module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        self.interpreter = module.Interpreter(**kwargs)
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.batch = None

    def __call__(self, arrays):
        batch = arrays[0].shape[0]
        if batch != self.batch:
            for detail in self.inputs:
                shape = list(detail["shape_signature"])
                shape[0] = batch
                self.interpreter.resize_tensor_input(detail["index"], shape)
            self.interpreter.allocate_tensors()
            self.batch = batch
        for array, detail in zip(arrays, self.inputs):
            self.interpreter.set_tensor(
                detail["index"], _to_model(array, detail)
            )
        self.interpreter.invoke()
        return [
            _from_model(self.interpreter.get_tensor(d["index"]), d)
            for d in self.outputs
        ]


class CompiledEngine:
    """The CompiledModel API with the CPU accelerator, as on Android."""

    def __init__(self, module, path, details):
        self.module = module
        self.model = module.CompiledModel.from_file(path)
        self.inputs, self.outputs = details
        self.batch = self.inputs[0]["shape"][0]
        # Older releases (ai-edge-litert 1.x) cannot resize inputs.
        self.can_resize = hasattr(self.model, "resize_input_tensor")

    def __call__(self, arrays):
        batch = arrays[0].shape[0]
        if batch != self.batch:
            for i, detail in enumerate(self.inputs):
                if detail["shape_signature"][0] < 0:
                    shape = [batch] + list(detail["shape"][1:])
                    self.model.resize_input_tensor(i, shape, 0)
            self.batch = batch
        in_buffers = self.model.create_input_buffers(0)
        out_buffers = self.model.create_output_buffers(0)
        for buffer, array, detail in zip(in_buffers, arrays, self.inputs):
            buffer.write(_to_model(array, detail))
        self.model.run_by_index(0, in_buffers, out_buffers)
        results = []
        for buffer, detail in zip(out_buffers, self.outputs):
            shape = [batch] + list(detail["shape"][1:])
            dtype = np.dtype(detail["dtype"]).type
            raw = buffer.read(int(np.prod(shape)), dtype)
            results.append(_from_model(raw.reshape(shape), detail))
        return results


def _run_all(engine, arrays, fixed_batch, batch1_samples):
    """{batch size: outputs} at batch 1 and at a resized (or fixed) batch."""
    n = arrays[0].shape[0]
    runs = {}
    if fixed_batch in (None, 1):
        count = min(n, batch1_samples)
        parts = [engine([a[i : i + 1] for a in arrays]) for i in range(count)]
        runs[1] = [np.concatenate(p) for p in zip(*parts)]
    if fixed_batch is None and getattr(engine, "can_resize", True):
        runs[n] = engine(arrays)
    elif fixed_batch > 1:
        chunks = []
        for start in range(0, n - fixed_batch + 1, fixed_batch):
            chunks.append(
                engine([a[start : start + fixed_batch] for a in arrays])
            )
        runs[fixed_batch] = [np.concatenate(p) for p in zip(*chunks)]
    return runs


def _write(log, record):
    log.write(json.dumps(record) + "\n")
    log.flush()
    os.fsync(log.fileno())


def main(argv):
    job_path, out = argv[1], argv[2]
    with open(job_path) as f:
        job = json.load(f)
    interpreter, compiled, name, version = _runtime()
    k = int(job.get("batch1_samples", 4))
    with open(os.path.join(out, "progress.jsonl"), "a") as log:
        _write(
            log,
            {
                "runtime": name,
                "version": version,
                "machine": platform.machine(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "compiled_model_api": compiled is not None,
            },
        )
        for item in job["files"]:
            data = np.load(item["inputs"])
            count = len([key for key in data.files if key.startswith("x")])
            arrays = [data[f"x{i}"].astype(np.float32) for i in range(count)]
            for engine_name in item.get("engines", ENGINES):
                entry = {"file": item["id"], "engine": engine_name}
                if engine_name == "compiled" and compiled is None:
                    entry.update(ok=False, skipped=True)
                    entry["error"] = "this runtime has no CompiledModel API"
                    _write(log, entry)
                    continue
                # Written first so that a crash of the process is traced to
                # the file and engine that caused it.
                _write(log, dict(entry, started=True))
                try:
                    if engine_name == "compiled":
                        # Input and output details (quantisation, resizable
                        # axes) come from the Interpreter.
                        probe = InterpreterEngine(interpreter, item["path"], 1)
                        details = (probe.inputs, probe.outputs)
                        engine = CompiledEngine(compiled, item["path"], details)
                    else:
                        engine = InterpreterEngine(
                            interpreter,
                            item["path"],
                            engine_name == "reference",
                        )
                        details = (engine.inputs, engine.outputs)
                    signature = details[0][0]["shape_signature"]
                    fixed = None if signature[0] < 0 else int(signature[0])
                    runs = _run_all(engine, arrays, fixed, k)
                except Exception as error:  # noqa: BLE001 - recorded
                    entry.update(ok=False)
                    entry["error"] = f"{type(error).__name__}: {error}"
                    _write(log, entry)
                    continue
                for batch, outputs in runs.items():
                    np.savez(
                        os.path.join(
                            out,
                            f"{item['id']}.{engine_name}.b{batch}.npz",
                        ),
                        **{f"y{i}": o for i, o in enumerate(outputs)},
                    )
                entry.update(ok=True, batches=sorted(runs))
                _write(log, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
