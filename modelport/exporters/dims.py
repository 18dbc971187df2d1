"""torch.export's ``dynamic_shapes`` for a request: one ``Dim`` per label, with its range, shared across inputs."""

from __future__ import annotations

from typing import Any

from modelport.exporters.base import ExportRequest
from modelport.exporters.shapes import ShapeProbe, dynamic_shapes_for, probe_shapes

__all__ = ["dynamic_shapes", "request_probe"]


def dynamic_shapes(request: ExportRequest) -> tuple[Any, ...] | None:
    """None when nothing is dynamic; otherwise specs matching how ``graph_module`` takes its inputs.

    The ranges are the signature's dims: declared with ``--dynamic``, or narrowed by the shape probe.
    """
    return dynamic_shapes_for(request.graph_module, request.signature)


def request_probe(request: ExportRequest) -> ShapeProbe:
    """The pipeline's shape probe; an exporter called alone (or on a run that skipped it) probes itself."""
    if request.probe is not None:
        return request.probe
    sizes = {
        label: int(request.inputs[s.name].shape[axis])
        for s in request.signature.inputs
        for axis, label in s.dynamic_axes().items()
    }
    return probe_shapes(request.graph_module, request.inputs, request.signature, {}, sizes)
