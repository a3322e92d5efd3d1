"""Calibration and validation data: one array per model input."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def calibration_batches(data, batch_size=None) -> list[list[np.ndarray]]:
    """Representative data as a list of batches, each a list of float arrays.

    With a fixed ``batch_size`` the samples are regrouped into batches of
    exactly that size (the last one completed by repeating samples).
    """
    if callable(data) and not isinstance(data, np.ndarray):
        data = data()
    if isinstance(data, np.ndarray):
        data = [data[i : i + 1] for i in range(len(data))]
    if not isinstance(data, Iterable):
        raise ValueError(
            "Received an invalid value for `representative_data`, expected a "
            "NumPy array of sample inputs or an iterable of batches. "
            f"Received: representative_data of type {type(data).__name__}"
        )
    batches = []
    for batch in data:
        if isinstance(batch, dict):
            batch = list(batch.values())
        parts = list(batch) if isinstance(batch, (list, tuple)) else [batch]
        batches.append([np.asarray(p, dtype=np.float32) for p in parts])
    if not batches:
        raise ValueError(
            "Received an invalid value for `representative_data`, expected at "
            "least one batch. Received: an empty iterable"
        )
    if batch_size and any(b[0].shape[0] != batch_size for b in batches):
        merged = [np.concatenate(parts) for parts in zip(*batches)]
        n = merged[0].shape[0]
        count = -(-n // batch_size)
        batches = [
            [
                np.resize(
                    np.roll(a, -start, axis=0), (batch_size,) + a.shape[1:]
                )
                for a in merged
            ]
            for start in range(0, count * batch_size, batch_size)
        ]
    return batches
