"""The ``keras-tt`` command: tensorize, export and inspect models.

    keras-tt tensorize in.keras out.keras --tt-rank 8 [--rel-error 0.1] [--layers fc1,fc2]
    keras-tt export in.keras out.tflite [--quantization int8 --representative x.npy]
    keras-tt inspect model.keras | model.tflite

Bad arguments print one line naming the problem and exit with status 2; no
output file is written then.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE = 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        )
    return value


def _layer_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer names, received {text!r}"
        )
    return names


def _load_keras_model(path):
    import keras

    import keras_tt  # noqa: F401  (registers the keras_tt layers)

    if not os.path.isfile(path):
        raise ValueError(f"No model file at {path!r}.")
    return keras.saving.load_model(path, compile=False)


def _tensorize(args) -> None:
    import keras_tt

    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise ValueError(
            "The output path must differ from the input path, so the original "
            f"model is kept. Received: {args.output!r}"
        )
    model = _load_keras_model(args.input)
    tt_model = keras_tt.tensorize(
        model,
        tt_rank=args.tt_rank,
        rel_error=args.rel_error,
        target_ratio=args.target_ratio,
        layers=args.layers,
        min_params=args.min_params,
        verbose=0 if args.quiet else 1,
    )
    tt_model.save(args.output)
    if args.quiet:
        print(tt_model.tensorize_report)
    print(f"Wrote {args.output}")


def _export(args) -> None:
    from keras_tt.export import export_keras_file

    export_keras_file(
        args.input,
        args.output,
        quantization=args.quantization,
        representative_path=args.representative,
        batch_size=args.batch_size,
        io_dtype=args.io_dtype,
        verbose=True,
    )


def _inspect(args) -> None:
    path = args.path
    if path.endswith(".tflite"):
        from keras_tt.export import inspect_tflite

        if not os.path.isfile(path):
            raise ValueError(f"No .tflite file at {path!r}.")
        print(inspect_tflite(path))
        return
    import keras_tt

    report = keras_tt.model_report(_load_keras_model(path))
    if not report.layers:
        print(f"{path}: no TTDense layers.")
    print(report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-tt",
        description="Compress Keras models with Tensor-Train layers, export "
        "them to TFLite/LiteRT, and inspect the results.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    tensorize = commands.add_parser(
        "tensorize",
        help="replace large Dense layers of a .keras model by TTDense layers",
        description="Replace the large Dense layers of a saved model by TTDense "
        "layers initialised by TT-SVD, print the report and save the result. "
        "Give --tt-rank, --rel-error or --target-ratio (or a combination).",
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
        "--layers",
        type=_layer_names,
        default=None,
        help="comma-separated names of the Dense layers to "
        "replace (default: every large one)",
    )
    tensorize.add_argument(
        "--min-params",
        type=_positive_int,
        default=16384,
        help="without --layers, replace Dense layers with at "
        "least this many kernel parameters (default 16384)",
    )
    tensorize.add_argument(
        "--quiet", action="store_true", help="no progress bar"
    )
    tensorize.set_defaults(run=_tensorize)

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
    export.set_defaults(run=_export)

    inspect = commands.add_parser(
        "inspect",
        help="describe a .keras model's TT layers or a .tflite file",
        description="For a .keras model: each TTDense layer's modes, ranks, "
        "parameters and compression. For a .tflite file: size, ops with their "
        "versions and the minimum runtime version.",
    )
    inspect.add_argument("path", help="a .keras or .tflite file")
    inspect.set_defaults(run=_inspect)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-tt {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
