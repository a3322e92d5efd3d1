"""`TTEmbedding`: an embedding table held as a TT-matrix."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import constraints
from keras import initializers
from keras import regularizers

from keras_tt import modes as modes_lib
from keras_tt.contraction import tt_matmul
from keras_tt.contraction_plans import in_litert_scope
from keras_tt.decomposition import TTDecomposition
from keras_tt.initializers import TTVarianceScaling
from keras_tt.initializers import as_tt_initializer
from keras_tt.layer_decomposition import decompose_for_layer
from keras_tt.layer_decomposition import float_matrix
from keras_tt.layers._lookup import LookupPlan
from keras_tt.layers._lookup import choose_lookup_plan
from keras_tt.layers._lookup import lookup_rows
from keras_tt.layers._tt_base import TTLayerMixin
from keras_tt.layers._tt_base import as_list
from keras_tt.layers._tt_base import check_core_count
from keras_tt.layers._tt_base import check_trained_layer
from keras_tt.layers._tt_base import core_initializers
from keras_tt.layers._tt_base import leading_shape
from keras_tt.layers._tt_base import normalize_tt_rank
from keras_tt.layers._tt_base import rank_for_config
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
    multiplied together for each id, as batched matrix products over the
    ids, in the order that keeps the intermediate results smallest. When
    many ids are looked up at once, runs of neighbouring cores are first
    merged, for every value of their digits, into small tables computed
    from the cores at each call (the products of the first cores for every
    row prefix, of the last ones for every row suffix), and each id then
    gathers its prefix and suffix and pays only for the products between
    them. `lookup_plan` says which, for a number of ids; the plan is
    chosen from the static shape of the ids. Every tensor has at most 4
    dimensions and the full table is never formed (except for a table
    small enough to be cheaper than the per-id products).

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

    Output heads. ``call(x, reverse=True)`` turns hidden states
    ``(..., output_dim)`` into logits ``(..., input_dim)``, as keras_hub's
    ``ReversibleEmbedding`` does. With ``tie_weights=True`` (the default)
    the logits are ``x @ table.T``, from the same cores. With
    ``tie_weights=False`` the layer holds a second TT-matrix, the reverse
    projection ``R`` of shape ``(output_dim, input_dim)`` (keras_hub's
    ``reverse_embeddings``), and the logits are ``x @ R``. ``R`` is stored
    as the TT-matrix of its transpose, ``input_dim x output_dim``, with the
    table's vocab and embed modes: its cores ``reverse_cores`` have the
    shapes ``(q_{k-1}, n_k, m_k, q_k)`` of the table's cores, with their own
    ranks ``q_k`` (``reverse_tt_rank``), and ``x @ R`` is the TT-matrix
    product with the cores' two middle axes swapped, as in the tied head.
    Neither matrix is ever formed. With ``logit_soft_cap=c`` the logits of
    either head become ``tanh(logits / c) * c``.

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
        tie_weights: boolean, whether ``call(x, reverse=True)`` projects
            with the transposed table (``True``) or with a second TT-matrix
            of its own (``False``, see "Output heads" above). Its cores are
            initialised as the table's are, for a ``output_dim x input_dim``
            matrix, and get no regulariser or constraint, as keras_hub's
            ``reverse_embeddings``.
        reverse_tt_rank: TT-rank of the reverse projection when
            ``tie_weights=False``, in the form of ``tt_rank``; defaults to
            ``tt_rank``.
        logit_soft_cap: optional positive number ``c``; the reverse logits
            become ``tanh(logits / c) * c``. Lookups are not affected.
        reverse_dtype: optional floating dtype in which the reverse
            projection runs (inputs and cores are cast to it, and the logits
            come out in it), as in keras_hub's ``ReversibleEmbedding``;
            defaults to the layer's compute dtype.
        **kwargs: base layer keyword arguments, such as ``name`` and
            ``dtype``.

    Input shape:
        Integer tensor of any shape ``(batch_size, ...)``; other dtypes are
        cast to ``int32``.

    Output shape:
        ``(batch_size, ..., output_dim)``; with ``reverse=True``, an input
        ``(batch_size, ..., output_dim)`` gives ``(batch_size, ...,
        input_dim)``.

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

    An untied, soft-capped output head (Gemma 2 caps its logits at 30):

    >>> head = keras_tt.TTEmbedding(1000, 64, tt_rank=8,
    ...                             tie_weights=False, logit_soft_cap=30.0)
    >>> logits = head(keras.ops.ones((2, 64)), reverse=True)
    >>> tuple(logits.shape), len(head.reverse_cores) == len(head.cores)
    ((2, 1000), True)
    >>> bool(keras.ops.max(keras.ops.abs(logits)) <= 30.0)
    True
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
        tie_weights=True,
        reverse_tt_rank=None,
        logit_soft_cap=None,
        reverse_dtype=None,
        **kwargs,
    ):
        if not isinstance(tie_weights, (bool, np.bool_)):
            raise ValueError(
                "Received an invalid value for `tie_weights`, expected a "
                f"boolean. Received: tie_weights={tie_weights!r}"
            )
        if reverse_tt_rank is not None and tie_weights:
            raise ValueError(
                "Received an invalid value for `reverse_tt_rank`, expected "
                "None with tied weights (`tie_weights=True`): the reverse "
                "projection is the table's transpose. "
                f"Received: reverse_tt_rank={reverse_tt_rank!r}"
            )
        logit_soft_cap = _check_soft_cap(logit_soft_cap)
        reverse_dtype = _check_reverse_dtype(reverse_dtype)
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
        self.tie_weights = bool(tie_weights)
        self.reverse_tt_rank = None
        self.reverse_tt_ranks = None
        if not self.tie_weights:
            # A rank taken over from `tt_rank` was warned about above.
            explicit = reverse_tt_rank is not None
            if not explicit:
                reverse_tt_rank = tt_rank
            reverse_layout = modes_lib.resolve_layout(
                self.input_dim,
                self.output_dim,
                reverse_tt_rank,
                vocab_modes,
                embed_modes,
                warn=explicit,
                names=_NAMES,
            )
            self.reverse_tt_rank = normalize_tt_rank(reverse_tt_rank)
            self.reverse_tt_ranks = reverse_layout.ranks
        self.logit_soft_cap = logit_soft_cap
        self.reverse_dtype = reverse_dtype
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.cores = []
        self.reverse_cores = []
        self.autocast = False

    _layout_fields = ("input_dim", "output_dim", "vocab_modes", "embed_modes")

    @property
    def padded_output_dim(self) -> int:
        """Columns of the TT-matrix: the product of `embed_modes`."""
        return self.padded_units

    @property
    def reverse_layout(self) -> modes_lib.TTLayout | None:
        """The `keras_tt.modes.TTLayout` of the reverse projection's
        transpose (``input_dim x output_dim``), or None with tied weights."""
        if self.tie_weights:
            return None
        return modes_lib.TTLayout(
            self.input_dim,
            self.output_dim,
            self.vocab_modes,
            self.embed_modes,
            self.reverse_tt_ranks,
        )

    @property
    def num_core_params(self) -> int:
        """Number of parameters held in the cores (of both TT-matrices when
        the weights are untied)."""
        params = self.layout.num_params
        if not self.tie_weights:
            params += self.reverse_layout.num_params
        return params

    @property
    def compression_ratio(self) -> float:
        """Dense size of the matrices held (the table, and the reverse
        projection when untied) over the total core size."""
        matrices = 1 if self.tie_weights else 2
        dense = matrices * self.input_dim * self.output_dim
        return dense / self.num_core_params

    # ------------------------------------------------------------------ build

    def build(self, input_shape=None):
        if self.built:
            return
        self._add_cores(
            self._core_initializers(
                self.input_dim, self.output_dim, self.tt_ranks
            ),
            self.embeddings_regularizer,
            self.embeddings_constraint,
        )
        if not self.tie_weights:
            # The reverse matrix is output_dim x input_dim: its fans, as
            # keras_hub's `reverse_embeddings` has them.
            initializers_ = self._core_initializers(
                self.output_dim, self.input_dim, self.reverse_tt_ranks
            )
            self.reverse_cores = [
                self.add_weight(
                    name=f"reverse_core_{k}",
                    shape=shape,
                    initializer=initializer,
                )
                for k, (shape, initializer) in enumerate(
                    zip(self.reverse_layout.core_shapes, initializers_)
                )
            ]
        self.built = True

    def _core_initializers(self, fan_in, fan_out, ranks):
        init = self.embeddings_initializer
        variance = _distribution_variance(init)
        if as_tt_initializer(init) is None and variance is not None:
            # A target variance v is TTVarianceScaling(scale=v, fan_in) with
            # a fan of 1.
            target = TTVarianceScaling(
                scale=variance, mode="fan_in", seed=init.seed
            )
            return core_initializers(target, 1, 1, ranks)
        return core_initializers(init, fan_in, fan_out, ranks)

    # ------------------------------------------------------------------- call

    def call(self, inputs, reverse=False):
        """Look up ``inputs``; with ``reverse=True``, project to logits.

        The reverse mode serves output heads (as keras_hub's
        ``ReversibleEmbedding`` does): a float tensor ``(..., output_dim)``
        becomes logits ``(..., input_dim)``, ``inputs @ table.T`` with tied
        weights and ``inputs @ R`` with untied ones, by a TT-matrix product
        with the transposed cores, then soft-capped when `logit_soft_cap`
        is set.
        """
        if reverse:
            return self._reverse(inputs)
        ops = keras.ops
        inputs = ops.convert_to_tensor(inputs)
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        ids = ops.reshape(inputs, (-1,))
        plan = self.lookup_plan(_id_count(inputs.shape))
        digits = self._digits(ids)
        cores = [ops.cast(core, self.compute_dtype) for core in self.cores]
        y = lookup_rows(ids, digits, cores, plan)
        if self.padded_output_dim > self.output_dim:
            y = y[:, : self.output_dim]
        return ops.reshape(y, leading_shape(inputs, 0) + (self.output_dim,))

    def lookup_plan(self, ids=None) -> LookupPlan:
        """How a lookup of ``ids`` ids is computed (see "Lookup" above).

        Returns the ``LookupPlan`` of least modelled cost: which runs of
        cores become tables and the order of the per-id products.
        ``None`` stands for a number not known while tracing.
        """
        return choose_lookup_plan(
            self.vocab_modes, self.embed_modes, self.tt_ranks, ids
        )

    def _digits(self, ids):
        """A callable giving, for cores ``start .. stop - 1``, the digit of
        every id in the mixed radix of the vocab modes (merged over the
        run).

        Out-of-range ids are sent to ``padded_input_dim``, whose first digit
        is outside the first core (or table), so that its gather fails as
        `keras.layers.Embedding`'s does.
        """
        ops = keras.ops
        vocab = self.input_dim
        ids = ops.where(ops.less(ids, 0), ops.add(ids, vocab), ids)
        valid = ops.logical_and(ops.greater_equal(ids, 0), ops.less(ids, vocab))
        ids = ops.where(valid, ids, self.padded_input_dim)
        modes = self.vocab_modes

        def digit(start, stop, reverse=False):
            if reverse:
                value, scale = None, 1
                for k in range(start, stop):
                    term = digit(k, k + 1)
                    if scale > 1:
                        term = ops.multiply(term, scale)
                    value = term if value is None else ops.add(value, term)
                    scale *= modes[k]
                return value
            stride = math.prod(modes[stop:])
            value = ops.floor_divide(ids, stride) if stride > 1 else ids
            if start > 0:
                value = ops.mod(value, math.prod(modes[start:stop]))
            return value

        return digit

    def _reverse(self, inputs):
        ops = keras.ops
        inputs = ops.convert_to_tensor(inputs)
        dtype = self.compute_dtype
        if self.reverse_dtype is not None:
            dtype = self.reverse_dtype
            inputs = ops.cast(inputs, dtype)
        elif not keras.backend.is_float_dtype(inputs.dtype):
            inputs = ops.cast(inputs, dtype)
        x = ops.reshape(inputs, (-1, self.output_dim))
        if self.padded_output_dim > self.output_dim:
            x = ops.pad(
                x, [[0, 0], [0, self.padded_output_dim - self.output_dim]]
            )
        cores = [
            ops.transpose(ops.cast(c, dtype), (0, 2, 1, 3))
            for c in (self.cores if self.tie_weights else self.reverse_cores)
        ]
        y = tt_matmul(x, cores, self.embed_modes, self.vocab_modes)
        if self.padded_input_dim > self.input_dim:
            y = y[:, : self.input_dim]
        y = ops.reshape(y, leading_shape(inputs) + (self.input_dim,))
        if self.logit_soft_cap is not None:
            cap = self.logit_soft_cap
            y = ops.multiply(ops.tanh(ops.divide(y, cap)), cap)
        return y

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
        dtype = self.compute_dtype
        if reverse and self.reverse_dtype is not None:
            dtype = self.reverse_dtype
        return keras.KerasTensor(shape, dtype=dtype)

    # ------------------------------------------------------------ the table

    def full_table(self) -> np.ndarray:
        """The ``(input_dim, output_dim)`` table the cores stand for (NumPy).

        Forms the whole table: meant for tests and small vocabularies.
        """
        self.build()
        return self._full_matrix(self._core_arrays())

    def full_reverse_embeddings(self) -> np.ndarray:
        """The ``(output_dim, input_dim)`` matrix of the reverse projection.

        ``call(x, reverse=True)`` is ``x @`` this matrix (before the soft
        cap): the table's transpose with tied weights, keras_hub's
        ``reverse_embeddings`` otherwise. Forms the whole matrix (NumPy).
        """
        self.build()
        if self.tie_weights:
            return self.full_table().T
        cores = [keras.ops.convert_to_numpy(c) for c in self.reverse_cores]
        return self._full_matrix(cores).T

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

        A reversible embedding (keras_hub's or Keras's
        ``ReversibleEmbedding``, recognised by its ``tie_weights``
        attribute) keeps its ``tie_weights``, ``logit_soft_cap`` and
        ``reverse_dtype``; with untied weights its ``reverse_embeddings``
        get a TT-SVD of their own (of the transpose, with the same modes,
        ``tt_rank`` and ``rel_error``).

        Args:
            embedding_layer: a built `keras.layers.Embedding`, or a
                ``ReversibleEmbedding``.
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
            "tie_weights": self.tie_weights,
            "reverse_tt_rank": (
                None
                if self.tie_weights
                else rank_for_config(
                    self.reverse_tt_rank, self.reverse_tt_ranks
                )
            ),
            "logit_soft_cap": self.logit_soft_cap,
            "reverse_dtype": self.reverse_dtype,
        }
        return {**base_config, **config}


def _id_count(shape):
    """The number of ids of an input of this shape, or None when not all
    of it is known. While tracing for LiteRT an unknown axis counts as 1
    (the on-device case: one sample)."""
    if None not in shape:
        return math.prod(shape)
    if in_litert_scope():
        return math.prod(1 if v is None else v for v in shape)
    return None


def _check_soft_cap(logit_soft_cap):
    """``logit_soft_cap`` as a positive float, or None."""
    if logit_soft_cap is None:
        return None
    if (
        isinstance(logit_soft_cap, numbers.Real)
        and not isinstance(logit_soft_cap, bool)
        and math.isfinite(logit_soft_cap)
        and logit_soft_cap > 0
    ):
        return float(logit_soft_cap)
    raise ValueError(
        "Received an invalid value for `logit_soft_cap`, expected None or a "
        f"positive number. Received: logit_soft_cap={logit_soft_cap!r}"
    )


def _check_reverse_dtype(reverse_dtype):
    """``reverse_dtype`` as a standard floating dtype name, or None."""
    if reverse_dtype is None:
        return None
    try:
        dtype = keras.backend.standardize_dtype(reverse_dtype)
    except ValueError:
        dtype = None
    if dtype is None or not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            "Received an invalid value for `reverse_dtype`, expected None or "
            f"a floating dtype. Received: reverse_dtype={reverse_dtype!r}"
        )
    return dtype


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


def reverse_embeddings_of(layer):
    """The untied ``(output_dim, input_dim)`` reverse matrix of a reversible
    embedding, or None when ``layer`` projects with its own table.

    keras_hub's and Keras's ``ReversibleEmbedding`` are recognised by duck
    typing: a ``tie_weights`` attribute that is false, and the matrix in
    ``reverse_embeddings``.
    """
    if getattr(layer, "tie_weights", True):
        return None
    return getattr(layer, "reverse_embeddings", None)


def check_embedding_layer(layer, name="embedding_layer"):
    """Refuse what `TTEmbedding` cannot stand in for, with the reason."""
    check_trained_layer(layer, keras.layers.Embedding, name, weights="table")
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            f"The Embedding layer '{layer.name}' has LoRA enabled; merge or "
            "disable it before compressing the table."
        )
    if not getattr(layer, "tie_weights", True):
        reverse = reverse_embeddings_of(layer)
        expected = (int(layer.output_dim), int(layer.input_dim))
        shape = None if reverse is None else tuple(reverse.shape)
        if shape != expected:
            raise ValueError(
                f"The layer '{layer.name}' ({type(layer).__name__}) has "
                "untied reverse embeddings (`tie_weights=False`), expected "
                f"in `reverse_embeddings` with shape {expected}. Received: "
                f"reverse_embeddings shape={shape}"
            )
    cap = getattr(layer, "logit_soft_cap", None)
    try:
        _check_soft_cap(cap)
    except ValueError:
        raise ValueError(
            f"The layer '{layer.name}' ({type(layer).__name__}) has a "
            "`logit_soft_cap` that `TTEmbedding` cannot apply, expected None "
            f"or a positive number. Received: logit_soft_cap={cap!r}"
        ) from None


def embedding_to_tt_embedding(
    embedding_layer,
    tt_rank=None,
    rel_error=None,
    vocab_modes=None,
    embed_modes=None,
    name=None,
    callback=None,
) -> tuple[TTEmbedding, tuple[TTDecomposition, ...]]:
    """A built `TTEmbedding` from an `Embedding` layer, and its TT-SVDs.

    The work behind `TTEmbedding.from_embedding`, which `keras_tt.tensorize`
    uses too; ``callback`` is passed to `keras_tt.tt_svd`. The second item
    holds one `TTDecomposition` per TT-matrix: the table's, then, for an
    untied reversible embedding, that of the transposed reverse matrix
    (same modes, same ``tt_rank`` and ``rel_error``).
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
    reverse = reverse_embeddings_of(embedding_layer)
    reverse_result = None
    if reverse is not None:
        reverse_result = decompose_for_layer(
            float_matrix(reverse).T,
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
        tie_weights=reverse is None,
        reverse_tt_rank=(
            None if reverse_result is None else reverse_result.tt_rank
        ),
        logit_soft_cap=getattr(embedding_layer, "logit_soft_cap", None),
        reverse_dtype=getattr(embedding_layer, "reverse_dtype", None),
        name=name or embedding_layer.name,
        dtype=embedding_layer.dtype_policy,
        trainable=embedding_layer.trainable,
    )
    layer.build()
    layer._assign_cores(result.decomposition.cores)
    decompositions = (result.decomposition,)
    if reverse_result is not None:
        for variable, core in zip(
            layer.reverse_cores, reverse_result.decomposition.cores
        ):
            variable.assign(keras.ops.cast(core, variable.dtype))
        decompositions += (reverse_result.decomposition,)
    return layer, decompositions
