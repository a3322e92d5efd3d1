"""`TTEmbedding`: an embedding table held as a TT-matrix."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import constraints
from keras import initializers
from keras import regularizers

from keras_tt import modes as modes_lib
from keras_tt.contraction import einsum
from keras_tt.contraction import tt_matmul
from keras_tt.decomposition import TTDecomposition
from keras_tt.decomposition import decompose_for_layer
from keras_tt.decomposition import float_matrix
from keras_tt.initializers import TTVarianceScaling
from keras_tt.initializers import as_tt_initializer
from keras_tt.layers._tt_base import TTLayerMixin
from keras_tt.layers._tt_base import as_list
from keras_tt.layers._tt_base import check_core_count
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import core_initializers
from keras_tt.layers._tt_base import leading_shape
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import warn_per_core

_NAMES = ("input_dim", "output_dim", "vocab_modes", "embed_modes")


@keras.saving.register_keras_serializable(package="keras_tt")
class TTEmbedding(TTLayerMixin, keras.layers.Layer):
    """Turns integer ids into dense vectors, the table stored as a TT-matrix.

    `TTEmbedding` does what `keras.layers.Embedding` does,
    ``output[..., :] = table[inputs[...], :]``, but never stores the
    ``input_dim x output_dim`` table. The vocabulary size factors into
    modes ``V = n_1 * ... * n_d`` (the *vocab modes*), the embedding width
    into ``D = m_1 * ... * m_d`` (the *embed modes*), and the table is kept
    as ``d`` cores ``G_k`` of shape ``(r_{k-1}, n_k, m_k, r_k)``
    (Hrinchuk et al., *Tensorized Embedding Layers*, 2020):

        table[(i_1..i_d), (j_1..j_d)] =
            G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

    with row and column indices flattened in C order, as in
    `keras_tt.TTDense`. The layer holds ``sum_k r_{k-1} n_k m_k r_k``
    parameters instead of ``V D``.

    Lookup. An id ``i`` is split into its digits ``i_k`` in the mixed radix
    of the vocab modes (integer division and remainder), the slice
    ``G_k[:, i_k, :, :]`` of every core is gathered, and the slices are
    multiplied together for each id: a chain of batched matrix products
    over tensors of at most 4 dimensions. The table is never formed, and
    each lookup costs about ``D r^2`` multiply-adds.

    Modes. When ``vocab_modes`` / ``embed_modes`` are not given, both
    widths are split into the same number of balanced modes (at most 8 each
    where possible), after padding a width whose prime factors are not all
    at most 7 to the next width that has this property (a vocabulary of
    30,522 becomes 30,618 rows). Padded rows are never looked up and padded
    columns are dropped. Modes given explicitly must multiply to the width
    exactly.

    Initialisation. Keras's variance-scaling initialisers set the variance
    of the *full table*: with the default ``"glorot_uniform"`` every entry
    has variance ``2 / (input_dim + output_dim)`` (see
    `keras_tt.initializers.TTVarianceScaling`). `keras.layers.Embedding`'s
    own default, ``"uniform"`` (uniform in ``[-0.05, 0.05]``), and any
    `keras.initializers.RandomUniform` or `RandomNormal` centred on zero
    also give the full table the variance of that distribution (for
    ``"uniform"``, ``0.05**2 / 3``); the core entries are then uniform. Any
    other initialiser is applied to each core as it is.

    Ids out of range. Negative ids count from the end of the vocabulary and
    ids outside ``[-input_dim, input_dim)`` behave as they do in
    `keras.layers.Embedding` on the same backend: on TensorFlow (CPU) and
    PyTorch the lookup raises an error, in LiteRT the interpreter's
    ``invoke`` fails. Padded rows cannot be reached by any id.

    Args:
        input_dim: positive integer, size of the vocabulary (largest id + 1).
        output_dim: positive integer, width of the embedding vectors.
        tt_rank: positive integer, the TT-rank of every inner bond, or a
            sequence of the ``d - 1`` inner ranks; ranks above the largest
            useful one are lowered to it (with a warning when the modes or
            per-bond ranks were given explicitly).
        vocab_modes: optional sequence of positive integers whose product
            is ``input_dim``.
        embed_modes: optional sequence of positive integers whose product
            is ``output_dim``, of the same length as ``vocab_modes``.
        embeddings_initializer: initialiser of the table (see above).
        embeddings_regularizer: regulariser applied to each core.
        embeddings_constraint: constraint applied to each core.
        mask_zero: boolean, whether id 0 is a padding value to be masked
            out, as in `keras.layers.Embedding`.
        **kwargs: base layer keyword arguments, such as ``name`` and
            ``dtype``.

    Input shape:
        Integer tensor of any shape ``(batch_size, ...)``; other dtypes are
        cast to ``int32``.

    Output shape:
        ``(batch_size, ..., output_dim)``.

    Example:

    >>> import keras, keras_tt
    >>> layer = keras_tt.TTEmbedding(1000, 64, tt_rank=8,
    ...                              vocab_modes=(10, 10, 10),
    ...                              embed_modes=(4, 4, 4))
    >>> y = layer(keras.ops.convert_to_tensor([[1, 2, 3], [4, 5, 999]]))
    >>> tuple(y.shape)
    (2, 3, 64)
    >>> layer.vocab_modes, layer.embed_modes, layer.tt_ranks
    ((10, 10, 10), (4, 4, 4), (1, 8, 8, 1))
    >>> layer.num_core_params, round(layer.compression_ratio, 1)
    (3200, 20.0)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        tt_rank,
        vocab_modes=None,
        embed_modes=None,
        embeddings_initializer="glorot_uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        **kwargs,
    ):
        layout = modes_lib.resolve_layout(
            input_dim,
            output_dim,
            tt_rank,
            vocab_modes,
            embed_modes,
            warn=True,
            names=_NAMES,
        )
        check_core_count(layout, tt_rank)
        super().__init__(**kwargs)
        self.input_dim = layout.input_dim
        self.output_dim = layout.units
        self.tt_rank = normalize_tt_rank(tt_rank)
        self._given_vocab_modes = (
            None if vocab_modes is None else layout.in_modes
        )
        self._given_embed_modes = (
            None if embed_modes is None else layout.out_modes
        )
        self.vocab_modes = layout.in_modes
        self.embed_modes = layout.out_modes
        self.tt_ranks = layout.ranks
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.cores = []
        self.autocast = False

    _layout_fields = ("input_dim", "output_dim", "vocab_modes", "embed_modes")

    @property
    def padded_output_dim(self) -> int:
        """Columns of the TT-matrix: the product of `embed_modes`."""
        return self.padded_units

    # ------------------------------------------------------------------ build

    def build(self, input_shape=None):
        if self.built:
            return
        self._add_cores(
            self._core_initializers(),
            self.embeddings_regularizer,
            self.embeddings_constraint,
        )
        self.built = True

    def _core_initializers(self):
        init = self.embeddings_initializer
        variance = _distribution_variance(init)
        if as_tt_initializer(init) is None and variance is not None:
            # A target variance v is TTVarianceScaling(scale=v, fan_in) with
            # a fan of 1.
            target = TTVarianceScaling(
                scale=variance, mode="fan_in", seed=init.seed
            )
            return core_initializers(target, 1, 1, self.tt_ranks)
        return core_initializers(
            init, self.input_dim, self.output_dim, self.tt_ranks
        )

    # ------------------------------------------------------------------- call

    def call(self, inputs, reverse=False):
        """Look up ``inputs``; with ``reverse=True``, ``inputs @ table.T``.

        The reverse mode serves weight-tied output heads (as keras_hub's
        ``ReversibleEmbedding`` does): a float tensor ``(..., output_dim)``
        becomes logits ``(..., input_dim)``, by a TT-matrix product with the
        transposed cores.
        """
        if reverse:
            return self._reverse(inputs)
        ops = keras.ops
        inputs = ops.convert_to_tensor(inputs)
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        ids = ops.reshape(inputs, (-1,))
        digits = self._digits(ids)
        state, width = None, 1
        for k, core in enumerate(self.cores):
            core = ops.cast(core, self.compute_dtype)
            # (r, n, m, s) -> (n, r, m * s): gather rows of the first axis.
            r, n, m, s = self.layout.core_shapes[k]
            table = ops.reshape(
                ops.transpose(core, (1, 0, 2, 3)), (n, r, m * s)
            )
            piece = ops.take(table, digits[k], axis=0)  # (B, r, m * s)
            if state is None:
                state = ops.reshape(piece, (-1, m, s))
            else:
                state = einsum("bar,brc->bac", state, piece)
                state = ops.reshape(state, (-1, width * m, s))
            width *= m
        y = ops.reshape(state, (-1, self.padded_output_dim))
        if self.padded_output_dim > self.output_dim:
            y = y[:, : self.output_dim]
        return ops.reshape(y, leading_shape(inputs, 0) + (self.output_dim,))

    def _digits(self, ids):
        """The vocab-mode digits of each id, first digit first.

        Out-of-range ids are sent to a first digit ``n_1``, outside the first
        core, so that its gather fails as `keras.layers.Embedding`'s does.
        """
        ops = keras.ops
        vocab = self.input_dim
        ids = ops.where(ops.less(ids, 0), ops.add(ids, vocab), ids)
        valid = ops.logical_and(ops.greater_equal(ids, 0), ops.less(ids, vocab))
        ids = ops.where(valid, ids, self.padded_input_dim)
        digits = []
        stride = self.padded_input_dim
        for k, n in enumerate(self.vocab_modes):
            stride //= n
            digit = ops.floor_divide(ids, stride) if stride > 1 else ids
            if k > 0:
                digit = ops.mod(digit, n)
            digits.append(digit)
        return digits

    def _reverse(self, inputs):
        ops = keras.ops
        inputs = ops.convert_to_tensor(inputs)
        if not keras.backend.is_float_dtype(inputs.dtype):
            inputs = ops.cast(inputs, self.compute_dtype)
        x = ops.reshape(inputs, (-1, self.output_dim))
        if self.padded_output_dim > self.output_dim:
            x = ops.pad(
                x, [[0, 0], [0, self.padded_output_dim - self.output_dim]]
            )
        cores = [
            ops.transpose(ops.cast(c, self.compute_dtype), (0, 2, 1, 3))
            for c in self.cores
        ]
        y = tt_matmul(x, cores, self.embed_modes, self.vocab_modes)
        if self.padded_input_dim > self.input_dim:
            y = y[:, : self.input_dim]
        return ops.reshape(y, leading_shape(inputs) + (self.input_dim,))

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape, reverse=False):
        if reverse:
            return (*input_shape[:-1], self.input_dim)
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs, reverse=False):
        shape = self.compute_output_shape(inputs.shape, reverse)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    # ------------------------------------------------------------ the table

    def full_table(self) -> np.ndarray:
        """The ``(input_dim, output_dim)`` table the cores stand for (NumPy).

        Forms the whole table: meant for tests and small vocabularies.
        """
        self.build()
        return self._full_matrix(self._core_arrays())

    @classmethod
    def from_embedding(
        cls,
        embedding_layer: keras.layers.Embedding,
        tt_rank=None,
        rel_error: float | None = None,
        vocab_modes=None,
        embed_modes=None,
        name: str | None = None,
    ) -> TTEmbedding:
        """A `TTEmbedding` initialised from a trained `Embedding` layer.

        The cores are a TT-SVD (`keras_tt.tt_svd`) of the table, zero-padded
        first when the modes pad its widths. ``mask_zero``, the dtype
        policy, trainability and the name (unless ``name`` is given) are
        copied; a regulariser or constraint of the table is carried over
        and applies to each core, with a warning. The `Embedding` layer is
        not modified.

        Args:
            embedding_layer: a built `keras.layers.Embedding` (or a
                keras_hub ``ReversibleEmbedding`` with tied weights).
            tt_rank: positive integer capping every inner TT-rank, or a
                sequence of the ``d - 1`` inner ranks.
            rel_error: relative Frobenius error allowed,
                ``||T - T_tt||_F <= rel_error * ||T||_F``, strictly between
                0 and 1. At least one of ``tt_rank`` and ``rel_error`` is
                required.
            vocab_modes: optional vocab modes (see `TTEmbedding`).
            embed_modes: optional embed modes.
            name: optional name of the new layer.

        Returns:
            A built `TTEmbedding`, not attached to any model.

        Example:

        >>> import keras, keras_tt, numpy as np
        >>> emb = keras.layers.Embedding(100, 16)
        >>> emb.build()
        >>> tt = keras_tt.TTEmbedding.from_embedding(emb, tt_rank=100)
        >>> ids = np.array([[0, 5, 99]])
        >>> bool(np.allclose(tt(ids), emb(ids), atol=1e-6))
        True
        """
        layer, _ = embedding_to_tt_embedding(
            embedding_layer,
            tt_rank=tt_rank,
            rel_error=rel_error,
            vocab_modes=vocab_modes,
            embed_modes=embed_modes,
            name=name,
        )
        return layer

    # ---------------------------------------------------------- serialisation

    def get_config(self):
        base_config = super().get_config()
        config = {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "tt_rank": self._config_tt_rank(),
            "vocab_modes": as_list(self._given_vocab_modes),
            "embed_modes": as_list(self._given_embed_modes),
            "embeddings_initializer": initializers.serialize(
                self.embeddings_initializer
            ),
            "embeddings_regularizer": regularizers.serialize(
                self.embeddings_regularizer
            ),
            "embeddings_constraint": constraints.serialize(
                self.embeddings_constraint
            ),
            "mask_zero": self.mask_zero,
        }
        return {**base_config, **config}


def _distribution_variance(initializer):
    """Variance of a zero-centred `RandomUniform` / `RandomNormal`, or None."""
    if isinstance(initializer, keras.initializers.RandomUniform):
        low, high = initializer.minval, initializer.maxval
        if math.isclose(low, -high):
            return (high - low) ** 2 / 12.0
    if isinstance(initializer, keras.initializers.RandomNormal):
        if initializer.mean == 0:
            return initializer.stddev**2
    return None


def check_embedding_layer(layer, name="embedding_layer"):
    """Refuse what `TTEmbedding` cannot stand in for, with the reason."""
    check_trained_layer(layer, keras.layers.Embedding, name, weights="table")
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            f"The Embedding layer '{layer.name}' has LoRA enabled; merge or "
            "disable it before compressing the table."
        )
    if hasattr(layer, "tie_weights") and not layer.tie_weights:
        raise ValueError(
            f"The layer '{layer.name}' ({type(layer).__name__}) has untied "
            "reverse embeddings, a second matrix that `TTEmbedding` does not "
            "hold; only tied reversible embeddings can be converted."
        )
    if getattr(layer, "logit_soft_cap", None):
        raise ValueError(
            f"The layer '{layer.name}' ({type(layer).__name__}) soft-caps its "
            "reverse logits, which `TTEmbedding` does not do."
        )


def embedding_to_tt_embedding(
    embedding_layer,
    tt_rank=None,
    rel_error=None,
    vocab_modes=None,
    embed_modes=None,
    name=None,
    callback=None,
) -> tuple[TTEmbedding, TTDecomposition]:
    """A built `TTEmbedding` from an `Embedding` layer, and its TT-SVD.

    The work behind `TTEmbedding.from_embedding`, which `keras_tt.tensorize`
    uses too; ``callback`` is passed to `keras_tt.tt_svd`.
    """
    check_embedding_layer(embedding_layer)
    result = decompose_for_layer(
        float_matrix(embedding_layer.embeddings),
        tt_rank=tt_rank,
        rel_error=rel_error,
        in_modes=vocab_modes,
        out_modes=embed_modes,
        callback=callback,
        layer_name=embedding_layer.name,
        names=_NAMES,
    )
    vocab, width = result.layout.input_dim, result.layout.units
    regularizer = embedding_layer.embeddings_regularizer
    constraint = embedding_layer.embeddings_constraint
    warn_per_core(
        embedding_layer.name,
        "embeddings",
        regularizer,
        constraint,
        whole="table",
        stacklevel=3,
    )
    layer = TTEmbedding(
        vocab,
        width,
        tt_rank=result.tt_rank,
        vocab_modes=vocab_modes,
        embed_modes=embed_modes,
        embeddings_regularizer=regularizer,
        embeddings_constraint=constraint,
        mask_zero=embedding_layer.mask_zero,
        name=name or embedding_layer.name,
        dtype=embedding_layer.dtype_policy,
        trainable=embedding_layer.trainable,
    )
    layer.build()
    layer._assign_cores(result.decomposition.cores)
    return layer, result.decomposition
