"""`import keras_tt` leaves tf_keras, tfmot and `tf.keras` alone."""

import subprocess
import sys

_CHECK = """
import os, sys
import keras_tt
import keras_tt.tf_keras  # the package itself imports nothing heavy
assert "tensorflow_model_optimization" not in sys.modules, "tfmot imported"
assert "tf_keras" not in sys.modules, "tf_keras imported"
assert "TF_USE_LEGACY_KERAS" not in os.environ, "TF_USE_LEGACY_KERAS set"
import tensorflow as tf
version = tf.keras.__version__
assert version.startswith("3."), f"tf.keras is Keras {version}"
print("ok")
"""


def test_import_keras_tt_imports_neither_tfmot_nor_tf_keras():
    env_free = {
        k: v
        for k, v in __import__("os").environ.items()
        if k != "TF_USE_LEGACY_KERAS"
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHECK],
        capture_output=True,
        text=True,
        timeout=300,
        env=env_free,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
