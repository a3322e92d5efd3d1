"""Small decoder LLMs from keras_hub, built from configs (no download).

Each family is built at vocabulary 256, 2 layers, hidden size 64, so that
the zoo suite can tensorize, save, generate and export all of them.
"""

from __future__ import annotations

VOCAB = 256
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
FFN = 128

_COMMON = dict(
    vocabulary_size=VOCAB,
    num_layers=LAYERS,
    hidden_dim=HIDDEN,
    intermediate_dim=FFN,
)
_GQA = dict(_COMMON, num_query_heads=HEADS, num_key_value_heads=KV_HEADS)

# family -> (backbone class name, causal LM class name, config)
FAMILIES = {
    "gemma": ("GemmaBackbone", "GemmaCausalLM", dict(_GQA, head_dim=HEAD_DIM)),
    "gemma3": (
        "Gemma3Backbone",
        "Gemma3CausalLM",
        dict(_GQA, head_dim=HEAD_DIM, image_size=None, vision_encoder=None),
    ),
    "llama": ("LlamaBackbone", "LlamaCausalLM", _GQA),
    "llama3": ("Llama3Backbone", "Llama3CausalLM", _GQA),
    "mistral": ("MistralBackbone", "MistralCausalLM", _GQA),
    "mixtral": (
        "MixtralBackbone",
        "MixtralCausalLM",
        dict(_GQA, num_experts=4, top_k=2),
    ),
    "qwen": ("QwenBackbone", "QwenCausalLM", _GQA),
    "qwen3": ("Qwen3Backbone", "Qwen3CausalLM", dict(_GQA, head_dim=HEAD_DIM)),
    "qwen_moe": (
        "QwenMoeBackbone",
        "QwenMoeCausalLM",
        dict(
            _GQA,
            moe_intermediate_dim=32,
            shared_expert_intermediate_dim=64,
            num_experts=4,
            top_k=2,
        ),
    ),
    "qwen3_moe": (
        "Qwen3MoeBackbone",
        "Qwen3MoeCausalLM",
        dict(
            _GQA,
            moe_intermediate_dim=32,
            num_experts=4,
            top_k=2,
            head_dim=HEAD_DIM,
        ),
    ),
    "phi3": ("Phi3Backbone", "Phi3CausalLM", _GQA),
    "smollm3": (
        "SmolLM3Backbone",
        "SmolLM3CausalLM",
        dict(
            _COMMON,
            num_attention_heads=HEADS,
            num_key_value_heads=KV_HEADS,
            attention_bias=False,
            attention_dropout=0.0,
            rope_layer_enabled_list=[True] * LAYERS,
            layer_types=["attention"] * LAYERS,
            mlp_bias=False,
            layer_norm_epsilon=1e-6,
            max_position_embeddings=128,
            rope_theta=10000.0,
            partial_rotary_factor=1.0,
        ),
    ),
    "gpt_oss": (
        "GptOssBackbone",
        "GptOssCausalLM",
        dict(_GQA, num_experts=4, top_k=2, head_dim=HEAD_DIM),
    ),
    "falcon": (
        "FalconBackbone",
        "FalconCausalLM",
        dict(_COMMON, num_attention_heads=HEADS),
    ),
    # OPT's learned position table (a raw variable, left dense) holds 1.3%
    # of OPT-125m (2,050 x 768); 16 rows give it about that share here.
    "opt": (
        "OPTBackbone",
        "OPTCausalLM",
        dict(_COMMON, num_heads=HEADS, max_sequence_length=16),
    ),
    "bloom": ("BloomBackbone", "BloomCausalLM", dict(_COMMON, num_heads=HEADS)),
    "gpt_neox": (
        "GPTNeoXBackbone",
        "GPTNeoXCausalLM",
        dict(_COMMON, num_heads=HEADS),
    ),
}


def build_backbone(family: str, seed: int = 0):
    """The small backbone of ``family`` with seeded random weights."""
    import keras
    import keras_hub

    name, _, config = FAMILIES[family]
    keras.utils.set_random_seed(seed)
    return getattr(keras_hub.models, name)(**config)


def build_causal_lm(family: str, seed: int = 0):
    """A `CausalLM` of ``family`` around a fresh backbone, no preprocessor."""
    import keras_hub

    _, name, _ = FAMILIES[family]
    backbone = build_backbone(family, seed)
    return getattr(keras_hub.models, name)(backbone=backbone, preprocessor=None)


def token_ids(batch: int = 2, length: int = 8, seed: int = 0):
    """A ``{"token_ids", "padding_mask"}`` batch of random tokens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(batch, length)).astype("int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids, dtype="int32")}
