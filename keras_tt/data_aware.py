"""Data-aware TT cores: fit a layer's outputs on real inputs, not its weights.

Plain TT-SVD minimises the weight error ``||W - W_tt||_F``. What matters is
the error of the layer's outputs on the inputs it really receives,
``||X (W - W_tt)||_F``, which weighs the directions the data uses.
`data_aware_init` re-initialises the TT layers of a tensorized model from a
sample of model inputs (calibration data), keeping their ranks:

- ``TTDense`` / ``TTEinsumDense`` (from ``Dense`` / ``EinsumDense``):
  *whitened TT-SVD*. The input second moment ``C = E[x x^T]`` is
  approximated by a Kronecker product over the row modes,
  ``C ~ C_1 (x) ... (x) C_d`` (``C_k``: the second moment of the inputs
  unfolded along mode ``k``), so that ``C^{1/2} ~ (x)_k C_k^{1/2}``
  multiplies each row mode separately. The TT-SVD runs on
  ``C^{1/2} W`` (which minimises ``||C^{1/2} (W - W_tt)||``, the output
  error, when ``C`` is a Kronecker product), and ``C_k^{-1/2}`` is then
  applied to the row mode of core ``k``: the ranks do not change.
  ``damping`` (a fraction of each factor's mean eigenvalue, added to it)
  keeps directions the sample never excites from blowing up.
- ``TTEmbedding`` (from ``Embedding``): *frequency-weighted TT-SVD*. The
  error of a looked-up row counts as often as the row is used, so the
  objective is ``sum_v w_v ||W_v - W_tt,v||^2`` with ``w_v`` the token
  counts on the sample (plus one), clipped at their ``clip_quantile``
  quantile and scaled to at most 1. It is minimised by expectation-
  maximisation for weighted low-rank approximation (Srebro and Jaakkola,
  ICML 2003): the table is repeatedly completed with the current
  approximation, ``Z = w W + (1 - w) W_tt``, and ``Z`` TT-SVD'd at the
  layer's ranks (``iterations`` times).

Each layer keeps its new cores only when they lower the output error on
the sample (measured from the recorded inputs); otherwise its cores are
left as they were. Nothing else changes (biases, activations, the
original model).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import keras
import numpy as np

from keras_tt import calibration
from keras_tt.decomposition import tt_svd
from keras_tt.layer_decomposition import float_matrix
from keras_tt.layers import TTDense
from keras_tt.layers import TTEinsumDense
from keras_tt.layers import TTEmbedding
from keras_tt.layers.tt_einsum_dense import input_rows
from keras_tt.layers.tt_einsum_dense import kernel_matrix
from keras_tt.layers.tt_einsum_dense import parse_equation
from keras_tt.report import iter_layers
from keras_tt.tt_matrix import full_matrix


@dataclasses.dataclass(frozen=True)
class DataAwareRecord:
    """What `data_aware_init` did to one layer.

    Attributes:
        name: the layer's path in the model.
        kind: ``"Dense"``, ``"EinsumDense"`` or ``"Embedding"``.
        method: ``"whitened"`` or ``"frequency-weighted"``.
        error_before: relative output error of the cores it found,
            ``||X (W - W_tt)|| / ||X W||`` on the calibration inputs (for
            an embedding, the count-weighted row error).
        error_after: the same for the data-aware cores.
        kept: whether the data-aware cores replaced the old ones (only
            when ``error_after < error_before``).
    """

    name: str
    kind: str
    method: str
    error_before: float
    error_after: float
    kept: bool


def _pad(matrix, rows, cols):
    r, c = matrix.shape
    if (r, c) == (rows, cols):
        return matrix
    return np.pad(matrix, [(0, rows - r), (0, cols - c)])


def _fit_ranks(cores, ranks):
    """Zero-pad cores to ``ranks`` (the product is unchanged)."""
    out = []
    for k, core in enumerate(cores):
        a, n, m, b = core.shape
        padded = np.zeros((ranks[k], n, m, ranks[k + 1]), core.dtype)
        padded[:a, :, :, :b] = core
        out.append(padded)
    return out


def _decompose(matrix, layout):
    caps = list(layout.ranks[1:-1]) or None
    result = tt_svd(matrix, layout.in_modes, layout.out_modes, tt_rank=caps)
    return _fit_ranks(list(result.cores), layout.ranks)


class _Moments:
    """Accumulates per-mode (Kronecker) and, when small, full second
    moments of a layer's inputs padded to the row modes."""

    FULL_LIMIT = 4096

    def __init__(self, in_modes, input_dim, flatten, rows=None):
        self.in_modes = tuple(in_modes)
        self.rows = rows
        self.padded = math.prod(in_modes)
        self.input_dim = input_dim
        self.flatten = flatten
        self.factors = [np.zeros((n, n)) for n in in_modes]
        self.full = (
            np.zeros((self.padded, self.padded))
            if self.padded <= self.FULL_LIMIT
            else None
        )
        self.count = 0

    def __call__(self, x):
        x = np.asarray(x, np.float64)
        x = self.rows(x) if self.rows else x.reshape(-1, self.flatten)
        if x.shape[1] != self.input_dim:
            return
        if self.padded != self.input_dim:
            x = np.pad(x, [(0, 0), (0, self.padded - self.input_dim)])
        self.count += x.shape[0]
        if self.full is not None:
            self.full += x.T @ x
        tensor = x.reshape((-1,) + self.in_modes)
        for k, n in enumerate(self.in_modes):
            unfolded = np.moveaxis(tensor, k + 1, 0).reshape(n, -1)
            self.factors[k] += unfolded @ unfolded.T


def _sqrt_pair(matrix, damping):
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, 0.0)
    values = values + damping * max(values.mean(), 1e-30)
    root = (vectors * np.sqrt(values)) @ vectors.T
    inverse = (vectors / np.sqrt(values)) @ vectors.T
    return root, inverse


def _apply_modes(matrix, in_modes, factors):
    """``(x)_k factors[k]`` applied to the rows of ``matrix``."""
    cols = matrix.shape[1]
    tensor = matrix.reshape(tuple(in_modes) + (cols,))
    for k, factor in enumerate(factors):
        tensor = np.moveaxis(
            np.tensordot(factor, tensor, axes=([1], [k])), 0, k
        )
    return tensor.reshape(matrix.shape)


def _output_error(moments, kernel, approx, data_model):
    """``||X (W - W_tt)|| / ||X W||`` from the second moments."""
    delta = kernel - approx
    if moments.full is not None:
        c = moments.full
    else:  # Kronecker approximation
        c = None
    if c is not None:
        num = np.sum(delta * (c @ delta))
        den = np.sum(kernel * (c @ kernel))
    else:
        num = np.sum(delta * _apply_modes(delta, moments.in_modes, data_model))
        den = np.sum(
            kernel * _apply_modes(kernel, moments.in_modes, data_model)
        )
    return float(math.sqrt(max(num, 0.0) / max(den, 1e-300)))


def _whitened(tt_layer, kernel, moments, damping):
    layout = tt_layer.layout
    kernel = _pad(
        kernel.astype(np.float64), layout.padded_input_dim, layout.padded_units
    )
    old = [np.asarray(c, np.float64) for c in tt_layer._core_arrays()]
    before = _output_error(moments, kernel, full_matrix(old), moments.factors)
    pairs = [
        _sqrt_pair(f / max(1, moments.count), damping) for f in moments.factors
    ]
    whitened = _apply_modes(kernel, layout.in_modes, [p[0] for p in pairs])
    cores = _decompose(whitened, layout)
    cores = [
        np.einsum("an,rnms->rams", inverse, core)
        for (_, inverse), core in zip(pairs, cores)
    ]
    after = _output_error(moments, kernel, full_matrix(cores), moments.factors)
    return cores, before, after


def _weighted_error(weights, table, approx):
    delta = np.sum((table - approx) ** 2, axis=1)
    return float(
        math.sqrt(
            np.sum(weights * delta)
            / max(np.sum(weights * np.sum(table**2, 1)), 1e-300)
        )
    )


def _frequency_weighted(tt_layer, table, counts, iterations, clip_quantile):
    layout = tt_layer.layout
    rows, cols = layout.padded_input_dim, layout.padded_units
    table = _pad(table.astype(np.float32), rows, cols)
    counts = np.pad(counts.astype(np.float64), (0, rows - counts.shape[0]))
    weights = counts + 1.0
    cap = float(np.quantile(weights, clip_quantile))
    weights = np.minimum(weights, cap) / cap
    old = [np.asarray(c, np.float32) for c in tt_layer._core_arrays()]
    approx = full_matrix(old)
    true_weights = counts + 1.0
    before = _weighted_error(true_weights, table, approx)
    w = weights[:, None].astype(np.float32)
    cores = old
    for _ in range(iterations):
        target = w * table + (1.0 - w) * approx
        cores = _decompose(target, layout)
        approx = full_matrix(cores)
    after = _weighted_error(true_weights, table, approx)
    return cores, before, after


def _tt_layers(tt_model):
    kinds = (
        (TTEmbedding, "Embedding"),
        (TTEinsumDense, "EinsumDense"),
        (TTDense, "Dense"),
    )
    for name, layer in iter_layers(tt_model, sublayers=True):
        for cls, kind in kinds:
            if isinstance(layer, cls):
                yield name, layer, kind
                break


def data_aware_init(
    tt_model,
    model,
    calibration_data,
    layers=None,
    damping: float = 0.01,
    iterations: int = 30,
    clip_quantile: float = 0.99,
    batch_size: int = 256,
) -> list[DataAwareRecord]:
    """Re-initialise ``tt_model``'s TT layers to fit outputs on real inputs.

    ``tt_model`` is a model returned by `keras_tt.tensorize` from
    ``model``; each of its `TTDense`, `TTEinsumDense` and `TTEmbedding`
    layers that has an original of the same path in ``model`` gets new
    cores at the same ranks, computed from the inputs that the original
    layer receives when ``model`` runs on ``calibration_data`` (see the
    module documentation for the methods). ``tt_model`` is changed in
    place; ``model`` is only read.

    Args:
        tt_model: the tensorized model (changed in place).
        model: the original model.
        calibration_data: a sample of model inputs (array, or list or dict
            of arrays), a few hundred to a few thousand examples.
        layers: optional list of layer paths to re-initialise (default:
            all TT layers with an original).
        damping: added to each mode factor's eigenvalues, as a fraction
            of their mean (Dense, EinsumDense).
        iterations: EM iterations of the frequency-weighted TT-SVD
            (Embedding).
        clip_quantile: quantile at which token counts are clipped.
        batch_size: examples per forward pass.

    Returns:
        One `DataAwareRecord` per layer considered.

    Raises:
        ValueError: for calibration data the model cannot take, NaN or
            Inf in it, unknown layer paths or bad settings; raised before
            any layer changes.

    Example:

    >>> import keras, numpy as np, keras_tt
    >>> rng = np.random.default_rng(0)
    >>> model = keras.Sequential([keras.Input((64,)),
    ...                           keras.layers.Dense(64, name="fc")])
    >>> x = rng.normal(size=(256, 64)).astype("float32") * np.linspace(
    ...     0.1, 3, 64).astype("float32")
    >>> tt_model = keras_tt.tensorize(model, tt_rank=4, layers=["fc"],
    ...                               verbose=0)
    >>> [record] = data_aware_init(tt_model, model, x)
    >>> record.error_after < record.error_before
    True
    """
    calibration_data = calibration.check_calibration_data(
        model, calibration_data
    )
    if not (isinstance(damping, (int, float)) and damping > 0):
        raise ValueError(
            "Received an invalid value for `damping`, expected a positive "
            f"number. Received: damping={damping!r}"
        )
    if not (isinstance(iterations, int) and iterations >= 1):
        raise ValueError(
            "Received an invalid value for `iterations`, expected a "
            f"positive integer. Received: iterations={iterations!r}"
        )
    if not (isinstance(clip_quantile, (int, float)) and 0 < clip_quantile <= 1):
        raise ValueError(
            "Received an invalid value for `clip_quantile`, expected a "
            f"number in (0, 1]. Received: clip_quantile={clip_quantile!r}"
        )
    originals = dict(iter_layers(model, sublayers=True))
    targets = [
        (name, layer, kind)
        for name, layer, kind in _tt_layers(tt_model)
        if name in originals
    ]
    if layers is not None:
        wanted = [layers] if isinstance(layers, str) else list(layers)
        known = {name for name, _, _ in targets}
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise ValueError(
                f"Received an invalid value for `layers`: {unknown} are not "
                f"TT layers of `tt_model` with an original in `model`; "
                f"expected some of {sorted(known)}. Received: layers={layers!r}"
            )
        targets = [t for t in targets if t[0] in wanted]
    if not targets:
        raise ValueError(
            "`tt_model` has no TT layer whose original (same path) is in "
            "`model`: pass the model that `tt_model` was tensorized from."
        )

    # Measure first, change nothing until every layer is computed.
    plans = []
    for name, tt_layer, kind in targets:
        original = originals[name]
        layout = tt_layer.layout
        if kind == "Embedding":
            counts = np.zeros(int(layout.input_dim), np.int64)

            def count(ids, counts=counts):
                ids = np.asarray(ids).reshape(-1).astype(np.int64)
                ids = ids[(ids >= 0) & (ids < counts.shape[0])]
                counts += np.bincount(ids, minlength=counts.shape[0])

            calibration.record_inputs(
                model, original, calibration_data, count, batch_size
            )
            table = float_matrix(original.embeddings)
            cores, before, after = _frequency_weighted(
                tt_layer, table, counts, iterations, clip_quantile
            )
            method = "frequency-weighted"
        else:
            rows = None
            if kind == "Dense":
                kernel = float_matrix(original.kernel)
            else:
                kernel = kernel_matrix(original)
                parts = parse_equation(original.equation)
                rows = functools.partial(input_rows, parts)
            flatten = kernel.shape[0]
            moments = _Moments(layout.in_modes, flatten, flatten, rows)
            calibration.record_inputs(
                model, original, calibration_data, moments, batch_size
            )
            if moments.count == 0:
                raise ValueError(
                    f"Layer '{name}' received no inputs of width "
                    f"{kernel.shape[0]} on `calibration_data`."
                )
            cores, before, after = _whitened(tt_layer, kernel, moments, damping)
            method = "whitened"
        kept = after < before
        record = DataAwareRecord(name, kind, method, before, after, kept)
        plans.append((tt_layer, cores if kept else None, record))

    records = []
    for tt_layer, cores, record in plans:
        if cores is not None:
            dtype = keras.backend.standardize_dtype(tt_layer.cores[0].dtype)
            tt_layer._assign_cores([c.astype(dtype) for c in cores])
        records.append(record)
    return records
