"""The registry of runtimes: what can execute a saved artifact, by the name ``--runtimes`` uses.

Each entry names the module and class that implement it (``modelport.runtimes.base.Runtime``),
imported on first use, so that listing runtimes imports nothing heavy. Adding a runtime is one
module plus one line here plus its case in ``tests/test_runtimes.py`` (a registered runtime
without one fails the suite).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelport.errors import UsageError

if TYPE_CHECKING:
    from modelport.runtimes.base import Runtime

__all__ = ["DEFAULT", "get", "names", "parse_runtimes"]

_REGISTRY: dict[str, str] = {
    "torch": "modelport.runtimes.torch_eager:TorchRuntime",
    "torchscript": "modelport.runtimes.torchscript:TorchScriptRuntime",
    "onnxruntime": "modelport.runtimes.onnxruntime:OnnxRuntime",
    "onnx_reference": "modelport.runtimes.onnx_reference:OnnxReferenceRuntime",
    "node": "modelport.runtimes.node:NodeRuntime",
    "browser": "modelport.runtimes.browser:BrowserRuntime",
    "libtorch": "modelport.runtimes.libtorch:LibtorchRuntime",
    "opencv": "modelport.runtimes.opencv:OpencvRuntime",
}
# The runtimes a plain run uses: the ones in the Python stack itself.
DEFAULT: tuple[str, ...] = ("torch", "torchscript", "onnxruntime")


def names() -> list[str]:
    return list(_REGISTRY)


@functools.cache
def get(name: str) -> Runtime:
    try:
        module, _, cls = _REGISTRY[name].partition(":")
    except KeyError:
        raise UsageError(f"unknown runtime {name!r}; choose from {', '.join(_REGISTRY)}") from None
    runtime: Runtime = getattr(importlib.import_module(module), cls)()
    return runtime


def parse_runtimes(value: str | Sequence[str] | None) -> list[str] | None:
    """``--runtimes LIST|all`` as a list of names (``all``: every registered one); None when not given."""
    if value is None:
        return None
    items = [p.strip() for part in ([value] if isinstance(value, str) else value) for p in part.split(",")]
    items = [p for p in items if p]
    if not items:
        raise UsageError("--runtimes is empty; give a comma-separated list of runtimes, or all")
    unknown = [p for p in items if p not in _REGISTRY and p != "all"]
    if unknown:
        raise UsageError(f"unknown runtime {', '.join(map(repr, unknown))}; choose from {', '.join(_REGISTRY)}, or all")
    if "all" in items:
        return names()
    return list(dict.fromkeys(items))
