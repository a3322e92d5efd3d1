"""Initialisers that give the *full* TT-matrix a chosen variance.

Drawing every core from a Glorot distribution computed on the core's own
shape gives a full matrix whose variance shrinks or explodes with the number
of cores. Instead, `TTVarianceScaling` targets the variance of the dense
matrix ``W`` that the cores stand for.

The arithmetic. With independent zero-mean core entries of variance
``sigma_k^2``, an entry of ``W`` is a sum over the ``R = r_1 * ... * r_{d-1}``
paths through the inner bonds of products of ``d`` core entries, so

    Var(W[i, j]) = R * sigma_1^2 * ... * sigma_d^2.

Giving every core the same ``sigma^2 = (v / R) ** (1 / d)`` makes
``Var(W[i, j]) = v``, where ``v`` is Keras's variance-scaling target:
``scale / fan_in``, ``scale / fan_out`` or ``scale / ((fan_in + fan_out) / 2)``
with ``fan_in`` the layer's input width and ``fan_out`` its ``units``.
Glorot is ``scale=1, mode="fan_avg"``; He is ``scale=2, mode="fan_in"``.
"""

from __future__ import annotations

import math

import keras

_TRUNCATED_NORMAL_STDDEV_CORRECTION = 0.87962566103423978


@keras.saving.register_keras_serializable(package="keras_tt")
class TTVarianceScaling(keras.initializers.VarianceScaling):
    """Variance scaling for the full matrix of a TT layer.

    Takes the arguments of `keras.initializers.VarianceScaling`; the fans are
    those of the dense matrix the TT-cores stand for, and each core is drawn
    so that the full matrix has variance ``scale / fan`` (see the module
    docstring for the derivation).

    `TTDense` applies Keras's own variance-scaling initialisers
    (``"glorot_uniform"``, ``"he_normal"``, `keras.initializers.GlorotNormal`
    and so on) the same way, so ``kernel_initializer="he_normal"`` means He
    variance for the full matrix.

    Args:
        scale: positive float, the numerator of the target variance.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"uniform"``, ``"truncated_normal"`` or
            ``"untruncated_normal"``, the distribution of each core entry.
        seed: an integer or a `keras.random.SeedGenerator`. With an integer,
            core ``k`` uses ``seed + k``.

    Example:

    >>> init = TTVarianceScaling(scale=2.0, mode="fan_in", seed=1)
    >>> ranks = (1, 4, 4, 1)
    >>> round(init.core_stddev(fan_in=64, fan_out=64, ranks=ranks), 4)
    0.3536
    """

    def __init__(
        self, scale=1.0, mode="fan_avg", distribution="uniform", seed=None
    ):
        super().__init__(
            scale=scale, mode=mode, distribution=distribution, seed=seed
        )

    def core_stddev(self, fan_in: int, fan_out: int, ranks) -> float:
        """Standard deviation of every core entry for these fans and ranks."""
        fan = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "fan_avg": (fan_in + fan_out) / 2.0,
        }[self.mode]
        target = self.scale / max(1.0, fan)
        num_cores = len(ranks) - 1
        paths = math.prod(ranks[1:-1])
        return (target / paths) ** (0.5 / num_cores)

    def core_initializer(self, core_index: int, fan_in, fan_out, ranks):
        """A callable ``(shape, dtype) -> tensor`` for core ``core_index``."""
        stddev = self.core_stddev(fan_in, fan_out, ranks)
        seed = self.seed
        if isinstance(seed, int):
            seed = seed + core_index

        def initialize(shape, dtype=None):
            if self.distribution == "truncated_normal":
                return keras.random.truncated_normal(
                    shape,
                    stddev=stddev / _TRUNCATED_NORMAL_STDDEV_CORRECTION,
                    dtype=dtype,
                    seed=seed,
                )
            if self.distribution == "untruncated_normal":
                return keras.random.normal(
                    shape, stddev=stddev, dtype=dtype, seed=seed
                )
            limit = math.sqrt(3.0) * stddev
            return keras.random.uniform(
                shape, minval=-limit, maxval=limit, dtype=dtype, seed=seed
            )

        return initialize

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 1:
            raise ValueError(
                "TTVarianceScaling initialises TT-cores through "
                "`core_initializer`, which knows all the ranks; called alone "
                "it only handles a single core of shape (1, n, m, 1). "
                f"Received: shape={shape}"
            )
        return self.core_initializer(0, shape[1], shape[2], (1, 1))(
            shape, dtype
        )

    def get_config(self):
        config = super().get_config()
        config.pop("input_axes", None)
        config.pop("output_axes", None)
        return config


def as_tt_initializer(initializer):
    """The `TTVarianceScaling` form of a Keras variance-scaling initialiser.

    Returns ``None`` for any other initialiser, which `TTDense` then applies
    to each core as it is.
    """
    if isinstance(initializer, TTVarianceScaling):
        return initializer
    if isinstance(initializer, keras.initializers.VarianceScaling):
        return TTVarianceScaling(
            scale=initializer.scale,
            mode=initializer.mode,
            distribution=initializer.distribution,
            seed=initializer.seed,
        )
    return None
