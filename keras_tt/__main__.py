"""``python -m keras_tt``: the ``keras-tt`` command."""

import sys

from keras_tt.cli import main

if __name__ == "__main__":
    sys.exit(main())
