"""Mixture-of-experts weights held as TT-matrices, in the experts' own layer.

The experts of keras_hub's mixture-of-experts decoders (Mixtral, Qwen-MoE,
Qwen3-MoE, GPT-OSS) are not `Dense` layers: one layer holds, for each
projection, a raw ``(num_experts, rows, cols)`` variable and multiplies by
it with `keras.ops.einsum` in its own ``call``. `tt_experts` turns such a
layer into one that holds each of those variables as the cores of a
TT-matrix of ``rows x (num_experts * cols)`` (the experts share the
input-side cores) and rebuilds the ``(num_experts, rows, cols)`` tensor
from the cores whenever its ``call`` reads the attribute. The layer keeps
its class (a subclass of it is used), its config and its ``call``; only
its storage changes.

Such layers are built by their holder and often cannot be rebuilt from a
config of their own, so they are changed in place: `tensorize` changes the
experts layer of its copy of the model (`ExpertsChange.apply`) and saves
the change (`ExpertsChange.saved`) with the model; loading rebuilds the
model from its config and changes the experts layer again
(`apply_expert_specs`) before Keras reads the weights.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from keras_tt.contraction import tt_kernel
from keras_tt.layer_decomposition import decompose_for_layer

_CLASSES: dict[type, type] = {}


def expert_weights(layer) -> list[str]:
    """Attributes of ``layer`` holding ``(num_experts, rows, cols)`` weights.

    Only the layer's own variables count (not those of its sublayers), and
    only when the layer says how many experts it has (``num_experts``).
    """
    experts = getattr(layer, "num_experts", None)
    if not isinstance(experts, int) or isinstance(layer, TTExpertsMixin):
        return []
    own = {
        id(v)
        for v in list(layer._trainable_variables)
        + list(layer._non_trainable_variables)
    }
    found = []
    for attribute, value in vars(layer).items():
        if (
            isinstance(value, keras.Variable)
            and id(value) in own
            and len(value.shape) == 3
            and int(value.shape[0]) == experts
        ):
            found.append(attribute)
    return found


def expert_matrix(weights) -> np.ndarray:
    """``(experts, rows, cols)`` -> the ``rows x (experts * cols)`` matrix."""
    experts, rows, cols = weights.shape
    return np.transpose(weights, (1, 0, 2)).reshape(rows, experts * cols)


class TTExpertsMixin:
    """What the TT form of an experts layer adds to its class."""

    def _tt_expert_weight(self, attribute):
        spec = self._keras_tt_experts[attribute]
        experts, rows, cols = spec["shape"]
        cores = self._keras_tt_cores[attribute]
        matrix = tt_kernel(cores)
        matrix = matrix[:rows, : experts * cols]
        tensor = keras.ops.reshape(matrix, (rows, experts, cols))
        return keras.ops.transpose(tensor, (1, 0, 2))

    def tt_expert_specs(self) -> dict:
        """``{attribute: {"shape", "in_modes", "out_modes", "tt_ranks"}}``."""
        return {a: dict(s) for a, s in self._keras_tt_experts.items()}


def _property(attribute):
    def get(self):
        return self._tt_expert_weight(attribute)

    def set_(self, value):
        # The base class's `build` assigns the dense variable here: keep it
        # aside until `_to_tt` drops it.
        self.__dict__.setdefault("_keras_tt_dense", {})[attribute] = value

    return property(get, set_)


def tt_experts_class(base: type, attributes) -> type:
    """The subclass of ``base`` whose ``attributes`` are rebuilt from cores."""
    if issubclass(base, TTExpertsMixin):
        return base
    key = (base, tuple(sorted(attributes)))
    if key not in _CLASSES:
        namespace = {
            "__module__": base.__module__,
            "__doc__": base.__doc__,
        }
        for attribute in attributes:
            namespace[attribute] = _property(attribute)
        cls = type(base.__name__, (TTExpertsMixin, base), namespace)
        # Saved under the base class's name: a model's config describes
        # the dense experts layer, and loading changes it again.
        from keras.src.saving import object_registration

        object_registration.GLOBAL_CUSTOM_NAMES[cls] = (
            keras.saving.get_registered_name(base)
        )
        _CLASSES[key] = cls
    return _CLASSES[key]


def _to_tt(layer, specs: dict) -> None:
    """Swap ``layer``'s expert variables for cores described by ``specs``."""
    dense = {a: vars(layer)[a] for a in specs}
    for variables in (
        layer._trainable_variables,
        layer._non_trainable_variables,
    ):
        for variable in dense.values():
            for index in reversed(range(len(variables))):
                if variables[index] is variable:
                    del variables[index]
    for attribute in specs:
        del layer.__dict__[attribute]
    cores = {}
    tracker = getattr(layer, "_tracker", None)
    locked = bool(tracker is not None and tracker.locked)
    if locked:
        tracker.unlock()
    for attribute, spec in specs.items():
        variable = dense[attribute]
        ranks = spec["tt_ranks"]
        cores[attribute] = [
            layer.add_weight(
                shape=(ranks[k], n, m, ranks[k + 1]),
                initializer="zeros",
                dtype=variable.dtype,
                trainable=variable.trainable,
                name=f"{variable.name}_core_{k}",
            )
            for k, (n, m) in enumerate(zip(spec["in_modes"], spec["out_modes"]))
        ]
    if locked:
        tracker.lock()
    object.__setattr__(layer, "_keras_tt_experts", specs)
    object.__setattr__(layer, "_keras_tt_cores", cores)
    layer.__class__ = tt_experts_class(type(layer), list(specs))
    layer.__dict__.pop("_keras_tt_dense", None)


def check_expert_specs(specs, name="tt_experts") -> dict:
    """Saved expert specs, refused before any allocation when damaged."""
    if not isinstance(specs, dict) or not specs:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a dict of "
            f"expert weight specs. Received: {name}={specs!r}"
        )
    checked = {}
    for attribute, spec in specs.items():
        try:
            shape = tuple(int(v) for v in spec["shape"])
            in_modes = tuple(int(v) for v in spec["in_modes"])
            out_modes = tuple(int(v) for v in spec["out_modes"])
            ranks = tuple(int(v) for v in spec["tt_ranks"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"Received an invalid value for `{name}`: the spec of "
                f"{attribute!r} lacks shape, in_modes, out_modes or "
                f"tt_ranks ({error}). Received: {name}={specs!r}"
            ) from error
        experts, rows, cols = shape if len(shape) == 3 else (0, 0, 0)
        core_params = (
            sum(
                ranks[k] * n * m * ranks[k + 1]
                for k, (n, m) in enumerate(zip(in_modes, out_modes))
            )
            if len(ranks) == len(in_modes) + 1 == len(out_modes) + 1
            else -1
        )
        if (
            min(experts, rows, cols) < 1
            or min(in_modes + out_modes + ranks, default=0) < 1
            or math.prod(in_modes) < rows
            or math.prod(out_modes) < experts * cols
            or core_params < 0
            or core_params > 4 * experts * rows * cols + 1024
        ):
            raise ValueError(
                f"Received an invalid value for `{name}`: the spec of "
                f"{attribute!r} (shape {shape}, modes {in_modes} x "
                f"{out_modes}, TT-ranks {ranks}) does not describe the "
                "cores of a TT-matrix no larger than the weights it stands "
                "for; the file may be damaged or edited. "
                f"Received: {name}={specs!r}"
            )
        checked[attribute] = {
            "shape": list(shape),
            "in_modes": list(in_modes),
            "out_modes": list(out_modes),
            "tt_ranks": list(ranks),
        }
    return checked


@dataclasses.dataclass
class ExpertsChange:
    """The TT form of an experts layer's weights, to apply to a layer.

    Attributes:
        specs: ``{attribute: {"shape", "in_modes", "out_modes",
            "tt_ranks"}}``, one per expert weight.
        cores: ``{attribute: [core arrays]}``, the TT-SVD cores.
    """

    specs: dict
    cores: dict

    def apply(self, layer) -> None:
        """Put the cores into ``layer`` (a copy of the converted layer)."""
        apply_expert_specs(layer, self.specs)
        for attribute, values in self.cores.items():
            for core, value in zip(layer._keras_tt_cores[attribute], values):
                core.assign(np.asarray(value, dtype=core.dtype))

    def saved(self) -> dict:
        """What a `.keras` file records to repeat the change on load."""
        return {"kind": "experts", "tt_experts": self.specs}


def apply_expert_specs(layer, specs) -> None:
    """Change ``layer`` in place to hold the cores ``specs`` describe.

    The cores are created with zeros (loading fills them). ``specs`` are
    checked first (`check_expert_specs`), and must name expert weights of
    ``layer`` of the shapes they record.
    """
    specs = check_expert_specs(specs)
    present = expert_weights(layer)
    for attribute, spec in specs.items():
        if attribute not in present or list(
            getattr(layer, attribute).shape
        ) != list(spec["shape"]):
            raise ValueError(
                f"Received an invalid value for `tt_experts`: the layer "
                f"'{layer.name}' ({type(layer).__name__}) holds no expert "
                f"weight {attribute!r} of shape {tuple(spec['shape'])}; its "
                f"expert weights are {present}. Received: tt_experts={specs!r}"
            )
    _to_tt(layer, specs)


def experts_to_tt(
    layer,
    tt_rank=None,
    rel_error=None,
    in_modes=None,
    out_modes=None,
    callback=None,
):
    """TT-SVD of every expert weight of ``layer`` (which is not changed).

    Each ``(num_experts, rows, cols)`` weight (`expert_weights`) becomes a
    TT-SVD of its ``rows x (num_experts * cols)`` matrix (`expert_matrix`).

    Args:
        layer: a built layer with ``num_experts`` and expert weights.
        tt_rank: cap on the inner TT-ranks.
        rel_error: relative Frobenius error budget per weight.
        in_modes: optional row modes; out_modes: optional column modes.
        callback: passed to `keras_tt.tt_svd`.

    Returns:
        ``(ExpertsChange, {attribute: LayerDecomposition})``.

    Example:

    >>> import keras
    >>> class Experts(keras.layers.Layer):
    ...     def __init__(self, num_experts, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.num_experts = num_experts
    ...     def build(self, shape):
    ...         self.w = self.add_weight(shape=(self.num_experts, 8, 6))
    ...     def call(self, x):
    ...         return keras.ops.einsum("th,ehm->etm", x, self.w)
    >>> experts = Experts(4)
    >>> x = np.ones((2, 8), "float32")
    >>> dense_out = keras.ops.convert_to_numpy(experts(x))
    >>> change, _ = experts_to_tt(experts, tt_rank=100)
    >>> change.apply(experts)
    >>> type(experts).__mro__[1].__name__, len(experts.weights)
    ('TTExpertsMixin', 2)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(experts(x)), dense_out,
    ...                  atol=1e-5))
    True
    """
    attributes = expert_weights(layer)
    if not attributes:
        raise ValueError(
            f"Received an invalid value for `layer`, expected a layer with "
            f"`num_experts` holding (num_experts, rows, cols) weights. "
            f"Received: layer='{layer.name}' ({type(layer).__name__})"
        )
    decompositions, specs, cores = {}, {}, {}
    for attribute in attributes:
        weights = keras.ops.convert_to_numpy(getattr(layer, attribute))
        experts, rows, cols = weights.shape
        result = decompose_for_layer(
            expert_matrix(weights.astype("float64")),
            tt_rank=tt_rank,
            rel_error=rel_error,
            in_modes=in_modes,
            out_modes=out_modes,
            callback=callback,
            layer_name=f"{layer.name}/{attribute}",
        )
        decompositions[attribute] = result
        specs[attribute] = {
            "shape": [int(experts), int(rows), int(cols)],
            "in_modes": list(result.layout.in_modes),
            "out_modes": list(result.layout.out_modes),
            "tt_ranks": list(result.decomposition.ranks),
        }
        cores[attribute] = [np.asarray(c) for c in result.decomposition]
    return ExpertsChange(specs, cores), decompositions
