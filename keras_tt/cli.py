"""The ``keras-tt`` command: tensorize, export and inspect models.

    keras-tt tensorize in.keras out.keras --tt-rank 8 [--rel-error 0.1]
    keras-tt export in.keras out.tflite [--quantization int8
                                         --representative x.npy]
    keras-tt inspect model.keras | model.tflite

``--help`` and argument errors are answered before TensorFlow is imported,
so they return at once. Every expected failure (a bad argument, a missing or
unreadable file, an output path that is one of the inputs, a library error)
prints one line on stderr and exits with status 2; no output file is written
then, and no command ever writes over one of its inputs.

Unless ``TF_CPP_MIN_LOG_LEVEL`` is set, TensorFlow's C++ start-up log lines
(oneDNN, CUDA, CPU features) are kept off the terminal.

The options and the checks of the files named are in
`keras_tt._cli_arguments`; this module runs the commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile

from keras_tt import _cli_arguments
from keras_tt._cli_arguments import EXIT_USAGE
from keras_tt._cli_arguments import PROG
from keras_tt._cli_arguments import CommandError

# TensorFlow's start-up lines on stderr: absl's "log messages before
# InitializeLog" notice, INFO/WARNING lines such as
# "I0000 00:00:17.7 123 port.cc:153] oneDNN custom operations are on",
# the CPU-feature notice's second line; the converter's quantisation
# settings line and LiteRT's delegate notice.
_TF_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] "
    rb"|To enable the following instructions: "
    rb"|fully_quantize: \d"
    rb"|INFO: Created TensorFlow Lite \w+ delegate)"
)


# Whether this process set TF_CPP_MIN_LOG_LEVEL (the user had not).
_we_set_log_level = False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``keras-tt`` (imports nothing heavy)."""
    return _cli_arguments.build_parser(
        {"tensorize": _tensorize, "export": _export, "inspect": _inspect}
    )


# --------------------------------------------------------- loading quietly


def _silence_tensorflow() -> bool:
    """Ask TensorFlow for errors only, unless the user chose a log level.

    Returns whether the remaining start-up and converter notices should be
    filtered out of stderr as well.
    """
    global _we_set_log_level
    from keras_tt import _quiet

    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ or _quiet.set_by_keras_tt:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        _we_set_log_level = True
    return _we_set_log_level


@contextlib.contextmanager
def _filtered_stderr(enabled: bool):
    """Drop TensorFlow's and LiteRT's notices from stderr, keep the rest.

    Some notices are written by C++ code before TensorFlow reads
    ``TF_CPP_MIN_LOG_LEVEL``, or ignore it, so stderr is captured at the
    file-descriptor level; the lines that are not such notices (warnings,
    errors) are written back when the block ends.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().splitlines(keepends=True)
                if not _TF_NOISE.match(line)
            ]
            if kept:
                os.write(2, b"".join(kept))


def _import_tensorflow() -> None:
    import keras  # noqa: F401
    import tensorflow  # noqa: F401


# ------------------------------------------------------------- the commands


def _load_keras_model(path):
    import keras

    import keras_tt.layers  # noqa: F401  (registers the keras_tt layers)

    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, OSError, KeyError) as error:
        raise CommandError(
            f"Cannot load the model {path!r}: {_one_line(error)}"
        ) from None


def _tensorize(args) -> None:
    from keras_tt.tensorize import tensorize

    model = _load_keras_model(args.input)
    options = {}
    if args.min_params is not None:
        options["min_params"] = args.min_params
    if args.modes == "fast":
        options["modes"] = "fast"
    calibration = None
    if args.calibration is not None:
        import numpy as np

        calibration = np.load(args.calibration, allow_pickle=False)
    if args.model_ratio is not None:
        options["model_ratio"] = args.model_ratio
        options["calibration_data"] = calibration
        options["allocation"] = args.allocation
    tt_model = tensorize(
        model,
        tt_rank=args.tt_rank,
        rel_error=args.rel_error,
        target_ratio=args.target_ratio,
        layers=args.layers,
        verbose=0 if args.quiet else 1,
        **options,
    )
    if args.data_aware:
        from keras_tt.data_aware import data_aware_init

        for record in data_aware_init(tt_model, model, calibration):
            print(
                f"data-aware {record.name}: output error "
                f"{record.error_before:.4f} -> {record.error_after:.4f}"
                f"{'' if record.kept else ' (kept the TT-SVD cores)'}"
            )
    tt_model.save(args.output)
    if args.quiet:
        print(tt_model.tensorize_report)
    print(f"Wrote {args.output}")


def _export(args) -> None:
    import numpy as np

    from keras_tt.export import export_tflite

    model = _load_keras_model(args.input)
    representative = None
    if args.representative is not None:
        try:
            representative = np.load(args.representative, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise CommandError(
                f"Cannot read --representative {args.representative!r}: "
                f"{_one_line(error)}"
            ) from None
    export_tflite(
        model,
        args.output,
        quantization=args.quantization,
        representative_data=representative,
        batch_size=args.batch_size,
        io_dtype=args.io_dtype,
        verbose=True,
    )


def _inspect(args) -> None:
    path = args.path
    if path.lower().endswith(".tflite"):
        from keras_tt.export import inspect_tflite

        print(inspect_tflite(path))
        return
    from keras_tt.report import model_report

    report = model_report(_load_keras_model(path))
    if not report.layers:
        print(f"{path}: no TTDense layers.")
    print(report)


# ------------------------------------------------------------------ running


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _expected_errors() -> tuple:
    """Library errors that mean bad input rather than a bug."""
    errors = [CommandError, ValueError, TypeError, OSError]
    export = sys.modules.get("keras_tt.export")
    if export is not None and hasattr(export, "VerificationError"):
        errors.append(export.VerificationError)
    return tuple(errors)


def _parse_and_check(argv):
    """Parse ``argv`` (exits on argparse errors) and check the files.

    Returns the arguments and the one-line error, or ``None``.
    """
    args = build_parser().parse_args(argv)
    try:
        args.check(args)
    except CommandError as error:
        return args, _error_line(args.command, error)
    return args, None


def _error_line(command: str, error: BaseException) -> str:
    return f"{PROG} {command}: error: {_one_line(error)}"


def main(argv=None) -> int:
    """Run the command line; returns the exit status.

    Argument errors found by argparse raise ``SystemExit(2)``; files that are
    missing or of the wrong type, and an output that is one of the inputs,
    return 2 before TensorFlow is imported; later expected failures (library
    errors) return 2 as well. Each prints one line on stderr.
    """
    args, error = _parse_and_check(argv)
    if error is None:
        with _filtered_stderr(_silence_tensorflow()):
            _import_tensorflow()
            try:
                args.run(args)
            except _expected_errors() as failure:
                error = _error_line(args.command, failure)
            else:
                return 0
    print(error, file=sys.stderr)
    return EXIT_USAGE


def _launched_as_command() -> bool:
    """True in a process started as ``keras-tt`` or ``python -m keras_tt``."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    if argv0 in (PROG, PROG + ".exe", PROG + "-script.py"):
        return True
    orig = list(getattr(sys, "orig_argv", ()))
    return any(
        flag == "-m" and module == "keras_tt"
        for flag, module in zip(orig, orig[1:])
    )


def _answer_early() -> None:
    """In the ``keras-tt`` process: check the arguments, then load quietly.

    ``keras_tt/__init__.py`` imports this module before anything that loads
    TensorFlow, so ``--help`` and argument errors exit here, in a fraction of
    a second; for a valid command, TensorFlow is imported without its
    start-up log lines. Any other import of keras_tt is not affected.
    """
    if not _launched_as_command() or "tensorflow" in sys.modules:
        return
    _, error = _parse_and_check(sys.argv[1:])
    if error is not None:
        print(error, file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    with _filtered_stderr(_silence_tensorflow()):
        _import_tensorflow()


_answer_early()
