"""torch.export's ``dynamic_shapes`` for a request: one ``Dim`` per label, shared across inputs."""

from __future__ import annotations

from typing import Any

import torch

from modelport.exporters.base import ExportRequest
from modelport.models.example import FlatModel

__all__ = ["dynamic_shapes"]


def dynamic_shapes(request: ExportRequest) -> tuple[Any, ...] | None:
    """None when nothing is dynamic; otherwise specs matching how ``graph_module`` takes its inputs."""
    dims: dict[str, Any] = {}
    specs = tuple(
        {axis: dims.setdefault(label, torch.export.Dim(label)) for axis, label in spec.dynamic_axes().items()} or None
        for spec in request.signature.inputs
    )
    if all(s is None for s in specs):
        return None
    # FlatModel.forward(*args): torch.export wants the specs of the varargs as one tuple.
    return (specs,) if isinstance(request.graph_module, FlatModel) else specs
