"""Putting TT layers into a copy of a model, whatever holds them.

This is the route `tensorize` takes when the model's own class must be
kept (a keras_hub ``Backbone`` or ``CausalLM``, any subclass of a
Functional model) or when a selected layer sits in a layer that cannot be
rebuilt from its config (an unregistered attention class, a decoder block
whose config does not describe it fully). It works the way Keras's own
``Layer.quantize()`` and ``enable_lora()`` change layers inside any model:
nothing is rebuilt around the new layer.

1. `copy_model`: a copy of the whole model with equal, separate weights;
   a Functional model of Keras's own classes through
   `keras.models.clone_model`, any other model through its own
   ``from_config(get_config())``, the way it is saved and loaded.
2. `substitute`: every reference the copy holds to a selected layer (in
   attributes, in lists, tuples and dicts kept in attributes, in the
   tracked sublayers, in the nodes of every Functional graph) is pointed
   at its TT layer.
3. The copy records, for each substitution, the path from the model to
   the layer (`layer_path`) and saves it with the TT layer's config (see
   `keras_tt.tensorize._holders`), so that loading the file rebuilds the
   model from its own config and repeats the substitutions
   (`follow_path`) before Keras loads the weights.
"""

from __future__ import annotations

import warnings

import keras

from keras_tt.layers._tt_base import assign_copy

# Attributes never followed: Keras's variable lists and back-references.
_SKIPPED_ATTRIBUTES = frozenset(
    {
        "_trainable_variables",
        "_non_trainable_variables",
        "_seed_generators",
        "_metrics",
        "_loss_tracker",
        "_compile_metrics",
        "_compile_loss",
        "optimizer",
        "_outbound_nodes",
    }
)


def _is_function(value) -> bool:
    from keras.src.ops.function import Function

    return isinstance(value, Function)


def _tracked(layer):
    return [
        sub
        for sub in getattr(layer, "_layers", [])
        if isinstance(sub, keras.layers.Layer)
    ]


# ------------------------------------------------------------------ route


def needs_substitution(model, selected) -> bool:
    """Whether the pass must copy ``model`` and substitute its layers.

    True when the model's class is a subclass of a Functional model that is
    not Keras's own (cloning the graph would lose it), when a converter
    changes its layer in place, or when a selected layer sits in a holder
    that cannot be rebuilt from its config.
    """
    from keras_tt.tensorize._selection import is_graph_model
    from keras_tt.tensorize._selection import unreachable_reason

    if is_graph_model(model) and not _keras_class(type(model)):
        return True
    if any(getattr(s.node.converter, "in_place", False) for s in selected):
        return True
    cache = {}
    return any(unreachable_reason(s.node, cache) for s in selected)


def substitute_layers(copy, model, nodes, selected, replacements):
    """``copy`` (of ``model``) holding ``replacements`` (id of old -> new).

    ``nodes`` are the nodes of ``model``'s tree, ``selected`` the
    `Selected` layers whose replacements are put in. Returns ``copy``.
    """
    from keras_tt.tensorize._holders import mark_substituted
    from keras_tt.tensorize._selection import build_tree

    _, copy_nodes = build_tree(copy)
    if [_structure(n) for n in nodes] != [_structure(n) for n in copy_nodes]:
        raise ValueError(
            f"`tensorize` could not copy the model '{model.name}' "
            f"({type(model).__name__}): its copy rebuilt from its config "
            "holds other layers than the original. The model's config must "
            "describe every layer it holds."
        )
    position = {id(node): index for index, node in enumerate(nodes)}
    for chosen in selected:
        target = copy_nodes[position[id(chosen.node)]]
        new_layer = replacements[id(chosen.layer)]
        steps = layer_path(target)
        if getattr(chosen.node.converter, "in_place", False):
            # A change made in place (experts weights), not a new layer.
            new_layer.apply(target.layer)
        elif not substitute(copy, target.layer, new_layer):
            raise ValueError(
                f"`tensorize` could not replace '{chosen.name}' in the copy "
                f"of the model '{model.name}': no reference to it was found."
            )
        mark_substituted(copy, steps)
    return copy


def _structure(node):
    """Where ``node`` sits, by position (generated names may differ)."""
    depth = len(list(node.ancestors()))
    # The layers of a Functional graph by position and class only: a model
    # rebuilt from its config generates new names for unnamed layers.
    return depth, node.access, type(node.layer)


# ---------------------------------------------------------------- copying


def copy_model(model):
    """A copy of ``model``: same class and config, equal separate weights.

    Raises:
        ValueError: naming the model's class when it can be neither cloned
            nor rebuilt from its config, or when the copy's weights do not
            match the original's.
    """
    from keras_tt.tensorize._cloning import Cloner
    from keras_tt.tensorize._cloning import _build_model
    from keras_tt.tensorize._selection import is_graph_model

    if is_graph_model(model) and _keras_class(type(model)):
        return Cloner({}, set()).clone_model(model)
    try:
        config = model.get_config()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new = type(model).from_config(config)
            if not new.built and model.built:
                build_config = model.get_build_config() or {}
                if "input_shape" in build_config:
                    _build_model(new, model)
                else:
                    new.build_from_config(build_config)
    except Exception as error:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"`tensorize` could not copy the model '{model.name}' "
            f"({type(model).__name__}) to put TT layers into: rebuilding it "
            f"from its config failed ({type(error).__name__}: {error}). "
            "Give the class a `get_config` that returns its constructor "
            "arguments (and a `from_config` when the constructor needs "
            "more), as saving the model to a `.keras` file requires."
        ) from error
    copy_variables(model, new)
    return new


def copy_variables(model, new) -> None:
    """Copy every weight of ``model`` into ``new``, matched by position."""
    old_weights, new_weights = model.weights, new.weights
    shapes = [tuple(w.shape) for w in old_weights]
    new_shapes = [tuple(w.shape) for w in new_weights]
    if shapes != new_shapes:
        raise ValueError(
            f"`tensorize` could not copy the weights of the model "
            f"'{model.name}' ({type(model).__name__}): its copy rebuilt from "
            f"its config holds {len(new_shapes)} weights, the original "
            f"{len(shapes)}; the first difference is at position "
            f"{_first_difference(shapes, new_shapes)}. The model's config "
            "must describe every layer it holds."
        )
    for old, copied in zip(old_weights, new_weights):
        assign_copy(copied, old)


def _first_difference(a, b) -> int:
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return min(len(a), len(b))


def _keras_class(cls) -> bool:
    return cls.__module__.split(".")[0] == "keras"


# ------------------------------------------------------------ substituting


def substitute(root, old, new) -> int:
    """Point every reference ``root`` holds to ``old`` at ``new``.

    Walks ``root`` and every layer and Functional graph below it. In each,
    replaces ``old`` in attributes, in lists, tuples and dicts held in
    attributes, in the tracked sublayers and in the graph's nodes and
    operations; ``new`` takes over the graph nodes of ``old`` so that
    the graph's config names it. Returns the number of references
    replaced.
    """
    count = 0
    seen = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is old:
            continue
        seen.add(id(obj))
        count += _substitute_in(obj, old, new)
        for value in _children(obj):
            stack.append(value)
    if count and getattr(old, "_inbound_nodes", None):
        object.__setattr__(new, "_inbound_nodes", list(old._inbound_nodes))
        object.__setattr__(new, "_outbound_nodes", list(old._outbound_nodes))
    return count


def _children(obj):
    """The layers and graphs ``obj`` holds, for the walk."""
    for attribute, value in vars(obj).items():
        if attribute in _SKIPPED_ATTRIBUTES:
            continue
        for item in _items(value):
            if isinstance(item, keras.layers.Layer) or _is_function(item):
                yield item


def _items(value):
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _substitute_in(obj, old, new) -> int:
    count = 0
    for attribute, value in list(vars(obj).items()):
        if attribute in _SKIPPED_ATTRIBUTES:
            continue
        if value is old:
            object.__setattr__(obj, attribute, new)
            count += 1
        elif isinstance(value, list):
            for index, item in enumerate(list(value)):
                if item is old:
                    _set_item(value, index, new)
                    count += 1
        elif isinstance(value, tuple) and any(item is old for item in value):
            items = [new if item is old else item for item in value]
            rebuilt = (
                type(value)(*items)
                if hasattr(value, "_fields")
                else type(value)(items)
            )
            object.__setattr__(obj, attribute, rebuilt)
            count += 1
        elif isinstance(value, dict):
            for key, item in list(value.items()):
                if item is old:
                    dict.__setitem__(value, key, new)
                    count += 1
    if _is_function(obj):
        count += _substitute_in_graph(obj, old, new)
    return count


def _set_item(items, index, new) -> None:
    """``items[index] = new``, past the tracking of Keras's own lists.

    TensorFlow wraps lists set as attributes in a ``ListWrapper`` that
    keeps its items elsewhere; its own ``__setitem__`` is used then.
    """
    if type(items) is list or not hasattr(items, "_storage"):
        list.__setitem__(items, index, new)
    else:
        items[index] = new


def _substitute_in_graph(function, old, new) -> int:
    count = 0
    # The graph's own nodes are keyed by the id of their operation.
    keys = getattr(function, "_nodes", None)
    if isinstance(keys, set):
        prefix = f"{id(old)}_ib-"
        for key in [k for k in keys if isinstance(k, str)]:
            if key.startswith(prefix):
                keys.discard(key)
                keys.add(f"{id(new)}_ib-{key[len(prefix) :]}")
    for nodes in getattr(function, "_nodes_by_depth", {}).values():
        for node in nodes:
            if node.operation is old:
                node.operation = new
                count += 1
    for operations in getattr(function, "_operations_by_depth", {}).values():
        for index, operation in enumerate(operations):
            if operation is old:
                _set_item(operations, index, new)
    return count


# ------------------------------------------------------------------ paths


def layer_path(node) -> list:
    """The steps from the model to the layer of ``node``, to save.

    Each step is ``["layer", position, name]`` (a layer of a Sequential or
    Functional model, by position: a model rebuilt from its config may
    generate other names for its unnamed layers),
    ``["attribute", name, index or None]`` (a sublayer held in an
    attribute) or ``["tracked", position]`` (a tracked
    sublayer held elsewhere, such as in a dict).
    """
    from keras_tt.tensorize._selection import is_graph_model

    steps = []
    child = node
    for parent in node.ancestors():
        if is_graph_model(parent.layer):
            position = next(
                i
                for i, sub in enumerate(parent.layer.layers)
                if sub is child.layer
            )
            steps.append(["layer", position, child.layer.name])
        elif child.access is not None and child.access[0] is not None:
            attribute, index = child.access
            steps.append(["attribute", attribute, index])
        else:
            position = next(
                i
                for i, sub in enumerate(_tracked(parent.layer))
                if sub is child.layer
            )
            steps.append(["tracked", position])
        child = parent
    return steps[::-1]


def follow_path(root, steps):
    """The layer that ``steps`` (from `layer_path`) lead to from ``root``."""
    layer = root
    for step in steps:
        kind = step[0]
        if kind == "layer":
            position = step[1]
            layers = layer.layers
            if not isinstance(position, int) or not 0 <= position < len(layers):
                raise ValueError(
                    f"The model '{layer.name}' has {len(layers)} layers; the "
                    f"saved substitution {steps!r} needs layer {position!r}, "
                    "so it does not fit the model rebuilt from the file's "
                    "config."
                )
            layer = layers[position]
        elif kind == "attribute":
            _, attribute, index = step
            value = getattr(layer, attribute, None)
            if index is not None:
                value = (
                    value[index] if isinstance(value, (list, tuple)) else None
                )
            if not isinstance(value, keras.layers.Layer):
                raise ValueError(
                    f"The layer '{layer.name}' holds no layer in attribute "
                    f"{attribute!r} (index {index}); the saved substitution "
                    f"{steps!r} does not fit the model rebuilt from the "
                    "file's config."
                )
            layer = value
        elif kind == "tracked":
            tracked = _tracked(layer)
            if step[1] >= len(tracked):
                raise ValueError(
                    f"The layer '{layer.name}' tracks {len(tracked)} "
                    f"sublayers; the saved substitution {steps!r} needs "
                    f"position {step[1]}."
                )
            layer = tracked[step[1]]
        else:
            raise ValueError(f"Unknown substitution step {step!r}.")
    return layer
