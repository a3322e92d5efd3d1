"""Training `TTDense` models under `tf.distribute` strategies.

Each strategy runs in its own processes (`distributed_scripts.py`): TF fixes
its devices and its cluster when it starts. The multi-worker run uses two
worker processes on 127.0.0.1, is bounded in time and is cleaned up.
"""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_scripts.py")
TIMEOUT = 240

# A minute or more of process start-up: run by `make test-slow`.
pytestmark = pytest.mark.slow


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_mirrored_strategy_on_two_devices_matches_one_device(tmp_path):
    out = str(tmp_path / "mirrored.npz")
    subprocess.run(
        [sys.executable, SCRIPT, "mirrored", out],
        check=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    result = np.load(out)
    assert int(result["replicas"]) == 2
    names = sorted(
        k[len("single_") :] for k in result if k.startswith("single_")
    )
    assert len(names) == 6  # two TTDense layers of 2 cores and a bias each
    for name in names:
        single, mirrored = result[f"single_{name}"], result[f"mirrored_{name}"]
        np.testing.assert_allclose(mirrored, single, rtol=1e-4, atol=1e-5)
    # Training moved the weights: the comparison above is not vacuous.
    moved = [
        np.abs(result[f"single_{n}"] - result[f"initial_{n}"]).max()
        for n in names
    ]
    assert max(moved) > 1e-3


def test_multi_worker_custom_loop_matches_one_process(tmp_path):
    ports = ",".join(str(p) for p in _free_ports(2))
    outs = [str(tmp_path / f"worker{i}.npz") for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, SCRIPT, "worker", str(i), ports, outs[i]],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    try:
        for w in workers:
            _, stderr = w.communicate(timeout=TIMEOUT)
            assert w.returncode == 0, stderr.decode()[-2000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    reference = str(tmp_path / "single.npz")
    subprocess.run(
        [sys.executable, SCRIPT, "single", reference],
        check=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    single = np.load(reference)
    assert single["loss_after"] < single["loss_before"]
    for out in outs:
        result = np.load(out)
        np.testing.assert_allclose(
            result["losses"], single["losses"], rtol=1e-4, atol=1e-6
        )
        for key in (k for k in single if k.startswith("w")):
            np.testing.assert_allclose(
                result[key], single[key], rtol=1e-4, atol=1e-5
            )
