"""Multi-head attention whose projections are `TTEinsumDense` layers.

`keras.layers.MultiHeadAttention` creates its four projections (query,
key, value, output) as `keras.layers.EinsumDense` layers inside ``build``.
`TTMultiHeadAttention` is the same layer with a ``tt_projections``
argument: after the usual ``build``, every projection it names is replaced
by a `keras_tt.TTEinsumDense` with the given TT-ranks and modes. It is
serializable, so a model holding it saves and loads as a ``.keras`` file.

Subclasses of `MultiHeadAttention` (keras_hub's ``CachedMultiHeadAttention``
among them) get a TT counterpart of their own from `tt_attention_class`,
which keeps their ``call``. keras_hub's ``CachedMultiHeadAttention`` is
known in advance, so a saved model holding its TT counterpart loads in a
fresh process; for other subclasses call `tt_attention_class` once before
loading.
"""

from __future__ import annotations

import importlib

import keras

from keras_tt import modes as modes_lib
from keras_tt.layers._tt_base import as_list
from keras_tt.layers.tt_einsum_dense import TTEinsumDense
from keras_tt.layers.tt_einsum_dense import parse_equation

# Projection name -> attribute of `keras.layers.MultiHeadAttention`.
PROJECTIONS = {
    "query": "_query_dense",
    "key": "_key_dense",
    "value": "_value_dense",
    "output": "_output_dense",
}
_SPEC_KEYS = ("tt_rank", "in_modes", "out_modes")


def check_projections(tt_projections, name="tt_projections") -> dict:
    """``{projection: {"tt_rank", "in_modes", "out_modes"}}``, checked."""
    if tt_projections is None:
        return {}
    if not isinstance(tt_projections, dict) or not set(tt_projections) <= set(
        PROJECTIONS
    ):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a dict whose "
            f"keys are among {tuple(PROJECTIONS)}. Received: "
            f"{name}={tt_projections!r}"
        )
    clean = {}
    for projection, spec in tt_projections.items():
        if (
            not isinstance(spec, dict)
            or "tt_rank" not in spec
            or not set(spec) <= set(_SPEC_KEYS)
        ):
            raise ValueError(
                f"Received an invalid value for `{name}`: the settings of "
                f"'{projection}' must be a dict with `tt_rank` and optionally "
                f"`in_modes` and `out_modes`. Received: {spec!r}"
            )
        modes_lib.check_tt_rank_argument(spec["tt_rank"])
        tt_rank = spec["tt_rank"]
        clean[projection] = {
            "tt_rank": tt_rank if isinstance(tt_rank, int) else list(tt_rank),
            "in_modes": as_list(spec.get("in_modes")),
            "out_modes": as_list(spec.get("out_modes")),
        }
    return clean


class TTAttentionMixin:
    """Swaps the projections of a `MultiHeadAttention` for TT layers."""

    def __init__(self, *args, tt_projections=None, **kwargs):
        projections = check_projections(tt_projections)
        super().__init__(*args, **kwargs)
        self.tt_projections = projections

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        for projection, spec in self.tt_projections.items():
            attribute = PROJECTIONS[projection]
            old = getattr(self, attribute)
            if isinstance(old, TTEinsumDense):
                continue
            _replace_sublayer(self, attribute, old, tt_projection(old, spec))

    def get_config(self):
        config = super().get_config()
        config["tt_projections"] = {
            projection: dict(spec)
            for projection, spec in self.tt_projections.items()
        }
        return config


def tt_projection(einsum_dense, spec) -> TTEinsumDense:
    """A built `TTEinsumDense` shaped like ``einsum_dense``, new weights."""
    parts = parse_equation(einsum_dense.equation)
    kernel_shape = tuple(int(s) for s in einsum_dense.kernel.shape)
    layer = TTEinsumDense(
        einsum_dense.equation,
        einsum_dense.partial_output_shape,
        tt_rank=spec["tt_rank"],
        in_modes=spec.get("in_modes"),
        out_modes=spec.get("out_modes"),
        activation=einsum_dense.activation,
        bias_axes=einsum_dense.bias_axes,
        kernel_initializer=einsum_dense.kernel_initializer,
        bias_initializer=einsum_dense.bias_initializer,
        kernel_regularizer=einsum_dense.kernel_regularizer,
        bias_regularizer=einsum_dense.bias_regularizer,
        activity_regularizer=einsum_dense.activity_regularizer,
        kernel_constraint=einsum_dense.kernel_constraint,
        bias_constraint=einsum_dense.bias_constraint,
        name=einsum_dense.name,
        dtype=einsum_dense.dtype_policy,
        trainable=einsum_dense.trainable,
    )
    layer.build(parts.build_shape(kernel_shape))
    return layer


def _replace_sublayer(layer, attribute, old, new):
    """Hold ``new`` in ``attribute`` and in Keras's list of sublayers."""
    object.__setattr__(layer, attribute, new)
    tracked = layer._layers
    for i, sub in enumerate(tracked):
        if sub is old:
            tracked[i] = new
            break
    else:
        tracked.append(new)


_TT_CLASSES: dict[type, type] = {}


def tt_attention_class(base: type) -> type:
    """The TT counterpart of a `MultiHeadAttention` class (made once).

    The class is ``TT<base name>``, a subclass of ``base`` taking the extra
    argument ``tt_projections``, registered for serialization under the
    package ``keras_tt``.
    """
    if not (
        isinstance(base, type)
        and issubclass(base, keras.layers.MultiHeadAttention)
    ):
        raise ValueError(
            "Received an invalid value for `base`, expected a subclass of "
            f"`keras.layers.MultiHeadAttention`. Received: base={base!r}"
        )
    if issubclass(base, TTAttentionMixin):
        return base
    if base not in _TT_CLASSES:
        name = "TT" + base.__name__
        registered = f"keras_tt>{name}"
        custom = keras.saving.get_custom_objects()
        if isinstance(custom.get(registered), _DeferredClass):
            del custom[registered]
        cls = type(
            name,
            (TTAttentionMixin, base),
            {
                "__module__": __name__,
                "__doc__": (
                    f"`{base.__name__}` with `TTEinsumDense` projections; "
                    "see `keras_tt.layers.tt_attention`."
                ),
            },
        )
        _TT_CLASSES[base] = keras.saving.register_keras_serializable(
            package="keras_tt"
        )(cls)
    return _TT_CLASSES[base]


class _DeferredClass:
    """Stands for a TT attention class until its base class is imported.

    Registered under the TT class's name, so that loading a saved model
    finds it, imports the base class and makes the real class.
    """

    def __init__(self, module, name):
        self.module, self.name = module, name

    def from_config(self, config):
        base = getattr(importlib.import_module(self.module), self.name)
        return tt_attention_class(base).from_config(config)


TTMultiHeadAttention = tt_attention_class(keras.layers.MultiHeadAttention)
TTMultiHeadAttention.__doc__ = """`MultiHeadAttention` with TT projections.

    Takes the arguments of `keras.layers.MultiHeadAttention` and
    ``tt_projections``, a dict mapping any of ``"query"``, ``"key"``,
    ``"value"`` and ``"output"`` to ``{"tt_rank": ..., "in_modes": ...,
    "out_modes": ...}`` (modes optional). Those projections become
    `keras_tt.TTEinsumDense` layers with the same equation, shapes, bias
    and initialisers; the others stay `keras.layers.EinsumDense`.

    Example:

    >>> import keras, keras_tt
    >>> layer = keras_tt.TTMultiHeadAttention(
    ...     num_heads=4, key_dim=16,
    ...     tt_projections={"query": {"tt_rank": 4}, "output": {"tt_rank": 4}})
    >>> x = keras.ops.ones((2, 5, 64))
    >>> tuple(layer(x, x).shape)
    (2, 5, 64)
    >>> type(layer._query_dense).__name__, type(layer._key_dense).__name__
    ('TTEinsumDense', 'EinsumDense')
    """

for _module, _name in (
    (
        "keras_hub.src.layers.modeling.cached_multi_head_attention",
        "CachedMultiHeadAttention",
    ),
):
    keras.saving.get_custom_objects().setdefault(
        f"keras_tt>TT{_name}", _DeferredClass(_module, _name)
    )
