"""Running ``.tflite`` models in the LiteRT interpreter from NumPy arrays.

`TFLiteRunner` wraps ``ai_edge_litert.interpreter.Interpreter``: it resizes
the input to the batch it is given, quantises float inputs for models with
integer inputs, and dequantises integer outputs, so a float32, float16,
dynamic-range and full-int8 model are all called the same way.
`evaluate_tflite` measures accuracy and latency on a held-out set.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_tt.export._litert import import_litert

# XNNPACK is the interpreter's default CPU delegate; "reference" runs the
# builtin kernels alone, as a runtime without XNNPACK would.
RUNTIMES = ("xnnpack", "reference")


def _check_positive(name, value, allow_none=False) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < 1
    ):
        expected = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(
            f"Received an invalid value for `{name}`, expected {expected}. "
            f"Received: {name}={value!r}"
        )


def _interpreter_module():
    return import_litert("interpreter", "Running .tflite files")


def _as_input_list(x, details=None) -> list[np.ndarray]:
    """``x`` as a list of arrays, in the order of the model's inputs."""
    if isinstance(x, dict):
        if details is None:
            raise ValueError(
                "Received an invalid value for `x`, expected a NumPy array or "
                "a list of arrays (one per model input). Received: x of type "
                "dict"
            )
        by_name = {_plain_name(d["name"]): d for d in details}
        names = [_plain_name(d["name"]) for d in details]
        keys = {_plain_name(str(k)): k for k in x}
        if sorted(keys) != sorted(names):
            raise ValueError(
                "Received an invalid value for `x`, expected a dict keyed by "
                f"the model's input names {names}. Received keys: "
                f"{sorted(map(str, x))}"
            )
        return [
            np.asarray(x[keys[_plain_name(by_name[n]["name"])]]) for n in names
        ]
    if isinstance(x, (list, tuple)):
        return [np.asarray(a) for a in x]
    return [np.asarray(x)]


def _plain_name(name: str) -> str:
    """``"serving_default_ids:0"`` -> ``"ids"``."""
    name = name.split(":")[0]
    prefix = "serving_default_"
    return name[len(prefix) :] if name.startswith(prefix) else name


class TFLiteRunner:
    """Call a ``.tflite`` model on NumPy batches of any size.

    Args:
        model: path to a ``.tflite`` file, or its bytes.
        num_threads: interpreter threads; ``None`` lets the runtime choose.
        runtime: ``"xnnpack"`` (the default delegate, as on a phone) or
            ``"reference"`` (builtin kernels only, no delegate).

    Example:

    >>> import os, tempfile
    >>> import numpy as np, keras, keras_tt
    >>> from keras_tt.export import TFLiteRunner, export_tflite
    >>> model = keras.Sequential([keras.Input((64,)),
    ...                           keras_tt.TTDense(16, tt_rank=2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.tflite")
    >>> _ = export_tflite(model, path, verbose=False)
    >>> runner = TFLiteRunner(path, num_threads=1)
    >>> runner(np.ones((3, 64), np.float32)).shape
    (3, 16)
    """

    def __init__(
        self, model, num_threads: int | None = None, runtime: str = "xnnpack"
    ):
        if runtime not in RUNTIMES:
            raise ValueError(
                "Received an invalid value for `runtime`, expected one of "
                f"{RUNTIMES}. Received: runtime={runtime!r}"
            )
        _check_positive("num_threads", num_threads, allow_none=True)
        module = _interpreter_module()
        kwargs: dict[str, Any] = {"num_threads": num_threads}
        if runtime == "reference":
            kwargs["experimental_op_resolver_type"] = (
                module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        if isinstance(model, (bytes, bytearray)):
            kwargs["model_content"] = bytes(model)
        else:
            kwargs["model_path"] = os.fspath(model)
        self.runtime = runtime
        self.interpreter = module.Interpreter(**kwargs)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()
        self._batch = None

    @property
    def fixed_batch_size(self) -> int | None:
        """The batch size baked into the model, or ``None`` if resizable."""
        signature = self.input_details[0]["shape_signature"]
        return None if signature[0] < 0 else int(signature[0])

    def resize(self, batch_size: int) -> None:
        """Resize every input's first axis to ``batch_size``."""
        if batch_size == self._batch:
            return
        for detail in self.input_details:
            shape = list(detail["shape_signature"])
            if shape[0] >= 0 and shape[0] != batch_size:
                raise ValueError(
                    "Received an invalid batch for a model exported with a "
                    f"fixed batch size of {shape[0]}. Received: batch of "
                    f"{batch_size}"
                )
            shape[0] = batch_size
            self.interpreter.resize_tensor_input(detail["index"], shape)
        self.interpreter.allocate_tensors()
        self._batch = batch_size

    def set_inputs(self, x) -> None:
        """Resize to the batch of ``x``; copy it in, quantised if need be.

        ``x`` is an array, a list of arrays in input order, or a dict keyed
        by input name. Float arrays given for an int8/uint8 input are
        quantised with its scale and zero point; integer arrays (token ids,
        or data already quantised) are passed as they are.
        """
        arrays = _as_input_list(x, self.input_details)
        if len(arrays) != len(self.input_details):
            raise ValueError(
                f"Received {len(arrays)} input arrays for a model with "
                f"{len(self.input_details)} inputs."
            )
        self.resize(int(arrays[0].shape[0]))
        for array, detail in zip(arrays, self.input_details):
            self.interpreter.set_tensor(
                detail["index"], _to_model(array, detail)
            )

    def outputs(self) -> list[np.ndarray]:
        """The current outputs, dequantised to float32 if they are integer."""
        return [
            _from_model(self.interpreter.get_tensor(d["index"]), d)
            for d in self.output_details
        ]

    def __call__(self, x):
        """Run on ``x``; one array for a one-output model, else a list."""
        self.set_inputs(x)
        self.interpreter.invoke()
        outputs = self.outputs()
        return outputs[0] if len(outputs) == 1 else outputs

    def predict(self, x, batch_size: int = 256):
        """Run on ``x`` in chunks of ``batch_size``; concatenate the outputs."""
        arrays = _as_input_list(x, self.input_details)
        n = int(arrays[0].shape[0])
        step = self.fixed_batch_size or batch_size
        chunks = []
        for start in range(0, n, step):
            part = [a[start : start + step] for a in arrays]
            real = part[0].shape[0]
            if self.fixed_batch_size and real < step:
                part = [
                    np.concatenate([p, np.repeat(p[-1:], step - real, 0)])
                    for p in part
                ]
            out = self(part)
            out = out if isinstance(out, list) else [out]
            chunks.append([o[:real] for o in out])
        merged = [np.concatenate(c) for c in zip(*chunks)]
        return merged[0] if len(merged) == 1 else merged


def _to_model(array: np.ndarray, detail) -> np.ndarray:
    """``array`` in the dtype of the input ``detail`` describes.

    Only a float array for a quantised integer input (int8, uint8 or int16
    with a non-zero scale) is quantised; integer inputs such as token ids
    are cast, never scaled.
    """
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    quantised = dtype in (np.int8, np.uint8, np.int16) and scale > 0
    if quantised and np.issubdtype(array.dtype, np.floating):
        info = np.iinfo(dtype)
        q = np.round(np.asarray(array, np.float32) / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(dtype)
    return np.asarray(array, dtype=dtype)


def _from_model(array: np.ndarray, detail) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero_point = detail["quantization"]
        if scale:
            return (array.astype(np.float32) - zero_point) * scale
    return np.array(array, dtype=np.float32, copy=True)


def evaluate_tflite(
    model,
    x,
    y: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 256,
    num_threads: int | None = 1,
    latency_batch_size: int = 1,
    latency_runs: int = 100,
    runtime: str = "xnnpack",
) -> dict[str, Any]:
    """Accuracy and latency of a ``.tflite`` classifier in LiteRT.

    Args:
        model: path to a ``.tflite`` file, or its bytes.
        x: inputs: an array, a list of arrays in input order, or a dict
            keyed by input name. Float arrays for a quantised (int8) input
            are quantised; integer arrays (token ids) are passed as they
            are.
        y: optional integer labels; the accuracy is the fraction of
            ``argmax(output) == y``.
        batch_size: batch used to run all of ``x``.
        num_threads: interpreter threads for the latency measurement
            (``1`` stands in for one low-end phone core).
        latency_batch_size: batch of the timed calls.
        latency_runs: number of timed calls; the median is reported.
        runtime: ``"xnnpack"`` (default delegate) or ``"reference"``.

    Returns:
        A dict with ``"accuracy"`` (``None`` without labels),
        ``"latency_ms"`` (median over ``latency_runs`` calls of a batch of
        ``latency_batch_size``), ``"file_size"`` (bytes, ``None`` for
        bytes input), ``"outputs"`` (the model outputs for ``x``) and
        ``"num_samples"``.

    Example:

    >>> import os, tempfile
    >>> import numpy as np, keras, keras_tt
    >>> from keras_tt.export import evaluate_tflite, export_tflite
    >>> model = keras.Sequential([keras.Input((64,)),
    ...                           keras_tt.TTDense(10, tt_rank=2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.tflite")
    >>> _ = export_tflite(model, path, verbose=False)
    >>> x = np.random.default_rng(0).normal(size=(20, 64)).astype("float32")
    >>> result = evaluate_tflite(path, x, y=np.zeros(20, int), latency_runs=5)
    >>> sorted(k for k in result if k != "outputs")
    ['accuracy', 'file_size', 'latency_ms', 'num_samples']
    >>> 0.0 <= result["accuracy"] <= 1.0
    True
    """
    _check_positive("batch_size", batch_size)
    _check_positive("latency_batch_size", latency_batch_size)
    _check_positive("latency_runs", latency_runs)
    runner = TFLiteRunner(model, num_threads=num_threads, runtime=runtime)
    outputs = runner.predict(x, batch_size=batch_size)
    main = outputs[0] if isinstance(outputs, list) else outputs
    arrays = _as_input_list(x, runner.input_details)
    accuracy = None
    if y is not None:
        labels = np.asarray(y).reshape(-1)
        if labels.shape[0] != main.shape[0]:
            raise ValueError(
                "Received an invalid value for `y`, expected one label per "
                f"sample ({main.shape[0]}). Received: {labels.shape[0]} labels"
            )
        accuracy = float(np.mean(np.argmax(main, axis=-1) == labels))
    batch = runner.fixed_batch_size or latency_batch_size
    sample = [np.resize(a, (batch,) + a.shape[1:]) for a in arrays]
    runner.set_inputs(sample)
    for _ in range(min(5, latency_runs)):
        runner.interpreter.invoke()
    times = []
    for _ in range(latency_runs):
        start = time.perf_counter()
        runner.interpreter.invoke()
        times.append(time.perf_counter() - start)
    file_size = None
    if not isinstance(model, (bytes, bytearray)):
        file_size = os.path.getsize(model)
    return {
        "accuracy": accuracy,
        "latency_ms": 1000.0 * statistics.median(times),
        "file_size": file_size,
        "outputs": outputs,
        "num_samples": int(main.shape[0]),
    }
