"""Finding the layers `tensorize` can replace, wherever they sit.

The model is walked as a tree: the layers of Sequential and Functional
models (which `keras.models.clone_model` rebuilds), and the sublayers held
in the attributes of any other layer: a wrapper's ``layer``
(`keras.layers.TimeDistributed`), a custom layer's ``self.ffn``, a
subclassed model's ``self.fc``. A layer that a registered converter
handles is a leaf of the tree (a candidate).

Every candidate can be replaced. One inside a layer that is not a
Sequential or Functional model is replaced by rebuilding that holder from
its config and putting the new layer in its attribute when the holder is
rebuildable (`unreachable_reason` says why not: unregistered, not
rebuildable from its config, or holding its sublayer elsewhere than in
the same attribute); otherwise the pass copies the whole model and
substitutes the new layer in the copy (`keras_tt.tensorize._substitution`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from collections.abc import Sequence

import keras

from keras_tt.tensorize._arguments import check_settings
from keras_tt.tensorize._converters import LayerConverter
from keras_tt.tensorize._converters import converter_for
from keras_tt.tensorize._converters import registered_converters

# Attributes of Keras's own base classes that hold sublayers by another
# route (the tracked list itself, graph internals).
_INTERNAL_ATTRIBUTES = frozenset(
    {"_layers", "_operations", "_functional", "_inbound_nodes"}
)


@dataclasses.dataclass(eq=False)
class Node:
    """One layer of the model tree."""

    path: str
    layer: keras.layers.Layer
    parent: Node | None
    # (attribute, index or None) in the parent's attributes; None for the
    # layers of a Sequential or Functional model.
    access: tuple[str, int | None] | None
    converter: LayerConverter | None
    children: list = dataclasses.field(default_factory=list)

    @property
    def kernels(self):
        return self.converter.kernels(self.layer) if self.converter else []

    @property
    def size(self) -> int:
        """Entries in the largest kernel."""
        return max((rows * cols for _, rows, cols in self.kernels), default=0)

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


@dataclasses.dataclass
class Selected:
    """A layer chosen for replacement, with its per-layer settings."""

    node: Node
    settings: dict

    @property
    def name(self) -> str:
        return self.node.path

    @property
    def layer(self):
        return self.node.layer


def is_graph_model(layer) -> bool:
    """A Sequential or Functional model (`clone_model` rebuilds those)."""
    if isinstance(layer, keras.Sequential):
        return True
    from keras.src.models.functional import Functional

    return isinstance(layer, Functional)


def attribute_sublayers(layer):
    """``(attribute, index or None, sublayer)`` for each tracked sublayer.

    Sublayers tracked by Keras but held in no attribute are listed with
    attribute ``None``.
    """
    tracked = [
        sub
        for sub in getattr(layer, "_layers", [])
        if isinstance(sub, keras.layers.Layer)
    ]
    where = {}
    attributes = dict(vars(layer))
    # On the PyTorch backend a layer is a `torch.nn.Module`, which keeps
    # the sublayers set as attributes in its `_modules`.
    modules = attributes.get("_modules")
    if isinstance(modules, dict):
        for name, value in modules.items():
            attributes.setdefault(name, value)
    for attribute, value in attributes.items():
        if attribute in _INTERNAL_ATTRIBUTES:
            continue
        if isinstance(value, keras.layers.Layer):
            where.setdefault(id(value), (attribute, None))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, keras.layers.Layer):
                    where.setdefault(id(item), (attribute, index))
    return [(*where.get(id(sub), (None, None)), sub) for sub in tracked]


def build_tree(model) -> tuple[Node, list[Node]]:
    """The model as a tree of `Node`; also every node in walk order."""
    root = Node("", model, None, None, None)
    nodes = []
    seen = {id(model)}

    def walk(node):
        layer = node.layer
        if is_graph_model(layer):
            children = [(None, child) for child in layer.layers]
        else:
            children = [
                ((attribute, index), child)
                for attribute, index, child in attribute_sublayers(layer)
            ]
        for access, child in children:
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{node.path}/{child.name}" if node.path else child.name
            child_node = Node(path, child, node, access, converter_for(child))
            node.children.append(child_node)
            nodes.append(child_node)
            if child_node.converter is None:
                walk(child_node)

    walk(root)
    return root, nodes


def _describe(layer) -> str:
    return f"'{layer.name}' ({type(layer).__name__})"


def _registered(cls) -> bool:
    if cls.__module__.split(".")[0] in ("keras", "keras_tt"):
        return True
    name = keras.saving.get_registered_name(cls)
    return keras.saving.get_registered_object(name) is cls


def uses_default_build(layer) -> bool:
    """True when ``layer`` keeps `keras.layers.Layer`'s own ``build``."""
    return bool(getattr(type(layer).build, "_is_default", False))


def rebuild_problem(node: Node, targets) -> str | None:
    """Why the layer of ``node`` cannot be rebuilt around new sublayers.

    ``targets`` are the child nodes whose layers would be put into the
    rebuilt layer. None when it can.
    """
    layer = node.layer
    what = "subclassed model" if isinstance(layer, keras.Model) else "layer"
    if not _registered(type(layer)):
        return (
            f"it sits in the {what} {_describe(layer)}, whose class is not "
            "registered for serialization, so a model holding a rebuilt "
            "copy could not be loaded again. Decorate the class with "
            "`@keras.saving.register_keras_serializable()` and give it a "
            "`get_config` that returns its constructor arguments"
        )
    try:
        rebuilt = type(layer).from_config(layer.get_config())
    except Exception as error:  # noqa: BLE001 - reported with context
        return (
            f"it sits in the {what} {_describe(layer)}, which cannot be "
            f"rebuilt from its config ({type(error).__name__}: {error}). "
            "Give the class a `get_config` that returns its constructor "
            "arguments"
        )
    missing = [t for t in targets if not _holds_same(rebuilt, t)]
    if missing and not uses_default_build(layer) and layer.built:
        try:
            rebuilt.build_from_config(layer.get_build_config())
        except Exception:  # noqa: BLE001 - the check below reports it
            pass
        missing = [t for t in targets if not _holds_same(rebuilt, t)]
    if missing:
        return (
            f"it sits in the {what} {_describe(layer)}, whose copy rebuilt "
            f"from its config holds no {type(missing[0].layer).__name__} in "
            f"the attribute where the original holds "
            f"'{missing[0].layer.name}'. Create sublayers in `__init__` or "
            "`build` and keep them in attributes"
        )
    return None


def _holds_same(rebuilt, target: Node) -> bool:
    if target.access is None or target.access[0] is None:
        return False
    attribute, index = target.access
    value = getattr(rebuilt, attribute, None)
    if index is not None:
        if not isinstance(value, (list, tuple)) or index >= len(value):
            return False
        value = value[index]
    return type(value) is type(target.layer)


def unreachable_reason(node: Node, cache: dict) -> str | None:
    """Why `tensorize` cannot replace the layer of ``node``; None if it can.

    ``cache`` maps containers to their answer across calls.
    """
    child = node
    for ancestor in node.ancestors():
        if not is_graph_model(ancestor.layer):
            if child.access is None or child.access[0] is None:
                return (
                    f"the {type(ancestor.layer).__name__} "
                    f"{_describe(ancestor.layer)} holds it in no attribute"
                )
            key = id(ancestor)
            if key not in cache:
                targets = [
                    c for c in ancestor.children if _has_candidate_below(c)
                ]
                cache[key] = rebuild_problem(ancestor, targets)
            if cache[key] is not None:
                return cache[key]
        child = ancestor
    return None


def _has_candidate_below(node: Node) -> bool:
    if node.converter is not None:
        return True
    return any(_has_candidate_below(c) for c in node.children)


def _kinds() -> str:
    return ", ".join(c.kind for c in reversed(registered_converters()))


def select(model, nodes, layers, min_params):
    """The `Selected` layers, and the candidates left out as unreachable.

    Returns ``(selected, skipped)`` where ``skipped`` lists
    ``(node, reason)`` for large-enough candidates the default selection
    could not reach.
    """
    candidates = [n for n in nodes if n.converter is not None]
    names = [n.path for n in candidates]

    def reachable_or_raise(node, key):
        # Every candidate can be reached: by rebuilding its holders, or by
        # substituting it in a copy of the model (see `_substitution`).
        return node

    def find(key):
        if isinstance(key, keras.layers.Layer):
            matches = [n for n in nodes if n.layer is key]
            if not matches:
                raise ValueError(
                    "Received an invalid value for `layers`: the layer "
                    f"'{key.name}' is not part of the model. "
                    f"Received: layers=[{key.name!r} ({type(key).__name__})]"
                )
        elif isinstance(key, str):
            matches = [n for n in nodes if n.path == key] or [
                n for n in nodes if n.layer.name == key
            ]
            if not matches:
                raise ValueError(
                    f"Received an invalid value for `layers`: the model has "
                    f"no layer named {key!r}. Its layers that can be "
                    f"tensorized are {names}. Received: layers={key!r}"
                )
        else:
            raise ValueError(
                "Received an invalid value for `layers`, expected layer "
                "names, layer objects, a predicate or a dict of per-layer "
                f"settings. Received: layers entry {key!r}"
            )
        node = matches[0]
        if node.converter is None:
            raise ValueError(
                f"Received an invalid value for `layers`: '{node.path}' is a "
                f"{type(node.layer).__name__}, which `tensorize` cannot "
                f"convert (it converts {_kinds()}). Its layers that can be "
                f"tensorized are {names}. Received: layers={key!r}"
            )
        return reachable_or_raise(node, key)

    skipped = []
    if layers is None:
        chosen = []
        for node in candidates:
            if node.size >= min_params:
                chosen.append((node, {}))
    else:
        if isinstance(layers, (str, keras.layers.Layer)):
            layers = [layers]
        if isinstance(layers, Mapping):
            chosen = [
                (find(key), check_settings(value, f"layer {key!r}"))
                for key, value in layers.items()
            ]
        elif callable(layers):
            chosen = [
                (reachable_or_raise(n, layers), {})
                for n in candidates
                if layers(n.layer)
            ]
        elif isinstance(layers, Sequence) or hasattr(layers, "__iter__"):
            chosen = [(find(key), {}) for key in layers]
        else:
            raise ValueError(
                "Received an invalid value for `layers`, expected layer "
                "names, layer objects, a predicate or a dict of per-layer "
                f"settings. Received: layers={layers!r}"
            )
    unique, seen = [], set()
    for node, settings in chosen:
        if id(node.layer) not in seen:
            seen.add(id(node.layer))
            unique.append(Selected(node, settings))
    return unique, skipped


def nothing_selected_message(model, nodes, layers, min_params, skipped):
    """The error for a selection that came out empty."""
    if layers is not None:
        return (
            "Received an invalid value for `layers`, expected at least one "
            "layer to replace; pass `layers=None` to select by `min_params`. "
            f"Received: layers={layers!r}"
        )
    sizes = {n.path: n.size for n in nodes if n.converter is not None}
    message = f"The model '{model.name}' has no layer to replace"
    if skipped:
        node, reason = skipped[0]
        return (
            f"{message}: `tensorize` cannot reach "
            f"{[n.path for n, _ in skipped]}: '{node.path}': {reason}."
        )
    if sizes:
        return (
            f"{message}: its kernels {sizes} (largest kernel of each layer) "
            f"are all smaller than min_params={min_params}. Lower "
            "`min_params` or name the layers with `layers=`."
        )
    return f"{message}: it holds no layer of a kind it converts ({_kinds()})."


def swap(container, attribute, index, new_sub):
    """Put ``new_sub`` where ``container`` holds a sublayer, untracked."""
    value = getattr(container, attribute)
    if index is None:
        current = value
        object.__setattr__(container, attribute, new_sub)
    else:
        current = value[index]
        if isinstance(value, list):
            list.__setitem__(value, index, new_sub)
        else:
            items = list(value)
            items[index] = new_sub
            object.__setattr__(container, attribute, type(value)(items))
    tracked = container._layers
    for i, layer in enumerate(tracked):
        if layer is current:
            tracked[i] = new_sub
            break
    else:
        tracked.append(new_sub)
