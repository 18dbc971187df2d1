"""The chapter's tensor I/O: a tensor, a list and a dict of tensors through torch.save / torch.load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modelport.errors import StageError
from modelport.fsutil import atomic_write
from modelport.loaders import load_torch

__all__ = ["first_difference", "tensor_round_trips"]


def first_difference(saved: Any, loaded: Any, where: str = "") -> str | None:
    """Describe the first way ``loaded`` differs from ``saved`` (type, dtype, shape, values), or None."""
    if type(saved) is not type(loaded):
        return f"{where or 'value'}: saved a {type(saved).__name__}, loaded a {type(loaded).__name__}"
    if isinstance(saved, torch.Tensor):
        if saved.dtype != loaded.dtype:
            return f"{where or 'tensor'}: dtype {saved.dtype} became {loaded.dtype}"
        if saved.shape != loaded.shape:
            return f"{where or 'tensor'}: shape {list(saved.shape)} became {list(loaded.shape)}"
        if not torch.equal(saved, loaded):
            return f"{where or 'tensor'}: values changed"
        return None
    if isinstance(saved, list | tuple):
        if len(saved) != len(loaded):
            return f"{where or 'list'}: {len(saved)} items became {len(loaded)}"
        for i, (a, b) in enumerate(zip(saved, loaded, strict=True)):
            if (diff := first_difference(a, b, f"{where}[{i}]")) is not None:
                return diff
        return None
    if isinstance(saved, dict):
        if list(saved) != list(loaded):
            return f"{where or 'dict'}: keys {list(saved)} became {list(loaded)}"
        for key in saved:
            if (diff := first_difference(saved[key], loaded[key], f"{where}[{key!r}]")) is not None:
                return diff
        return None
    return None if saved == loaded else f"{where or 'value'}: changed"


def tensor_round_trips(folder: Path) -> dict[str, dict[str, Any]]:
    """Save and load each of the chapter's objects; raise naming the first that does not come back exact."""
    x = torch.arange(4)
    y = torch.zeros(4)
    cases: dict[str, Any] = {"tensor": x, "list": [x, y], "dict": {"x": x, "y": y}}
    results: dict[str, dict[str, Any]] = {}
    for name, obj in cases.items():
        path = folder / f"{name}.pt"
        with atomic_write(path) as fh:
            torch.save(obj, fh)
        loaded = load_torch(path, map_location=None)
        diff = first_difference(obj, loaded)
        if diff is not None:
            raise StageError(f"{name} round trip is not exact: {diff}")
        results[name] = {"bytes": path.stat().st_size, "exact": True}
    return results
