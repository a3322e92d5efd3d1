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

Walking the references and the paths live in
`keras_tt.tensorize._references`.
"""

from __future__ import annotations

import warnings

from keras_tt.layers._tt_base import assign_copy
from keras_tt.tensorize._cloning import Cloner
from keras_tt.tensorize._cloning import _build_model
from keras_tt.tensorize._holders import mark_substituted
from keras_tt.tensorize._references import layer_path
from keras_tt.tensorize._references import substitute
from keras_tt.tensorize._selection import build_tree
from keras_tt.tensorize._selection import is_graph_model
from keras_tt.tensorize._selection import unreachable_reason

# ------------------------------------------------------------------ route


def needs_substitution(model, selected) -> bool:
    """Whether the pass must copy ``model`` and substitute its layers.

    True when the model's class is a subclass of a Functional model that is
    not Keras's own (cloning the graph would lose it), when a converter
    changes its layer in place, or when a selected layer sits in a holder
    that cannot be rebuilt from its config.
    """
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
