"""`.keras` files whose TT config was edited are refused before allocating.

Each case saves a small model, rewrites the TT layer's entry in the file's
``config.json`` so that its cores would be enormous (huge ranks over huge
modes, or a long chain of size-1 modes), and loads the file. The loads run
in one child process whose address space is limited (``RLIMIT_AS``): with
the size check in place each load fails at once with a ``ValueError``
naming the argument; without it the child would try to allocate the cores
and fail on memory instead of freezing the machine. The untouched files
load in the same child and give the original model's outputs.
"""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import keras_tt
from keras_tt.layers.low_rank_dense import LowRankDense

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Address space of the loading process: room for TensorFlow and the small
# models, far too little for any of the tampered cores.
MEMORY_LIMIT = 6 * 2**30
HUGE_RANK = 10**6
MODES = [1024, 1024]
WIDE = 1024 * 1024
ONES = [1] * 500


def _walk(node, class_name, edit):
    if isinstance(node, dict):
        if node.get("class_name") == class_name and "config" in node:
            edit(node)
        for value in node.values():
            _walk(value, class_name, edit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, class_name, edit)


def tamper(src, dst, edits):
    """Copy the ``.keras`` file ``src`` to ``dst`` with ``config.json`` edited.

    ``edits`` maps a class name to a function editing, in place, every
    serialized entry of that class (``{"class_name", "config", ...}``).
    """
    with zipfile.ZipFile(src) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    for class_name, edit in edits.items():
        _walk(config, class_name, edit)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def _input_shape(shape):
    def edit(entry):
        entry["config"]["batch_shape"] = [None, *shape]

    return edit


def _with_input(edit, shape):
    def both(entry):
        edit(entry["config"])
        if "build_config" in entry:
            entry["build_config"]["input_shape"] = [None, *shape]

    return both


def _dense_edit(config):
    config.update(
        units=WIDE, tt_rank=HUGE_RANK, in_modes=MODES, out_modes=MODES
    )


def _einsum_edit(config):
    config.update(
        output_shape=WIDE, tt_rank=HUGE_RANK, in_modes=MODES, out_modes=MODES
    )


def _embedding_edit(config):
    config.update(
        input_dim=WIDE,
        output_dim=WIDE,
        tt_rank=HUGE_RANK,
        vocab_modes=MODES,
        embed_modes=MODES,
    )


def _conv_edit(config):
    config.update(
        filters=WIDE, tt_rank=HUGE_RANK, in_modes=MODES, out_modes=MODES
    )


def _attention_edit(entry):
    entry["config"]["tt_projections"]["query"] = {
        "tt_rank": HUGE_RANK,
        "in_modes": [4, *ONES, 4],
        "out_modes": [2, *ONES, 4],
    }


def _low_rank_edit(config):
    config["rank"] = 10**9


def _model(inputs, layer):
    return keras.Model(inputs, layer(inputs))


def _cases():
    """``{name: (model, input, edits, argument)}``."""
    rng = np.random.default_rng(0)
    dense_in = rng.normal(size=(3, 16)).astype("float32")
    ids = rng.integers(0, 64, size=(3, 5)).astype("int32")
    image = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    signal = rng.normal(size=(2, 7, 4)).astype("float32")
    tokens = rng.normal(size=(2, 5, 16)).astype("float32")

    dense = _model(
        keras.Input((16,)),
        keras_tt.TTDense(8, tt_rank=3, in_modes=(4, 4), out_modes=(2, 4)),
    )
    einsum = _model(
        keras.Input((16,)),
        keras_tt.TTEinsumDense(
            "ab,bc->ac", 8, tt_rank=3, in_modes=(4, 4), out_modes=(2, 4)
        ),
    )
    embedding = _model(
        keras.Input((5,), dtype="int32"),
        keras_tt.TTEmbedding(
            64, 8, tt_rank=3, vocab_modes=(8, 8), embed_modes=(2, 4)
        ),
    )
    conv2d = _model(
        keras.Input((6, 6, 4)),
        keras_tt.TTConv2D(8, 3, tt_rank=3, in_modes=(2, 2), out_modes=(2, 4)),
    )
    conv1d = _model(
        keras.Input((7, 4)),
        keras_tt.TTConv1D(8, 3, tt_rank=3, in_modes=(2, 2), out_modes=(2, 4)),
    )
    tokens_in = keras.Input((5, 16))
    attention = keras.Model(
        tokens_in,
        keras_tt.TTMultiHeadAttention(
            num_heads=2,
            key_dim=4,
            tt_projections={"query": {"tt_rank": 3}, "output": {"tt_rank": 3}},
        )(tokens_in, tokens_in),
    )
    low_rank = _model(keras.Input((16,)), LowRankDense(8, rank=3))
    return {
        "TTDense": (
            dense,
            dense_in,
            {
                "InputLayer": _input_shape([WIDE]),
                "TTDense": _with_input(_dense_edit, [WIDE]),
            },
            "tt_rank",
        ),
        "TTEinsumDense": (
            einsum,
            dense_in,
            {
                "InputLayer": _input_shape([WIDE]),
                "TTEinsumDense": _with_input(_einsum_edit, [WIDE]),
            },
            "tt_rank",
        ),
        "TTEmbedding": (
            embedding,
            ids,
            {"TTEmbedding": lambda entry: _embedding_edit(entry["config"])},
            "tt_rank",
        ),
        "TTConv2D": (
            conv2d,
            image,
            {
                "InputLayer": _input_shape([6, 6, WIDE]),
                "TTConv2D": _with_input(_conv_edit, [6, 6, WIDE]),
            },
            "tt_rank",
        ),
        "TTConv1D": (
            conv1d,
            signal,
            {
                "InputLayer": _input_shape([7, WIDE]),
                "TTConv1D": _with_input(_conv_edit, [7, WIDE]),
            },
            "tt_rank",
        ),
        "TTMultiHeadAttention": (
            attention,
            tokens,
            {"TTMultiHeadAttention": _attention_edit},
            "tt_rank",
        ),
        "LowRankDense": (
            low_rank,
            dense_in,
            {"LowRankDense": lambda entry: _low_rank_edit(entry["config"])},
            "rank",
        ),
    }


def _load_all(directory):
    """In the child: load every file of ``directory``, record the outcome."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import keras

    import keras_tt  # noqa: F401 (registers the layers)

    directory = pathlib.Path(directory)
    results = {}
    for path in sorted(directory.glob("*.keras")):
        try:
            model = keras.saving.load_model(path)
        except Exception as error:  # noqa: BLE001 (recorded for the parent)
            results[path.stem] = {
                "error": type(error).__name__,
                "value_error": isinstance(error, ValueError),
                "message": str(error),
            }
            continue
        inputs = np.load(directory / f"{path.stem.split('.')[0]}.in.npy")
        results[path.stem] = {"output": np.asarray(model(inputs)).tolist()}
    (directory / "results.json").write_text(json.dumps(results))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tampered")
    expected = {}
    for name, (model, inputs, edits, _) in _cases().items():
        original = directory / f"{name}.keras"
        model.save(original)
        tamper(original, directory / f"{name}.tampered.keras", edits)
        np.save(directory / f"{name}.in.npy", inputs)
        expected[name] = np.asarray(model(inputs))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    run = subprocess.run(
        [sys.executable, __file__, str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads((directory / "results.json").read_text())
    return expected, results


CASE_NAMES = (
    "TTDense",
    "TTEinsumDense",
    "TTEmbedding",
    "TTConv2D",
    "TTConv1D",
    "TTMultiHeadAttention",
    "LowRankDense",
)
ARGUMENTS = {name: "tt_rank" for name in CASE_NAMES} | {"LowRankDense": "rank"}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_tampered_file_is_refused(outcomes, name):
    _, results = outcomes
    result = results[f"{name}.tampered"]
    assert result.get("value_error"), result
    argument = ARGUMENTS[name]
    assert f"Received an invalid value for `{argument}`" in result["message"]
    assert "damaged or edited" in result["message"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_untouched_file_loads_and_matches(outcomes, name):
    expected, results = outcomes
    result = results[name]
    assert "output" in result, result
    np.testing.assert_allclose(
        np.asarray(result["output"]), expected[name], rtol=1e-5, atol=1e-6
    )


def test_constructor_refuses_huge_cores():
    # The modes fix the layout in `__init__`, so no input is needed to
    # see that these cores (2 * 1024**2 * 10**6 entries) are too large.
    with pytest.raises(ValueError, match=r"`tt_rank`.*2,097,152,000,000"):
        keras_tt.TTDense(
            WIDE, tt_rank=HUGE_RANK, in_modes=MODES, out_modes=MODES
        )
    with pytest.raises(ValueError, match=r"`tt_rank`.*2\*\*31"):
        keras_tt.TTEmbedding(
            WIDE,
            WIDE,
            tt_rank=HUGE_RANK,
            vocab_modes=MODES,
            embed_modes=MODES,
        )
    with pytest.raises(ValueError, match=r"`tt_rank`.*8 times the 16 "):
        keras_tt.TTEmbedding(
            4, 4, tt_rank=4, vocab_modes=[2, *ONES, 2],
            embed_modes=[2, *ONES, 2],
        )  # fmt: skip


def test_full_rank_layers_still_build():
    # Ranks above the largest useful ones are capped as before; full-rank
    # cores hold more than the dense kernel but stay within the bound.
    layer = keras_tt.TTDense(33, tt_rank=HUGE_RANK)
    layer.build((None, 11))
    assert layer.num_core_params > 11 * 33
    # The layer applies the kernel its cores stand for.
    np.testing.assert_allclose(
        np.asarray(layer(np.eye(11, dtype="float32"))),
        layer.full_kernel(),
        rtol=1e-5,
        atol=1e-5,
    )
    conv = keras_tt.TTConv2D(33, 1, tt_rank=HUGE_RANK)
    conv.build((None, 4, 4, 33))
    assert conv.num_core_params > 33 * 33
    embedding = keras_tt.TTEmbedding(1000, 64, tt_rank=HUGE_RANK)
    embedding.build()
    assert embedding.num_core_params >= 1000 * 64


if __name__ == "__main__":
    _load_all(sys.argv[1])
