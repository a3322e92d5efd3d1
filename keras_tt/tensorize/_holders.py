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
            for attribute, index in self._keras_tt_swapped
        ],
    }


def _holder_from_config(cls, config):
    from keras_tt.tensorize._selection import swap
    from keras_tt.tensorize._selection import uses_default_build

    if not (isinstance(config, dict) and "sublayers" in config):
        return super(cls, cls).from_config(config)
    base = base_class(cls)
    layer = base.from_config(config["layer"]["config"])
    layer.__class__ = holder_class(base)
    if not uses_default_build(layer) and config.get("build_config"):
        layer.build_from_config(config["build_config"])
    swapped = []
    for attribute, index, sub_config in config["sublayers"]:
        sub = keras.saving.deserialize_keras_object(sub_config)
        swap(layer, attribute, index, sub)
        swapped.append((attribute, index))
    object.__setattr__(layer, "_keras_tt_swapped", swapped)
    return layer


class TTRebuiltLayer:
    """What ``keras_tt>TTRebuiltLayer`` loads: a rebuilt holder."""

    @classmethod
    def from_config(cls, config):
        layer_class = keras.saving.get_registered_object(
            config["layer"]["registered_name"]
        ) or keras.saving.get_registered_object(config["layer"]["class_name"])
        if layer_class is None:
            raise ValueError(
                "Cannot load a layer rebuilt by `keras_tt.tensorize`: its "
                f"class {config['layer']['class_name']!r} is not registered. "
                "Import the module that defines it before loading."
            )
        return holder_class(layer_class).from_config(config)


keras.saving.get_custom_objects()[REGISTERED_NAME] = TTRebuiltLayer
