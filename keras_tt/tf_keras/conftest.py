"""The modules of this package import tf_keras (and some tfmot).

The fast suite collects doctests from keras_tt/ in a Keras 3 process, which
must not import either: these modules are tested in their own process
(``make test-tfmot``), doctests included (tests/test_tfmot_doctests.py).
"""

collect_ignore_glob = ["*.py"]
