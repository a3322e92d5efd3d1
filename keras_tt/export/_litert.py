"""Lazy access to the LiteRT runtime, an optional dependency."""

from __future__ import annotations

import importlib


def import_litert(module: str, purpose: str):
    """Import ``ai_edge_litert.<module>``, or say how to install it."""
    try:
        return importlib.import_module(f"ai_edge_litert.{module}")
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            f"{purpose} needs the LiteRT runtime: `pip install ai-edge-litert` "
            "(or `pip install keras-tt[export]`)."
        ) from error
