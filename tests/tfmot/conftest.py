"""tf_keras and tensorflow-model-optimization tests (``make test-tfmot``).

These modules import tf_keras and tfmot, and importing tfmot sets
``TF_USE_LEGACY_KERAS=1`` for the whole process. pytest imports a test
module before it deselects its tests by marker, so the folder is not even
collected unless the marker expression asks for ``tfmot``: the fast suite
(``-m "... and not tfmot"``) never imports them.
"""

import os
import sys

# tt_reference.py lives one folder up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _selects_tfmot(config) -> bool:
    expression = config.getoption("markexpr") or ""
    return "tfmot" in expression and "not tfmot" not in expression


def pytest_ignore_collect(collection_path, config):
    if not _selects_tfmot(config):
        return True
    return None
