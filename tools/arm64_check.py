"""Compare .tflite files on ARM64 LiteRT (emulated) with x86-64 and Keras.

Run by tools/verify_arm64.sh, which builds the emulated runtimes; see that
script for the setup. For every file this runs tools/arm64_runner.py once in
the host's LiteRT (x86-64) and once per emulated aarch64 runtime, with the
Interpreter and XNNPACK, the Interpreter with the builtin kernels only
(``reference``) and, where the runtime has it, the CompiledModel API on the
CPU; each at batch 1 and at a resized batch (or the file's fixed batch).

What must hold (otherwise the script prints a ``FAIL`` line per problem and
exits with status 1):

- In the first (current) aarch64 runtime every file loads and runs with
  every engine.
- float32 files (no float16 or integer tensors): every aarch64 output is
  within 1e-5 relative error (Frobenius norm of the difference over that of
  the reference) of the x86-64 output of the same engine and batch, and of
  the Keras output when ``FILE.npz`` holds one.
- Quantised files (float16, dynamic-range, int8): the aarch64 error against
  Keras may exceed the x86-64 error of the same engine and batch by at most
  a factor of ``QUANTISED_FACTOR`` (plus 1e-6), so ARM kernels may round
  differently but not be less accurate. Without Keras outputs they must
  match x86-64 within 1e-5 like float32 files.
- Older runtimes: a file whose outputs come back must meet the same bounds.
  A runtime that refuses or crashes on a file is reported (and the oldest
  runtime that ran each file is listed) but does not fail the check: the
  converter's ``min_runtime_version`` is the contract, and such a result is
  a finding to read, printed as ``NOTE``.

``FILE.npz`` (written by tools/export_arm64_set.py) holds the inputs
``x0``, ``x1``, ... and the Keras outputs ``keras0``, ...; without it, 8
random normal inputs (seed 0) are used and only x86-64 is compared with.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

FLOAT32_TOLERANCE = 1e-5
# How much larger the quantised error against Keras may be on aarch64 than
# on x86-64 (same engine, batch and inputs). Rounding ties and
# requantisation may legitimately land one step apart on another
# instruction set; a kernel bug makes the error several times larger.
QUANTISED_FACTOR = 1.5
QUANTISED_SLACK = 1e-6
BATCH1_SAMPLES = 4
NUM_RANDOM_SAMPLES = 8
ENGINES = ("xnnpack", "reference", "compiled")
RUNNER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "arm64_runner.py"
)
_QUANTISED_TYPES = {1, 3, 7, 9, 17}  # float16, uint8, int16, int8, int4


def _relative(got, reference):
    """Largest relative error over the outputs (Frobenius norms)."""
    worst = 0.0
    for g, r in zip(got, reference):
        g = np.asarray(g, np.float64)
        r = np.asarray(r, np.float64)
        if g.shape != r.shape:
            return float("inf")
        norm = float(np.linalg.norm(r))
        worst = max(worst, float(np.linalg.norm(g - r)) / (norm or 1.0))
    return worst


def _file_facts(path):
    """(quantised?, tensor types present, min_runtime_version)."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        buffer = f.read()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buffer, 0))
    types = set()
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            types.add(int(tensor.type))
    version = None
    for metadata in model.metadata or []:
        name = metadata.name
        name = name.decode() if isinstance(name, bytes) else name
        if name == "min_runtime_version":
            data = model.buffers[metadata.buffer].data
            raw = b"" if data is None else bytes(bytearray(data))
            version = raw.split(b"\0")[0].decode() or None
    return bool(types & _QUANTISED_TYPES), version


def _random_inputs(path):
    from ai_edge_litert import interpreter

    details = interpreter.Interpreter(model_path=path).get_input_details()
    rng = np.random.default_rng(0)
    return {
        f"x{i}": rng.normal(
            size=(NUM_RANDOM_SAMPLES,) + tuple(d["shape"][1:])
        ).astype(np.float32)
        for i, d in enumerate(details)
    }


def _run(prefix, env, items, out, label):
    """Run the runner over ``items``, going on after a crash.

    Returns (header, {(file_id, engine): record}).
    """
    os.makedirs(out, exist_ok=True)
    progress = os.path.join(out, "progress.jsonl")
    stderr_log = os.path.join(out, "stderr.log")
    pending = [dict(item, engines=list(ENGINES)) for item in items]
    records, header = {}, None
    while pending:
        job = os.path.join(out, "job.json")
        with open(job, "w") as f:
            json.dump({"files": pending, "batch1_samples": BATCH1_SAMPLES}, f)
        with open(stderr_log, "a") as err:
            code = subprocess.call(
                prefix + [RUNNER, job, out],
                env=env,
                stdout=err,
                stderr=err,
            )
        started = None
        with open(progress) as f:
            for line in f:
                record = json.loads(line)
                if "runtime" in record:
                    header = record
                elif record.get("started"):
                    started = (record["file"], record["engine"])
                else:
                    records[(record["file"], record["engine"])] = record
                    started = None
        if code == 0:
            break
        if started is None:
            raise SystemExit(
                f"FAIL: the {label} runner exited with status {code} before "
                f"running any file; see {stderr_log}"
            )
        records[started] = {
            "file": started[0],
            "engine": started[1],
            "ok": False,
            "crashed": True,
            "error": f"the process died (exit status {code}, "
            f"{_signal_name(code)})",
        }
        pending = [
            dict(
                item,
                engines=[e for e in ENGINES if (item["id"], e) not in records],
            )
            for item in pending
        ]
        pending = [item for item in pending if item["engines"]]
    if header is None:
        raise SystemExit(
            f"FAIL: the {label} runner wrote nothing; see {stderr_log}"
        )
    return header, records


def _signal_name(code):

    number = -code if code < 0 else code - 128
    try:
        return signal.Signals(number).name
    except ValueError:
        return "no signal"


def _x86_spread(folder, file_id, batch):
    """Largest relative difference between the x86-64 engines' outputs."""
    runs = [_outputs(folder, file_id, e, batch) for e in ENGINES]
    runs = [r for r in runs if r is not None]
    return max(
        [_relative(a, b) for a in runs for b in runs if a is not b] or [0.0]
    )


def _short(name):
    """ "ai-edge-litert-2.3.0" -> "litert 2.3.0"."""
    for prefix, short in (
        ("ai-edge-litert-", "litert "),
        ("tflite-runtime-", "tflite-rt "),
    ):
        if name.startswith(prefix):
            return short + name[len(prefix) :]
    return name


def _outputs(folder, file_id, engine, batch):
    path = os.path.join(folder, f"{file_id}.{engine}.b{batch}.npz")
    if not os.path.exists(path):
        return None
    data = np.load(path)
    return [data[f"y{i}"] for i in range(len(data.files))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--qemu", required=True)
    parser.add_argument("--guest-python", required=True)
    parser.add_argument(
        "--runtime",
        action="append",
        required=True,
        help="NAME=SITE_FOLDER, newest first; the first one must pass",
    )
    parser.add_argument("--work", default=None)
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="keras_tt_arm64_check.")
    os.makedirs(work, exist_ok=True)

    # 1. Inputs and references, per file.
    items, facts = [], {}
    for index, path in enumerate(args.files):
        path = os.path.abspath(path)
        if not path.endswith(".tflite") or not os.path.isfile(path):
            raise SystemExit(
                "FAIL: expected existing .tflite files. Received: " + path
            )
        file_id = f"f{index}"
        beside = path[: -len(".tflite")] + ".npz"
        keras_outputs, mode = None, None
        if os.path.exists(beside):
            data = np.load(beside)
            inputs = {k: data[k] for k in data.files if k.startswith("x")}
            keras_outputs = [
                data[f"keras{i}"]
                for i in range(
                    len([k for k in data.files if k.startswith("keras")])
                )
            ]
            if "mode" in data.files:
                mode = str(data["mode"])
        else:
            inputs = _random_inputs(path)
        inputs_path = os.path.join(work, f"{file_id}.inputs.npz")
        np.savez(inputs_path, **inputs)
        quantised, min_version = _file_facts(path)
        facts[file_id] = {
            "path": path,
            "name": os.path.basename(path),
            "keras": keras_outputs,
            "quantised": quantised,
            "mode": mode or ("quant." if quantised else "float32"),
            "min_runtime_version": min_version,
            "size": os.path.getsize(path),
        }
        items.append({"id": file_id, "path": path, "inputs": inputs_path})

    # 2. x86-64 (this Python), then each emulated aarch64 runtime.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    x86_dir = os.path.join(work, "x86_64")
    x86_header, x86_records = _run(
        [sys.executable], env, items, x86_dir, "x86-64"
    )
    print(
        f"x86-64 reference: {x86_header['runtime']} {x86_header['version']} "
        f"on {x86_header['machine']} ({time.perf_counter() - start:.1f} s)"
    )
    runtimes = []
    for spec in args.runtime:
        name, _, site = spec.partition("=")
        guest_env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": site,
            "PYTHONNOUSERSITE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "HOME": env.get("HOME", "/tmp"),
        }
        folder = os.path.join(work, name)
        start = time.perf_counter()
        prefix = shlex.split(args.qemu) + [args.guest_python, "-s"]
        header, records = _run(prefix, guest_env, items, folder, name)
        print(
            f"aarch64 runtime: {header['runtime']} {header['version']}, "
            f"platform.machine()={header['machine']!r}, Python "
            f"{header['python']}, NumPy {header['numpy']}, CompiledModel "
            f"API: {'yes' if header['compiled_model_api'] else 'no'} "
            f"({time.perf_counter() - start:.1f} s under emulation)"
        )
        runtimes.append((name, header, records, folder))

    # 3. Compare.
    failures, notes, rows = [], {}, []
    tol = FLOAT32_TOLERANCE
    for item in items:
        file_id = item["id"]
        fact = facts[file_id]
        label = fact["name"]
        worst = {"arm_keras": 0.0, "x86_keras": 0.0}
        worst.update({engine: 0.0 for engine in ENGINES})
        ran_on = {"interpreter": [], "compiled": []}
        for rank, (name, _, records, folder) in enumerate(runtimes):
            current = rank == 0
            ran = {"xnnpack": False, "reference": False, "compiled": False}
            for engine in ENGINES:
                record = records.get((file_id, engine), {"ok": False})
                x86_record = x86_records.get((file_id, engine), {"ok": False})
                if record.get("skipped"):
                    continue
                if not record["ok"]:
                    error = " ".join(record.get("error", "no result").split())
                    if current:
                        also = (
                            "; it runs on x86-64"
                            if x86_record["ok"]
                            else "; it fails on x86-64 too"
                        )
                        failures.append(
                            f"{label}: {name} {engine} did not run on "
                            f"aarch64: {error}{also}"
                        )
                    else:
                        notes.setdefault((name, engine, error), []).append(
                            label
                        )
                    continue
                ran[engine] = True
                if not x86_record["ok"]:
                    failures.append(
                        f"{label}: x86-64 {engine} did not run: "
                        f"{x86_record.get('error', 'no result')}"
                    )
                    continue
                for batch in record["batches"]:
                    got = _outputs(folder, file_id, engine, batch)
                    x86 = _outputs(x86_dir, file_id, engine, batch)
                    where = f"{label}: {name} {engine} batch {batch}"
                    if x86 is None:
                        failures.append(f"{where}: no x86-64 run to compare")
                        continue
                    arm_x86 = _relative(got, x86)
                    worst[engine] = max(worst[engine], arm_x86)
                    keras = fact["keras"]
                    if keras is not None:
                        count = len(got[0])
                        reference = [k[:count] for k in keras]
                        arm_keras = _relative(got, reference)
                        x86_keras = _relative(x86, reference)
                        worst["arm_keras"] = max(worst["arm_keras"], arm_keras)
                        worst["x86_keras"] = max(worst["x86_keras"], x86_keras)
                    if fact["quantised"] and keras is None:
                        spread = _x86_spread(x86_dir, file_id, batch)
                        bound = max(
                            FLOAT32_TOLERANCE, QUANTISED_FACTOR * spread
                        )
                        if not arm_x86 <= bound:
                            failures.append(
                                f"{where}: aarch64 differs from x86-64 by "
                                f"{arm_x86:.3g} relative, more than "
                                f"{QUANTISED_FACTOR:g} x the {spread:.3g} "
                                "between x86-64 engines (no Keras outputs "
                                "beside the file to compare with)"
                            )
                    elif not fact["quantised"]:
                        if not arm_x86 <= FLOAT32_TOLERANCE:
                            failures.append(
                                f"{where}: aarch64 differs from x86-64 by "
                                f"{arm_x86:.3g} relative (> {tol:g})"
                            )
                        if keras is not None and not (
                            arm_keras <= FLOAT32_TOLERANCE
                        ):
                            failures.append(
                                f"{where}: aarch64 differs from Keras by "
                                f"{arm_keras:.3g} relative (> {tol:g})"
                            )
                    else:
                        bound = QUANTISED_FACTOR * x86_keras + QUANTISED_SLACK
                        if not arm_keras <= bound:
                            failures.append(
                                f"{where}: aarch64 error against Keras "
                                f"{arm_keras:.3g} > {QUANTISED_FACTOR:g} x the "
                                f"x86-64 error {x86_keras:.3g}"
                            )
            if ran["xnnpack"] and ran["reference"]:
                ran_on["interpreter"].append(name)
            if ran["compiled"]:
                ran_on["compiled"].append(name)
        rows.append((fact, worst, ran_on))

    # 4. Report.
    names = [name for name, *_ in runtimes]
    print()
    print(
        "Relative errors (Frobenius norms), worst over batches and "
        "runtimes: aarch64 against x86-64 for the Interpreter with XNNPACK, "
        "the Interpreter with builtin kernels only and the CompiledModel API "
        "(CPU); then worst over these engines, aarch64 and x86-64 against "
        "Keras. Last: the oldest runtime whose Interpreter ran the file "
        "with both kernel sets, and the runtimes whose CompiledModel ran it."
    )
    header = (
        f"{'file':28s} {'mode':8s} {'bytes':>7s} {'min rt':>6s} "
        f"{'xnnpack':>8s} {'builtin':>8s} {'compiled':>8s} "
        f"{'arm-keras':>9s} {'x86-keras':>9s} "
        f"{'oldest':>16s}  CompiledModel"
    )
    print(header)
    print("-" * len(header))
    for fact, worst, ran_on in rows:
        oldest = "none"
        for name in reversed(names):
            if name in ran_on["interpreter"]:
                oldest = _short(name)
                break
        if fact["keras"] is None:
            keras_columns = f"{'-':>9s} {'-':>9s}"
        else:
            keras_columns = (
                f"{worst['arm_keras']:9.2e} {worst['x86_keras']:9.2e}"
            )
        compiled = ", ".join(_short(n) for n in ran_on["compiled"]) or "none"
        print(
            f"{fact['name'][:-7][:28]:28s} {fact['mode'][:8]:8s} "
            f"{fact['size']:7d} {fact['min_runtime_version'] or '?':>6s} "
            f"{worst['xnnpack']:8.1e} {worst['reference']:8.1e} "
            f"{worst['compiled']:8.1e} {keras_columns} {oldest:>16s}  "
            f"{compiled}"
        )
    print()
    print(
        f"Runtimes, newest first: {', '.join(names)}. Times under emulation "
        "say nothing about speed on a phone."
    )
    for (name, engine, error), labels in notes.items():
        shown = (
            ", ".join(labels)
            if len(labels) <= 3
            else (f"{len(labels)} files ({', '.join(labels[:3])}, ...)")
        )
        print(f"NOTE: {name} {engine} did not run {shown}: {error}")
    for failure in failures:
        print("FAIL:", failure)
    if failures:
        print(
            f"ARM64 check FAILED: {len(failures)} problem(s) in "
            f"{len(items)} file(s)."
        )
        return 1
    print(
        f"ARM64 check passed: {len(items)} file(s) on {names[0]} (aarch64) "
        "within the bounds against x86-64 and, where FILE.npz gives them, "
        "Keras outputs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
