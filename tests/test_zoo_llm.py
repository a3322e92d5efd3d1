"""keras_hub's decoder LLMs, tensorized: every family that builds small.

Each family is built from a small config (`llm_zoo`), tensorized with the
default selection (``min_params=1``), and checked against the original: at
full rank the backbone gives the same outputs and the `CausalLM` generates
the same tokens; the share of parameters reached; `.keras` round trips;
LiteRT export of a small decoder.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_tt

keras_hub = pytest.importorskip("keras_hub")

from llm_zoo import FAMILIES  # noqa: E402
from llm_zoo import build_backbone  # noqa: E402
from llm_zoo import build_causal_lm  # noqa: E402
from llm_zoo import token_ids  # noqa: E402

pytestmark = [
    pytest.mark.zoo,
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

FULL_RANK = 10**6
_cache = {}


def tensorized(family):
    if family not in _cache:
        backbone = build_backbone(family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tt = keras_tt.tensorize(
                backbone, tt_rank=FULL_RANK, min_params=1, verbose=0
            )
        _cache[family] = backbone, tt
    return _cache[family]


def outputs(model, data):
    return keras.ops.convert_to_numpy(model(data))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_full_rank_equals_the_original(family):
    backbone, tt = tensorized(family)
    assert type(tt).__mro__[1] is type(backbone) or type(tt) is type(backbone)
    assert isinstance(tt, type(backbone))
    data = token_ids()
    expected = outputs(backbone, data)
    np.testing.assert_allclose(
        outputs(tt, data), expected, atol=2e-5 * max(1, np.abs(expected).max())
    )
    # The original is untouched: still its own dense layers.
    assert not any(
        type(layer).__module__.startswith("keras_tt")
        for layer in backbone._flatten_layers()
    )


def _reached_share(backbone, tt):
    reached = sum(r.dense_params for r in tt.tensorize_report.layers)
    return reached / backbone.count_params()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_default_selection_reaches_95_percent(family):
    backbone, tt = tensorized(family)
    assert _reached_share(backbone, tt) >= 0.95


@pytest.mark.parametrize("family", list(FAMILIES))
def test_keras_round_trip(family, tmp_path):
    _, tt = tensorized(family)
    path = tmp_path / f"{family}.keras"
    tt.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded).__name__ == type(tt).__name__
    data = token_ids()
    np.testing.assert_allclose(
        outputs(loaded, data), outputs(tt, data), atol=1e-6
    )
    assert loaded.count_params() == tt.count_params()


def _prompt():
    ids = np.zeros((2, 12), "int32")
    ids[0, :4] = [5, 9, 17, 3]
    ids[1, :3] = [40, 2, 77]
    mask = (ids != 0).astype("int32")
    return {"token_ids": ids, "padding_mask": mask}


def _spread_embeddings(model, seed=1):
    """Larger random token embeddings, so that greedy decoding varies."""
    table = model.backbone.token_embedding.embeddings
    rng = np.random.default_rng(seed)
    table.assign(rng.normal(0, 1.0, size=table.shape).astype(table.dtype))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_causal_lm_generates_the_same_tokens(family):
    lm = build_causal_lm(family)
    _spread_embeddings(lm)
    lm.compile(sampler="greedy")
    try:
        expected = lm.generate(_prompt(), stop_token_ids=None)["token_ids"]
    except Exception as error:  # noqa: BLE001 - the original's own failure
        pytest.skip(
            f"the original {type(lm).__name__} cannot generate from token "
            f"ids without a preprocessor: {type(error).__name__}: {error}"
        )
    tt = keras_tt.tensorize(lm, tt_rank=FULL_RANK, min_params=1, verbose=0)
    assert isinstance(tt, type(lm))
    # The logits of the whole prompt, through the model's graph...
    logits = outputs(lm, _prompt())
    np.testing.assert_allclose(
        outputs(tt, _prompt()), logits, atol=2e-5 * np.abs(logits).max()
    )
    # ... and the tokens generated through its cached decoding loop.
    tt.compile(sampler="greedy")
    got = tt.generate(_prompt(), stop_token_ids=None)["token_ids"]
    np.testing.assert_array_equal(got, expected)


def test_a_causal_lm_loads_in_a_fresh_process(tmp_path):
    lm = build_causal_lm("llama")
    _spread_embeddings(lm)
    lm.compile(sampler="greedy")
    expected = lm.generate(_prompt(), stop_token_ids=None)["token_ids"]
    tt = keras_tt.tensorize(lm, tt_rank=8, min_params=1, verbose=0)
    tt.compile(sampler="greedy")
    tt_tokens = tt.generate(_prompt(), stop_token_ids=None)["token_ids"]
    path = tmp_path / "lm.keras"
    tt.save(path)
    np.save(tmp_path / "prompt_ids.npy", _prompt()["token_ids"])
    np.save(tmp_path / "tokens.npy", tt_tokens)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import keras_tt
        m = keras.saving.load_model({str(path)!r})
        m.compile(sampler="greedy")
        ids = np.load({str(tmp_path / "prompt_ids.npy")!r})
        mask = (ids != 0).astype("int32")
        prompt = {{"token_ids": ids, "padding_mask": mask}}
        got = m.generate(prompt, stop_token_ids=None)["token_ids"]
        np.testing.assert_array_equal(
            got, np.load({str(tmp_path / "tokens.npy")!r}))
        print("ok", type(m).__name__, keras_tt.model_report(m).layers[0].kind)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok LlamaCausalLM" in result.stdout
    assert expected.shape == tt_tokens.shape


def _fixed_length(backbone, length):
    inputs = {
        name: keras.Input((length,), dtype="int32", name=name)
        for name in ("token_ids", "padding_mask")
    }
    return keras.Model(inputs, backbone(inputs))


@pytest.mark.parametrize("quantization", [None, "int8"])
@pytest.mark.parametrize("family", ["llama", "gemma", "qwen3"])
def test_litert_export(family, quantization, tmp_path):
    pytest.importorskip("ai_edge_litert")
    backbone = build_backbone(family)
    tt_backbone = keras_tt.tensorize(
        backbone, tt_rank=8, min_params=1, verbose=0
    )
    data = token_ids(4, 8, seed=1)
    calibration = token_ids(64, 8, seed=2)

    def export(model, name):
        return keras_tt.export_tflite(
            _fixed_length(model, 8),
            tmp_path / f"{name}.tflite",
            quantization=quantization,
            representative_data=calibration if quantization else None,
            validation_data=data,
            verbose=False,
        )

    # Float32: export_tflite itself fails unless LiteRT matches Keras.
    report = export(tt_backbone, "tt")
    assert report.info.ops and report.info.builtin_only
    assert np.isfinite(report.relative_error)
    if quantization == "int8":
        assert report.quantized_tensors
        # int8 costs the TT decoder no more than it costs the dense one.
        reference = export(backbone, "dense").relative_error
        assert report.relative_error <= reference + 0.05


def test_llm_zoo_table():
    """Print the share reached and the compression at TT-rank 8, per family.

    ``pytest tests/test_zoo_llm.py -k table -s`` prints the table the
    decoder LLMs guide shows.
    """
    rows = [
        "| family | parameters | reached by default | kinds | TT-rank 8 |",
        "|---|---:|---:|---|---:|",
    ]
    for family in FAMILIES:
        backbone, tt = tensorized(family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            small = keras_tt.tensorize(
                backbone, tt_rank=8, min_params=1, verbose=0
            )
        report = small.tensorize_report
        # The report's totals are the models' own parameter counts.
        assert report.params_before == backbone.count_params()
        assert report.params_after == small.count_params()
        kinds = sorted({r.kind for r in tt.tensorize_report.layers})
        rows.append(
            f"| {family} | {backbone.count_params():,} | "
            f"{_reached_share(backbone, tt):.1%} | {', '.join(kinds)} | "
            f"{backbone.count_params() / small.count_params():.2f}x |"
        )
    print("\n" + "\n".join(rows))


@pytest.mark.parametrize("family", ["llama", "gemma", "qwen3", "mixtral"])
def test_fast_modes_reach_every_projection_and_export(family, tmp_path):
    # modes="fast": two cores for every attention and feed-forward
    # projection; embeddings and experts keep their automatic modes. Full
    # rank gives the original's outputs; the LiteRT file matches Keras.
    backbone = build_backbone(family)
    tt = keras_tt.tensorize(
        backbone, tt_rank=FULL_RANK, modes="fast", min_params=1, verbose=0
    )
    data = token_ids()
    expected = outputs(backbone, data)
    np.testing.assert_allclose(
        outputs(tt, data), expected, atol=2e-5 * max(1, np.abs(expected).max())
    )
    projections = [
        layer
        for layer in tt._flatten_layers()
        if isinstance(layer, (keras_tt.TTDense, keras_tt.TTEinsumDense))
    ]
    assert projections
    for layer in projections:
        rows, cols = layer.input_dim, layer.units
        assert (layer.in_modes, layer.out_modes) == keras_tt.fast_modes(
            rows, cols
        ), layer.name
    small = keras_tt.tensorize(
        backbone, tt_rank=4, modes="fast", min_params=1, verbose=0
    )
    report = keras_tt.export_tflite(
        _fixed_length(small, 8),
        tmp_path / f"{family}_fast.tflite",
        validation_data=token_ids(4, 8, seed=1),
        verbose=False,
    )
    assert report.info.builtin_only and report.relative_error < 1e-4
