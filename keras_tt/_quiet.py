"""A quieter TensorFlow start-up, unless the user chose a log level.

Importing this module (``keras_tt/__init__.py`` does, before anything that
loads TensorFlow) runs `quiet_tensorflow_start`.

TensorFlow's C++ runtime prints informational notices when it loads
(``I0000 ... oneDNN custom operations are on``, the CPU-feature notice).
``import keras_tt`` asks it to skip INFO lines by setting
``TF_CPP_MIN_LOG_LEVEL=1``, and only when both hold:

- the user has not set ``TF_CPP_MIN_LOG_LEVEL`` (any value they set, ``0``
  included, is kept), and
- TensorFlow is not imported yet (the variable is read once, at load).

Warnings and errors still print, Python's ``logging`` and ``absl.logging``
are not touched, and nothing is redirected. A few lines are written by
TensorFlow before it reads the variable (``WARNING: All log messages before
absl::InitializeLog() ...``) and cannot be turned off from Python.
"""

import os
import sys

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# INFO lines off; WARNING and ERROR lines kept.
QUIET_LEVEL = "1"

# Whether this process's TF_CPP_MIN_LOG_LEVEL was set by keras_tt (the
# user had not chosen one).
set_by_keras_tt = False


def quiet_tensorflow_start() -> bool:
    """Hide TensorFlow's INFO start-up notices if the user has not chosen.

    Returns whether the variable was set.
    """
    global set_by_keras_tt
    if LOG_LEVEL_VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LEVEL
    set_by_keras_tt = True
    return True


quiet_tensorflow_start()
