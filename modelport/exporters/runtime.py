"""Importing a runtime only when a format needs it, so that a missing one fails that format alone."""

from __future__ import annotations

import importlib
from types import ModuleType

from modelport.errors import StageError

__all__ = ["require"]


def require(module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or fail the current stage saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        name = package or module.split(".")[0]
        raise StageError(f"{name} is not installed or does not import ({e}); install it with pip install {name}") from e
