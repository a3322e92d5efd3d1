"""The ``keras-tt`` command's arguments, and the checks of its files.

`build_parser` describes the three commands and parses their options; the
``_check_*`` functions then look at the files named (does each exist, is it
the kind of file its suffix says, is the output none of the inputs) by their
first bytes. None of this imports TensorFlow, so ``--help`` and argument
errors are answered at once. Running the commands is `keras_tt.cli`.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from collections.abc import Callable
from collections.abc import Mapping

from keras_tt.modes import is_positive_int

EXIT_USAGE = 2
PROG = "keras-tt"

_KERAS_SUFFIXES = (".keras",)
_HDF5_SUFFIXES = (".h5", ".hdf5")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"
_TFLITE_MAGIC = b"TFL3"


class CommandError(Exception):
    """An expected failure: printed as one line, exit status 2."""


# ------------------------------------------------------------ argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if not is_positive_int(value):
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        )
    return value


def _non_negative_int(text: str) -> int:
    if text.strip() == "0":
        return 0
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, received {text!r}"
        ) from None


def _layer_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer names, received {text!r}"
        )
    return names


# What `keras-tt tensorize` converts, one kind of layer a line.
_LAYER_KINDS = """\
layers tensorize converts (trained weights -> TT layer by TT-SVD):
  Dense                  -> TTDense
  EinsumDense            -> TTEinsumDense
  Embedding              -> TTEmbedding (also keras_hub's ReversibleEmbedding)
  MultiHeadAttention     -> TT attention (TTMultiHeadAttention: its
                            query/key/value/output projections as
                            TTEinsumDense)
  Conv2D, Conv1D         -> TTConv2D, TTConv1D (depthwise, separable and
                            grouped convolutions are left unchanged)
"""


def _version() -> str:
    from keras_tt import __version__

    return __version__


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage."""

    def error(self, message):
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {message} (see '{self.prog} --help')\n",
        )


def build_parser(
    runners: Mapping[str, Callable[[argparse.Namespace], None]],
) -> argparse.ArgumentParser:
    """The argument parser of ``keras-tt`` (imports nothing heavy).

    Args:
        runners: for each command (``"tensorize"``, ``"export"``,
            ``"inspect"``), the function that runs it; the parsed arguments
            hold it as ``run`` and the command's file checks as ``check``.
    """
    parser = _Parser(
        prog=PROG,
        description="Compress Keras models with Tensor-Train layers, export "
        "them to\nTFLite/LiteRT, and inspect the results.",
        epilog=_LAYER_KINDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="print the keras_tt version and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    tensorize = commands.add_parser(
        "tensorize",
        help="replace the large layers of a .keras model by TT layers",
        description="Replace the large layers of a saved model by TT layers "
        "initialised by TT-SVD, print the report and save the result. Give "
        "--tt-rank, --rel-error or --target-ratio (or a combination).",
        epilog=_LAYER_KINDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tensorize.add_argument("input", help="the trained model (.keras)")
    tensorize.add_argument(
        "output", help="where to write the new model (.keras)"
    )
    tensorize.add_argument(
        "--tt-rank",
        type=_positive_int,
        default=None,
        help="largest TT-rank of every bond",
    )
    tensorize.add_argument(
        "--rel-error",
        type=float,
        default=None,
        help="relative Frobenius error allowed per layer",
    )
    tensorize.add_argument(
        "--target-ratio",
        type=float,
        default=None,
        help="compress each selected layer at least this much",
    )
    tensorize.add_argument(
        "--model-ratio",
        type=float,
        default=None,
        help="compress the whole model at least this much, ranks allocated "
        "across the selected layers",
    )
    tensorize.add_argument(
        "--calibration",
        default=None,
        help="with --model-ratio: a .npy file of sample inputs on which "
        "each layer's sensitivity is measured",
    )
    tensorize.add_argument(
        "--allocation",
        choices=("auto", "threshold", "greedy"),
        default=None,
        help="with --model-ratio: shared error threshold (default without "
        "--calibration), greedy by output change, or auto (default with "
        "--calibration): both, keeping the one whose whole model changes "
        "the outputs less on the calibration sample",
    )
    tensorize.add_argument(
        "--data-aware",
        action="store_true",
        help="re-initialise the TT layers on the --calibration inputs "
        "(whitened / frequency-weighted TT-SVD)",
    )
    tensorize.add_argument(
        "--layers",
        type=_layer_names,
        default=None,
        help="comma-separated names of the layers to replace "
        "(default: every large one)",
    )
    tensorize.add_argument(
        "--min-params",
        type=_non_negative_int,
        default=None,
        help="without --layers, replace layers with at least this many "
        "kernel parameters (default: the DEFAULT_MIN_PARAMS of "
        "keras_tt.tensorize)",
    )
    tensorize.add_argument(
        "--modes",
        choices=("auto", "fast"),
        default="auto",
        help="auto: balanced modes (several cores); fast: two cores with "
        "the large modes outside (keras_tt.fast_modes) for Dense, "
        "EinsumDense and attention layers, several times faster on device",
    )
    tensorize.add_argument(
        "--quiet", action="store_true", help="no progress bar"
    )
    tensorize.set_defaults(run=runners["tensorize"], check=_check_tensorize)

    export = commands.add_parser(
        "export",
        help="convert a .keras model to .tflite with builtin ops only",
        description="Convert a saved model to a .tflite file that needs only "
        "builtin LiteRT ops, verify it in the LiteRT interpreter and print "
        "the report. Nothing is written if verification fails.",
    )
    export.add_argument("input", help="the model (.keras)")
    export.add_argument("output", help="the .tflite file to write")
    export.add_argument(
        "--quantization",
        default=None,
        choices=["float32", "float16", "dynamic", "int8"],
        help="default: float32",
    )
    export.add_argument(
        "--representative",
        default=None,
        help=".npy file of sample inputs (needed for int8)",
    )
    export.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="fixed batch size (default: resizable)",
    )
    export.add_argument(
        "--io-dtype",
        default="float32",
        choices=["float32", "int8"],
        help="int8 exports: type of the inputs and outputs",
    )
    export.set_defaults(run=runners["export"], check=_check_export)

    inspect = commands.add_parser(
        "inspect",
        help="describe a .keras model's TT layers or a .tflite file",
        description="For a .keras model: each TTDense layer's modes, ranks, "
        "parameters and compression. For a .tflite file: size, ops with their "
        "versions and the minimum runtime version.",
    )
    inspect.add_argument("path", help="a .keras or .tflite file")
    inspect.set_defaults(run=runners["inspect"], check=_check_inspect)
    return parser


# ------------------------------------------- file checks (before TensorFlow)


def _read_head(path: str, size: int, what: str) -> bytes:
    if not os.path.exists(path):
        raise CommandError(f"No {what} at {path!r}: the file does not exist.")
    if os.path.isdir(path):
        raise CommandError(f"Expected {what} at {path!r}, found a directory.")
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as error:
        raise CommandError(
            f"Cannot read {what} at {path!r}: {error.strerror}."
        ) from None


def _check_keras_file(path: str) -> None:
    """A readable saved model: a ``.keras`` zip archive or a legacy ``.h5``."""
    if path.lower().endswith(_HDF5_SUFFIXES):
        head = _read_head(path, len(_HDF5_MAGIC), "model file")
        if head != _HDF5_MAGIC:
            raise CommandError(
                f"{path!r} is not a valid HDF5 model file (no HDF5 signature)."
            )
        return
    if not path.lower().endswith(_KERAS_SUFFIXES):
        raise CommandError(
            f"Expected a model saved as .keras (or legacy .h5). Received: "
            f"{path!r}"
        )
    _read_head(path, 4, "model file")
    valid = False
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                valid = "config.json" in archive.namelist()
        except (zipfile.BadZipFile, OSError):
            valid = False
    if not valid:
        raise CommandError(
            f"{path!r} is not a valid .keras file (expected a zip archive "
            "with a config.json, as written by model.save)."
        )


def _check_npy_file(path: str, option: str) -> None:
    head = _read_head(path, len(_NPY_MAGIC), f"{option} file")
    if head != _NPY_MAGIC:
        raise CommandError(
            f"{option} expects a .npy file written by numpy.save; {path!r} is "
            "not one (no NumPy signature)."
        )


def _same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name one file (links and aliases resolved)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # One of them does not exist yet.
        return False


def _check_output(output: str, inputs: dict, suffixes: tuple) -> None:
    """``output`` is writable, has a known suffix and is none of ``inputs``."""
    for label, path in inputs.items():
        if path is not None and _same_file(output, path):
            raise CommandError(
                f"The output path must differ from the {label} path, so the "
                f"{label} file is kept; {output!r} is the same file as "
                f"{path!r}."
            )
    if not output.lower().endswith(suffixes):
        raise CommandError(
            f"Expected an output path ending in {' or '.join(suffixes)}. "
            f"Received: {output!r}"
        )
    if os.path.isdir(output):
        raise CommandError(
            f"The output path {output!r} is a directory; give a file name."
        )
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise CommandError(
            f"The output folder {folder!r} does not exist. Received: {output!r}"
        )


def _check_tensorize(args) -> None:
    budgets = (args.tt_rank, args.rel_error, args.target_ratio)
    calibration = args.calibration
    if all(value is None for value in budgets) and args.model_ratio is None:
        raise CommandError(
            "Give the TT-ranks: --tt-rank, --rel-error or --target-ratio "
            "(or a combination), or a whole-model --model-ratio."
        )
    if args.data_aware and calibration is None:
        raise CommandError("--data-aware needs --calibration, a .npy file.")
    if calibration is not None and not (args.model_ratio or args.data_aware):
        raise CommandError(
            "--calibration is read with --model-ratio or --data-aware; "
            "give one of them."
        )
    if args.allocation is not None and args.model_ratio is None:
        raise CommandError("--allocation needs --model-ratio.")
    _check_output(
        args.output,
        {"input": args.input, "--calibration": calibration},
        (".keras",),
    )
    _check_keras_file(args.input)
    if calibration is not None:
        _check_npy_file(calibration, "--calibration")


def _check_export(args) -> None:
    if args.quantization == "int8" and args.representative is None:
        raise CommandError(
            "--quantization int8 needs --representative, a .npy file of "
            "sample inputs to calibrate the integer ranges."
        )
    _check_output(
        args.output,
        {"input": args.input, "--representative": args.representative},
        (".tflite",),
    )
    _check_keras_file(args.input)
    if args.representative is not None:
        _check_npy_file(args.representative, "--representative")


def _check_inspect(args) -> None:
    if args.path.lower().endswith(".tflite"):
        head = _read_head(args.path, 8, ".tflite file")
        if len(head) < 8 or head[4:8] != _TFLITE_MAGIC:
            raise CommandError(
                f"{args.path!r} is not a valid .tflite file (no TFL3 "
                "FlatBuffer identifier)."
            )
    else:
        _check_keras_file(args.path)
