"""Lazy public names for the ``ml`` subpackages (PEP 562).

Each subpackage's ``__init__`` lists its public names and the module that defines them. A name is imported on
first use, so ``import ml.patterns.heatmap`` does not pull in UMAP, and ``import ml.text`` does not load torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """``(__getattr__, __all__)`` for ``package``: ``names`` maps a public name to its module (relative)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__, sorted(names)
