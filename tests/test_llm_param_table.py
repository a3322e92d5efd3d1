"""tools/llm_param_table.py counts what keras_hub builds and keras_tt makes."""

import dataclasses
import importlib.util
import math
import pathlib
import sys

import keras
import pytest

import keras_tt

ROOT = pathlib.Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location(
    "llm_param_table", ROOT / "tools" / "llm_param_table.py"
)
table = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = table  # dataclasses look their module up
_SPEC.loader.exec_module(table)

# The "params" of the keras_hub presets (keras_hub's *_presets.py), an
# independent count of the same architectures. keras_hub's Llama 3.2 1B
# preset holds an untied output head, the published config ties it.
PRESET_PARAMS = {
    "Gemma 3 1B": 999_885_952,
    "Qwen3 0.6B": 596_049_920,
    "Phi-3 mini (3.8B)": 3_821_079_552,
}
LLAMA_3_2_1B_UNTIED = 1_498_482_688


def _model(name):
    return next(c for c in table.MODELS if c.name == name)


@pytest.mark.parametrize("name", sorted(PRESET_PARAMS))
def test_totals_match_keras_hub_presets(name):
    assert table.total_params(_model(name)) == PRESET_PARAMS[name]


def test_llama_total_with_and_without_tied_head():
    llama = _model("Llama 3.2 1B")
    untied = dataclasses.replace(llama, tied=False)
    assert table.total_params(untied) == LLAMA_3_2_1B_UNTIED
    assert table.total_params(llama) == LLAMA_3_2_1B_UNTIED - 128256 * 2048


def test_tt_counts_are_those_of_the_layers():
    # The TT size of a kernel is that of the TT layer the pass builds.
    llama = _model("Llama 3.2 1B")
    by_name = {k.name: k for k in table.kernels(llama)}
    rows, cols = by_name["ffn_gate"].matrix
    layer = keras_tt.TTDense(cols, tt_rank=16)
    layer.build((None, rows))
    assert by_name["ffn_gate"].layout(16).num_params == layer.num_core_params
    # ... and the sum over cores of r_{k-1} n_k m_k r_k, ranks capped.
    layout = by_name["key"].layout(64)
    assert max(layout.ranks) <= 64
    assert layout.num_params == sum(
        layout.ranks[k] * n * m * layout.ranks[k + 1]
        for k, (n, m) in enumerate(zip(layout.in_modes, layout.out_modes))
    )
    # The query kernel (hidden, heads, head_dim) is hidden x heads*head_dim.
    assert by_name["query"].matrix == (2048, 32 * 64)
    assert by_name["attention_output"].matrix == (32 * 64, 2048)


def test_compression_follows_rank():
    for config in table.MODELS:
        total = table.total_params(config)
        after = [table.params_after(config, r) for r in table.RANKS]
        assert after == sorted(after)
        assert all(
            total - table.replaced_params(config) < a < total for a in after
        )


def test_script_prints_the_table(capsys):
    assert table.main([]) == 0
    out = capsys.readouterr().out
    assert "| Llama 3.2 1B | 1,235,814,400 |" in out


@pytest.mark.zoo
@pytest.mark.parametrize("tied", [True, False])
def test_count_equals_tiny_llama_backbone(tied):
    keras_hub = pytest.importorskip("keras_hub")
    config = table.LLMConfig(
        name="tiny",
        source="test",
        hidden=32,
        intermediate=48,
        layers=2,
        heads=4,
        kv_heads=2,
        head_dim=8,
        vocab=101,
        tied=tied,
    )
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=config.vocab,
        num_layers=config.layers,
        num_query_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        hidden_dim=config.hidden,
        intermediate_dim=config.intermediate,
        tie_word_embeddings=tied,
    )
    assert table.total_params(config) == backbone.count_params()
    # The kernel shapes are those of the backbone's layers.
    block = backbone.transformer_layers[0]
    attention = block._self_attention_layer
    built = {
        "query": attention._query_dense.kernel.shape,
        "key": attention._key_dense.kernel.shape,
        "value": attention._value_dense.kernel.shape,
        "attention_output": attention._output_dense.kernel.shape,
        "ffn_gate": block._feedforward_gate_dense.kernel.shape,
        "ffn_up": block._feedforward_intermediate_dense.kernel.shape,
        "ffn_down": block._feedforward_output_dense.kernel.shape,
        "token_embedding": backbone.token_embedding.embeddings.shape,
    }
    for kernel in table.kernels(config):
        if kernel.name in built:
            assert tuple(built[kernel.name]) == kernel.shape, kernel.name
    # Every weight but the norm scales is one of the kernels listed.
    kernel_params = sum(
        math.prod(built.get(k.name, k.shape)) * k.count
        for k in table.kernels(config)
    )
    assert kernel_params + table.other_params(config) == (
        backbone.count_params()
    )
    keras.backend.clear_session()
