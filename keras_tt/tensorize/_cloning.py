"""Cloning the model around the new layers, and copying every other weight.

Sequential and Functional models are cloned with `keras.models.clone_model`
(recursively, so shared layers stay shared and nested models are cloned
too). Its clone function gets layers and operations (`x + y`, `h * 2.0`,
`keras.ops.relu(h)` appear as `Add`, `Multiply`, `Relu` operations):
replaced layers become their TT layer, operations are cloned from their
config (they hold no weights), every other layer is rebuilt from its config.

A layer that holds a replaced layer in an attribute (a wrapper, a custom
layer, a subclassed model) is rebuilt from its config and the new layer is
put into that attribute. Layers whose ``build`` is their own are built
first, so that sublayers created in ``build`` exist to be replaced.

Weights are copied after the clone is built: whole layers with
``set_weights``, and for rebuilt holders their own weights and those of
each sublayer that was not replaced, matched by position.
"""

from __future__ import annotations

import contextlib
import warnings

import keras

from keras_tt.layers._tt_base import assign_copy
from keras_tt.tensorize._holders import mark_rebuilt
from keras_tt.tensorize._selection import is_graph_model
from keras_tt.tensorize._selection import swap
from keras_tt.tensorize._selection import uses_default_build


def _tracked(layer):
    return [
        sub
        for sub in getattr(layer, "_layers", [])
        if isinstance(sub, keras.layers.Layer)
    ]


@contextlib.contextmanager
def _no_compile(model):
    """Keep `clone_model` from compiling the clone; the pass does it.

    `clone_model` compiles the clone from the compile config whenever the
    model's ``compiled`` flag is set, which fails for a loss that does not
    deserialize; the flag is lowered for the duration of the call only.
    """
    if not getattr(model, "compiled", False):
        yield
        return
    model.compiled = False
    try:
        yield
    finally:
        model.compiled = True


class Cloner:
    """Clone a model, swapping in ``replacements`` (id of old -> new)."""

    def __init__(self, replacements: dict, rebuild_ids: set):
        self.replacements = replacements
        # Every layer or model holding a replaced layer, at any depth.
        self.rebuild_ids = rebuild_ids
        self.copy_whole = []
        self.copy_partly = []
        self._done = {}

    # ------------------------------------------------------------ cloning

    def clone_model(self, model):
        if is_graph_model(model):
            with _no_compile(model):
                new = keras.models.clone_model(
                    model, clone_function=self.clone_function, recursive=True
                )
            if not new.built and model.inputs:
                new.build(model.input_shape)
        else:
            new = self.rebuild(model)
        self.copy_weights()
        return new

    def clone_function(self, layer):
        if id(layer) in self._done:
            return self._done[id(layer)]
        if id(layer) in self.replacements:
            new = self.replacements[id(layer)]
        elif not isinstance(layer, keras.layers.Layer):
            new = _clone_operation(layer)
        elif id(layer) in self.rebuild_ids and not is_graph_model(layer):
            new = self.rebuild(layer)
        else:
            new = _clone_layer(layer)
            self.copy_whole.append((layer, new))
        self._done[id(layer)] = new
        return new

    def _clone_sublayer(self, layer):
        if id(layer) in self.replacements:
            return self.replacements[id(layer)]
        if is_graph_model(layer):
            with _no_compile(layer):
                return keras.models.clone_model(
                    layer, clone_function=self.clone_function, recursive=True
                )
        return self.rebuild(layer)

    def rebuild(self, old):
        """``old`` rebuilt from its config around its new sublayers."""
        from keras_tt.tensorize._selection import attribute_sublayers

        new = _clone_layer(old)
        is_model = isinstance(old, keras.Model)
        build_first = old.built and not uses_default_build(old)
        if build_first and not new.built:
            new.build_from_config(old.get_build_config())
        swapped = []
        for attribute, index, sub in attribute_sublayers(old):
            if id(sub) in self.replacements or id(sub) in self.rebuild_ids:
                swap(new, attribute, index, self._clone_sublayer(sub))
                swapped.append((attribute, index))
        if swapped and not _keras_class(type(old)):
            # Its config names the old sublayers: save the new ones too.
            mark_rebuilt(new, swapped)
        if is_model and not build_first and old.built:
            _build_model(new, old)
        self.copy_partly.append((old, new))
        self._done[id(old)] = new
        return new

    # ------------------------------------------------------------ weights

    def copy_weights(self):
        for old, new in self.copy_whole:
            _copy_whole(old, new)
        for old, new in self.copy_partly:
            self._copy_partly(old, new)

    def _copy_partly(self, old, new):
        old_subs, new_subs = _tracked(old), _tracked(new)
        if len(old_subs) != len(new_subs):
            raise ValueError(
                f"`tensorize` could not copy the weights of layer "
                f"'{old.name}' ({type(old).__name__}): its rebuilt copy "
                f"holds {len(new_subs)} sublayers, the original "
                f"{len(old_subs)}."
            )
        _copy_variables(old, _own_weights(old), _own_weights(new))
        for old_sub, new_sub in zip(old_subs, new_subs):
            if (
                id(old_sub) in self.replacements
                or id(old_sub) in self.rebuild_ids
            ):
                continue  # Replaced, or copied on its own.
            _copy_whole(old_sub, new_sub)


def _keras_class(cls) -> bool:
    return cls.__module__.split(".")[0] == "keras"


def _build_model(new, old):
    """Build a subclassed model by calling it on symbolic inputs."""
    config = old.get_build_config() or {}
    if "input_shape" not in config:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new.build_from_config(config)
        return
    inputs = keras.tree.map_shape_structure(
        lambda shape: keras.KerasTensor(shape), config["input_shape"]
    )
    new(inputs)


def _own_weights(layer):
    below = {id(w) for sub in _tracked(layer) for w in sub.weights}
    return [w for w in layer.weights if id(w) not in below]


def _copy_variables(layer, old, new):
    if len(old) != len(new) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(old, new)
    ):
        raise ValueError(
            f"`tensorize` could not copy the weights of layer "
            f"'{layer.name}' ({type(layer).__name__}): its copy has "
            f"{len(new)} weights of shapes {[tuple(w.shape) for w in new]}, "
            f"the original {len(old)} of shapes "
            f"{[tuple(w.shape) for w in old]}."
        )
    for a, b in zip(old, new):
        assign_copy(b, a)


def _copy_whole(old, new):
    old_weights = old.get_weights()
    if len(new.weights) != len(old_weights):
        raise ValueError(
            f"`tensorize` could not copy the weights of layer "
            f"'{old.name}': its clone has {len(new.weights)} weights, the "
            f"original {len(old_weights)}."
        )
    new.set_weights(old_weights)


def _clone_layer(layer):
    try:
        return type(layer).from_config(layer.get_config())
    except Exception as error:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"`tensorize` could not clone layer '{layer.name}' "
            f"({type(layer).__name__}) from its config: {error}. Layers "
            "must implement `get_config` (and `from_config` when their "
            "constructor needs it), as `keras.models.clone_model` requires."
        ) from error


def _clone_operation(operation):
    """An operation node (`Add`, `Relu`, ...): no weights to copy."""
    try:
        return operation.__class__.from_config(operation.get_config())
    except Exception:  # noqa: BLE001 - stateless: sharing it is safe
        return operation


# ---------------------------------------------------------------- compile


def compile_plan(model):
    """How the clone will be compiled; decided before any work.

    Returns ``None`` (the model is not compiled), ``("config", config)``
    (the compile config rebuilds), ``("objects", kwargs)`` (it does not,
    but the original loss and metric objects can be reused) or
    ``("none", reason)``.
    """
    if not getattr(model, "compiled", False):
        return None
    try:
        config = model.get_compile_config()
        keras.saving.deserialize_keras_object(config)
        return ("config", config)
    except Exception as error:  # noqa: BLE001 - handled below
        reason = f"{type(error).__name__}: {error}"
    original = getattr(getattr(model, "_compile_config", None), "config", None)
    if not original:
        return ("none", reason)
    try:
        kwargs = dict(original)
        kwargs["optimizer"] = _fresh_optimizer(model.optimizer)
        kwargs["metrics"] = _fresh_metrics(kwargs.get("metrics"))
        kwargs["weighted_metrics"] = _fresh_metrics(
            kwargs.get("weighted_metrics")
        )
    except Exception as error:  # noqa: BLE001 - fall back to uncompiled
        return ("none", f"{reason}; {type(error).__name__}: {error}")
    return ("objects", kwargs)


def _fresh_optimizer(optimizer):
    return type(optimizer).from_config(optimizer.get_config())


def _fresh_metrics(metrics):
    if isinstance(metrics, keras.metrics.Metric):
        try:
            return type(metrics).from_config(metrics.get_config())
        except Exception:  # noqa: BLE001 - stateless enough to share
            return metrics
    if isinstance(metrics, dict):
        return {k: _fresh_metrics(v) for k, v in metrics.items()}
    if isinstance(metrics, (list, tuple)):
        return type(metrics)(_fresh_metrics(m) for m in metrics)
    return metrics


def apply_compile_plan(model, new_model, compile_how) -> None:
    if compile_how is None:
        return
    how, payload = compile_how
    if how == "config":
        new_model.compile_from_config(payload)
        return
    if how == "objects":
        try:
            new_model.compile(**payload)
            return
        except Exception as error:  # noqa: BLE001 - warned below
            payload = f"{type(error).__name__}: {error}"
    warnings.warn(
        f"The model '{model.name}' was compiled, but its compile "
        f"arguments cannot be rebuilt ({payload}); the tensorized model is "
        "returned uncompiled. Call `compile` on it before `fit`.",
        UserWarning,
        stacklevel=3,
    )
