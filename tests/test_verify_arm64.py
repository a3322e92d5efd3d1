"""The ARM64 check (tools/verify_arm64.sh) passes and fails when it should.

These tests run LiteRT's aarch64 build under qemu user-mode emulation and,
the first time, download the emulated userland (about 400 MB of cache), so
they run only with ``KERAS_TT_ARM64=1``; ``make verify-arm64`` is the full
check.
"""

import importlib.metadata
import os
import re
import subprocess

import keras
import numpy as np
import pytest

import keras_tt

pytestmark = pytest.mark.skipif(
    os.environ.get("KERAS_TT_ARM64") != "1",
    reason="set KERAS_TT_ARM64=1 to run the emulated ARM64 checks",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "verify_arm64.sh")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A float32 TT model's file, its inputs and the Keras outputs on them."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((105,)),
            keras_tt.TTDense(
                45, tt_rank=3, in_modes=(3, 5, 7), out_modes=(5, 3, 3)
            ),
        ]
    )
    x = np.random.default_rng(0).normal(size=(8, 105)).astype("float32")
    path = tmp_path_factory.mktemp("arm64") / "tt.tflite"
    keras_tt.export_tflite(model, path, validation_data=x, verbose=False)
    return path, x, keras.ops.convert_to_numpy(model(x))


def run_check(path):
    result = subprocess.run(
        ["bash", SCRIPT, "--current-only", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result.returncode, result.stdout + result.stderr


def test_float32_file_matches_keras_on_arm64(exported):
    path, x, outputs = exported
    np.savez(path.with_suffix(".npz"), x0=x, keras0=outputs)
    code, log = run_check(path)
    assert code == 0, log
    assert "platform.machine()='aarch64'" in log
    version = importlib.metadata.version("ai-edge-litert")
    assert f"aarch64 runtime: ai-edge-litert {version}" in log
    assert "ARM64 check passed: 1 file(s)" in log


def test_check_fails_when_outputs_differ_from_keras(exported):
    path, x, outputs = exported
    # A 1e-3 relative change, 100x the float32 tolerance.
    np.savez(path.with_suffix(".npz"), x0=x, keras0=outputs * 1.001)
    code, log = run_check(path)
    assert code == 1, log
    found = re.findall(r"aarch64 differs from Keras by ([0-9.e+-]+) ", log)
    assert found, log
    # Each engine and batch is reported, each about 1e-3 off.
    assert all(9e-4 < float(v) < 1.1e-3 for v in found), found
    assert "ARM64 check FAILED" in log
