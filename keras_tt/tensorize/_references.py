"""The references a model holds to its layers: replacing them, and paths.

`substitute` points every reference a model and the layers and Functional
graphs below it hold to one layer at another; `layer_path` and
`follow_path` name where a layer sits, in steps that survive saving and
rebuilding the model from its config. `keras_tt.tensorize._substitution`
uses them to put TT layers into a copy of a model, and
`keras_tt.tensorize._holders` to put them back when a file is loaded.
"""

from __future__ import annotations

import keras

from keras_tt.tensorize._selection import is_graph_model

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
