"""Saving layers that `tensorize` rebuilt around new sublayers.

A custom layer (or subclassed model) is rebuilt from its config, which
describes its original sublayers: saved as it is, it would load with a
`Dense` where the tensorized model holds a `TTDense`. So `tensorize` turns
each rebuilt holder into an instance of a subclass of its class that saves
its config together with the new sublayers, under the registered name
``keras_tt>TTRebuiltLayer``. Loading that name (with keras_tt imported)
rebuilds the layer from its own config, builds it when its ``build`` is its
own, and puts the saved sublayers back in their attributes. The loaded
layer is again an instance of (a subclass of) the user's class.

Keras keeps the name of each registered class in a private dictionary;
`_register_name` writes there (tested with Keras 3.10 to 3.15).
"""

from __future__ import annotations

import keras

from keras_tt.tensorize._references import follow_path
from keras_tt.tensorize._references import substitute

REGISTERED_NAME = "keras_tt>TTRebuiltLayer"
_HOLDER_CLASSES: dict[type, type] = {}


def _register_name(cls) -> None:
    from keras.src.saving import object_registration

    object_registration.GLOBAL_CUSTOM_NAMES[cls] = REGISTERED_NAME


def holder_class(cls: type) -> type:
    """The saving subclass of ``cls`` (``cls`` if it is one already)."""
    if getattr(cls, "_keras_tt_base", None) is not None:
        return cls
    if cls not in _HOLDER_CLASSES:

        def get_config(self):
            return _holder_get_config(self)

        # A class without its own `get_config` gets Keras's automatic one
        # from its constructor arguments only while `get_config` is marked
        # as the default.
        get_config._is_default = getattr(cls.get_config, "_is_default", False)
        holder = type(
            cls.__name__,
            (cls,),
            {
                "__module__": cls.__module__,
                "__doc__": cls.__doc__,
                "_keras_tt_base": cls,
                "get_config": get_config,
                "from_config": classmethod(_holder_from_config),
            },
        )
        _register_name(holder)
        _HOLDER_CLASSES[cls] = holder
    return _HOLDER_CLASSES[cls]


def base_class(cls: type) -> type:
    """The user's class behind a saving subclass."""
    return getattr(cls, "_keras_tt_base", None) or cls


def mark_rebuilt(layer, swapped) -> None:
    """Make ``layer`` save the sublayers at ``swapped`` (attribute, index)."""
    previous = list(getattr(layer, "_keras_tt_swapped", []))
    object.__setattr__(
        layer,
        "_keras_tt_swapped",
        previous + [s for s in swapped if s not in previous],
    )
    layer.__class__ = holder_class(type(layer))


def mark_substituted(model, steps) -> None:
    """Make ``model`` save the layer at ``steps`` (see `_substitution`)."""
    previous = list(getattr(model, "_keras_tt_substituted", []))
    if steps not in previous:
        previous.append(steps)
    object.__setattr__(model, "_keras_tt_substituted", previous)
    model.__class__ = holder_class(type(model))


def _sublayer(layer, attribute, index):
    value = getattr(layer, attribute)
    return value if index is None else value[index]


def _holder_get_config(self):
    base = self._keras_tt_base
    return {
        "layer": {
            "module": base.__module__,
            "class_name": base.__name__,
            "config": base.get_config(self),
            "registered_name": keras.saving.get_registered_name(base),
        },
        "build_config": self.get_build_config(),
        "sublayers": [
            [
                attribute,
                index,
                keras.saving.serialize_keras_object(
                    _sublayer(self, attribute, index)
                ),
            ]
            for attribute, index in getattr(self, "_keras_tt_swapped", [])
        ],
        "substitutions": [
            [steps, _saved_substitution(follow_path(self, steps))]
            for steps in getattr(self, "_keras_tt_substituted", [])
        ],
    }


def _holder_from_config(cls, config):
    from keras_tt.layers.tt_experts import apply_expert_specs
    from keras_tt.tensorize._selection import swap
    from keras_tt.tensorize._selection import uses_default_build

    if not (isinstance(config, dict) and "sublayers" in config):
        return super(cls, cls).from_config(config)
    base = base_class(cls)
    layer = base.from_config(config["layer"]["config"])
    layer.__class__ = holder_class(base)
    if (
        not layer.built
        and not uses_default_build(layer)
        and config.get("build_config")
    ):
        layer.build_from_config(config["build_config"])
    swapped = []
    for attribute, index, sub_config in config["sublayers"]:
        sub = keras.saving.deserialize_keras_object(sub_config)
        swap(layer, attribute, index, sub)
        swapped.append((attribute, index))
    object.__setattr__(layer, "_keras_tt_swapped", swapped)
    substituted = []
    for steps, sub_config in config.get("substitutions", []):
        target = follow_path(layer, steps)
        if isinstance(sub_config, dict) and sub_config.get("kind") == "experts":
            apply_expert_specs(target, sub_config.get("tt_experts"))
        else:
            check_layer_config(sub_config, steps)
            sub = keras.saving.deserialize_keras_object(sub_config)
            substitute(layer, target, sub)
        substituted.append(steps)
    object.__setattr__(layer, "_keras_tt_substituted", substituted)
    return layer


def _saved_substitution(layer):
    """A substituted TT layer's config, or an experts layer's change."""
    from keras_tt.layers.tt_experts import TTExpertsMixin

    if isinstance(layer, TTExpertsMixin):
        return {"kind": "experts", "tt_experts": layer.tt_expert_specs()}
    return keras.saving.serialize_keras_object(layer)


def check_layer_config(sub_config, steps) -> None:
    """A saved substitution must be a keras_tt layer."""
    registered = (
        sub_config.get("registered_name")
        if isinstance(sub_config, dict)
        else None
    )
    if not (isinstance(registered, str) and registered.startswith("keras_tt")):
        raise ValueError(
            f"The saved substitution at {steps!r} is not a keras_tt layer "
            f"(registered name {registered!r}); the file may be damaged "
            "or edited."
        )


# Packages whose classes a file may name and that are imported to find
# them, as `keras.saving.load_model` imports Keras's own modules.
_IMPORTABLE_PACKAGES = ("keras", "keras_hub", "keras_tt")


def _layer_class(layer):
    """The class a saved holder names: registered, or in keras_hub."""
    import importlib
    import sys

    found = keras.saving.get_registered_object(
        layer["registered_name"]
    ) or keras.saving.get_registered_object(layer["class_name"])
    if found is not None:
        return found
    module = layer.get("module") or ""
    package = module.split(".")[0]
    if package not in _IMPORTABLE_PACKAGES and module not in sys.modules:
        return None
    try:
        importlib.import_module(module)
    except ImportError:
        return None
    return keras.saving.get_registered_object(
        layer["registered_name"]
    ) or getattr(sys.modules[module], layer["class_name"], None)


class TTRebuiltLayer:
    """What ``keras_tt>TTRebuiltLayer`` loads: a rebuilt holder."""

    @classmethod
    def from_config(cls, config):
        layer_class = _layer_class(config["layer"])
        if layer_class is None:
            raise ValueError(
                "Cannot load a layer rebuilt by `keras_tt.tensorize`: its "
                f"class {config['layer']['class_name']!r} is not registered. "
                "Import the module that defines it before loading."
            )
        return holder_class(layer_class).from_config(config)


keras.saving.get_custom_objects()[REGISTERED_NAME] = TTRebuiltLayer
