"""Parameter table of on-device LLMs before and after TT compression.

For each model, from the numbers of its published ``config.json``: the
total parameters, the parameters in the kernels `keras_tt.tensorize`
replaces in the keras_hub backbone (attention q/k/v/o, feed-forward
gate/up/down, and the token embedding when it is tied to the output head),
and the whole model's parameters and compression ratio after TT at uniform
ranks 16, 32 and 64. Nothing is built: the TT sizes come from
`keras_tt.modes.resolve_layout`, the modes and capped ranks the layers and
the pass use, so the numbers are those keras_tt produces.

The kernels are those of the keras_hub backbones, seen as the matrices the
pass decomposes: an `EinsumDense` kernel is ``rows x cols`` with ``rows``
the product of its contracted (leading) axes, so the query kernel
``(hidden, heads, head_dim)`` is the ``hidden x (heads * head_dim)`` matrix
and the output kernel ``(heads, head_dim, hidden)`` the ``(heads *
head_dim) x hidden`` one. Gemma 3's query/key/value kernels are
``(heads, hidden, head_dim)`` (equation ``btd,ndh->btnh``): the equation
decides whether `TTEinsumDense` takes them, as `keras_tt.tensorize` asks.

Usage: ``python tools/llm_param_table.py`` prints the Markdown tables.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import sys

# Run as a script, the checkout's keras_tt is the one counted.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keras_tt import modes as modes_lib  # noqa: E402
from keras_tt.layers.tt_einsum_dense import parse_equation  # noqa: E402
from keras_tt.tensorize import DEFAULT_MIN_PARAMS  # noqa: E402

RANKS = (16, 32, 64)


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    """The numbers of a decoder-only LLM's ``config.json`` this table needs.

    ``family`` picks the keras_hub layout of the kernels: ``"llama"``
    (Llama, Qwen3, Phi-3: ``bqm,muh->bquh`` projections, `Dense`
    feed-forward) or ``"gemma3"`` (``btd,ndh->btnh`` projections,
    `EinsumDense` feed-forward, four norms per block).
    """

    name: str
    source: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    family: str = "llama"
    qk_norm: bool = False
    logit_soft_cap: float | None = None


# From each model's public config.json (Hugging Face), checked against the
# parameter counts of the keras_hub presets (see tests/test_llm_param_table).
MODELS = (
    LLMConfig(
        name="Gemma 3 1B",
        source="google/gemma-3-1b-pt config.json",
        hidden=1152,
        intermediate=6912,
        layers=26,
        heads=4,
        kv_heads=1,
        head_dim=256,
        vocab=262144,
        tied=True,
        family="gemma3",
        qk_norm=True,
    ),
    LLMConfig(
        name="Llama 3.2 1B",
        source="meta-llama/Llama-3.2-1B config.json",
        hidden=2048,
        intermediate=8192,
        layers=16,
        heads=32,
        kv_heads=8,
        head_dim=64,
        vocab=128256,
        tied=True,
    ),
    LLMConfig(
        name="Qwen3 0.6B",
        source="Qwen/Qwen3-0.6B config.json",
        hidden=1024,
        intermediate=3072,
        layers=28,
        heads=16,
        kv_heads=8,
        head_dim=128,
        vocab=151936,
        tied=True,
        qk_norm=True,
    ),
    LLMConfig(
        name="Phi-3 mini (3.8B)",
        source="microsoft/Phi-3-mini-4k-instruct config.json",
        hidden=3072,
        intermediate=8192,
        layers=32,
        heads=32,
        kv_heads=32,
        head_dim=96,
        vocab=32064,
        tied=False,
    ),
)


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One weight of the backbone, as keras_hub holds it.

    ``kind`` is ``"Dense"``, ``"EinsumDense"``, ``"Embedding"`` (the token
    table) or ``"Head"`` (the untied output projection); ``count`` how many
    the model holds (one per block for the block weights).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    count: int
    equation: str | None = None
    replaced: bool = True

    @property
    def params(self) -> int:
        return math.prod(self.shape)

    @property
    def matrix(self) -> tuple[int, int]:
        """``(rows, cols)`` of the matrix the pass decomposes."""
        if self.kind == "EinsumDense":
            # Rows: the kernel axes contracted with the input (leading ones
            # in the equations `TTEinsumDense` takes).
            inputs, rest = self.equation.split(",")
            kernel_axes, outputs = rest.split("->")
            contracted = set(inputs) - set(outputs)
            rows = math.prod(
                size
                for axis, size in zip(kernel_axes, self.shape)
                if axis in contracted
            )
            return rows, self.params // rows
        return self.shape

    def layout(self, rank) -> modes_lib.TTLayout:
        rows, cols = self.matrix
        return modes_lib.resolve_layout(rows, cols, rank, warn=False)


def _einsum_replaced(equation) -> bool:
    try:
        parse_equation(equation)
    except ValueError:
        return False
    return True


def kernels(config: LLMConfig) -> list[Kernel]:
    """The kernels of ``config``'s keras_hub backbone, whether replaced."""
    h, f, n = config.hidden, config.intermediate, config.layers
    q, kv, d = config.heads, config.kv_heads, config.head_dim
    if config.family == "gemma3":
        attention = [
            ("query", (q, h, d), "btd,ndh->btnh"),
            ("key", (kv, h, d), "bsd,kdh->bskh"),
            ("value", (kv, h, d), "bsd,kdh->bskh"),
            ("attention_output", (q, d, h), "btnh,nhd->btd"),
        ]
        feedforward = [
            ("gating_ffw", (h, f), "btd,df->btf"),
            ("gating_ffw_2", (h, f), "btd,df->btf"),
            ("ffw_linear", (f, h), "btf,fd->btd"),
        ]
        result = [
            Kernel(name, "EinsumDense", shape, n, eq, _einsum_replaced(eq))
            for name, shape, eq in attention + feedforward
        ]
    else:
        attention = [
            ("query", (h, q, d), "bqm,muh->bquh"),
            ("key", (h, kv, d), "bkm,mvh->bkvh"),
            ("value", (h, kv, d), "bkm,mvh->bkvh"),
            ("attention_output", (q, d, h), "bquh,uhm->bqm"),
        ]
        result = [
            Kernel(name, "EinsumDense", shape, n, eq, _einsum_replaced(eq))
            for name, shape, eq in attention
        ] + [
            Kernel("ffn_gate", "Dense", (h, f), n),
            Kernel("ffn_up", "Dense", (h, f), n),
            Kernel("ffn_down", "Dense", (f, h), n),
        ]
    # The pass converts every keras_hub ReversibleEmbedding (tied or not,
    # soft-capped or not): the table, and an untied head as a second
    # TT-matrix with the table's modes.
    embedding_replaced = True
    result.append(
        Kernel(
            "token_embedding",
            "Embedding",
            (config.vocab, h),
            1,
            replaced=embedding_replaced,
        )
    )
    if not config.tied:
        # The untied output projection, stored transposed (vocab x hidden).
        result.append(
            Kernel(
                "reverse_embeddings",
                "Head",
                (config.vocab, h),
                1,
                replaced=True,
            )
        )
    return [
        dataclasses.replace(
            k, replaced=k.replaced and k.params >= DEFAULT_MIN_PARAMS
        )
        for k in result
    ]


def other_params(config: LLMConfig) -> int:
    """The norm scales: every weight of the backbone but the kernels."""
    norms_per_block = 4 if config.family == "gemma3" else 2
    per_block = norms_per_block * config.hidden
    if config.qk_norm:
        per_block += 2 * config.head_dim
    return config.layers * per_block + config.hidden


def total_params(config: LLMConfig) -> int:
    """All parameters of the keras_hub backbone for ``config``."""
    return sum(k.params * k.count for k in kernels(config)) + other_params(
        config
    )


def replaced_params(config: LLMConfig) -> int:
    return sum(k.params * k.count for k in kernels(config) if k.replaced)


def tt_params(config: LLMConfig, rank: int) -> int:
    """Parameters of the replaced kernels' TT-cores at ``rank``."""
    return sum(
        k.layout(rank).num_params * k.count
        for k in kernels(config)
        if k.replaced
    )


def params_after(config: LLMConfig, rank: int) -> int:
    """Whole-model parameters once the replaced kernels are TT at ``rank``."""
    return (
        total_params(config) - replaced_params(config) + tt_params(config, rank)
    )


def _millions(n: int) -> str:
    return f"{n / 1e6:,.1f}M"


def summary_table(models=MODELS, ranks=RANKS) -> str:
    header = (
        "| Model | Params | Replaced kernels | "
        + " | ".join(f"After TT r={r} (ratio)" for r in ranks)
        + " |"
    )
    lines = [header, "|" + "---|" * (3 + len(ranks))]
    for config in models:
        total = total_params(config)
        replaced = replaced_params(config)
        cells = [
            config.name,
            f"{total:,}",
            f"{replaced:,} ({100 * replaced / total:.1f}%)",
        ]
        for rank in ranks:
            after = params_after(config, rank)
            cells.append(f"{_millions(after)} ({total / after:.2f}x)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kernel_table(models=MODELS, rank=32) -> str:
    lines = [
        f"| Model | Kernel | keras_hub shape | Matrix | Modes | "
        f"TT params r={rank} | Replaced |",
        "|---|---|---|---|---|---|---|",
    ]
    for config in models:
        for k in kernels(config):
            rows, cols = k.matrix
            if k.replaced:
                layout = k.layout(rank)
                modes = f"{layout.in_modes} x {layout.out_modes}"
                tt = f"{layout.num_params:,}"
            else:
                modes, tt = "-", "-"
            shape = "x".join(str(s) for s in k.shape)
            where = f" `{k.equation}`" if k.equation else ""
            count = f" (x{k.count})" if k.count > 1 else ""
            lines.append(
                f"| {config.name} | {k.name}{count} | {shape}{where} | "
                f"{rows} x {cols} | {modes} | {tt} | "
                f"{'yes' if k.replaced else 'no'} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    print(summary_table())
    print()
    print(kernel_table())
    print()
    for config in MODELS:
        print(f"- {config.name}: {config.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
