"""One ``torch.export`` capture for ``torch_export`` and ``onnx``: the shape probe's program, when it is the same.

``torch.onnx.export(dynamo=True)`` accepts an ExportedProgram and then skips its own capture, the
costliest step after building its registry. Its own capture differs from the probe's in two settings
(torch 2.13, ``torch/onnx/_internal/exporter/_capture_strategies.py``):
``prefer_deferred_runtime_asserts_over_guards=True``, which turns each guard the trace adds (two
inputs sharing a label, an RNN's sequence bound) into ``_assert_scalar`` nodes, and
``backed_size_oblivious=True``, which matters only for size checks the probe would have guarded on.
A program whose trace added no guard, no deferred assertion and no data-dependent size is therefore
the graph torch.onnx would capture itself, and the ONNX file is byte for byte the same; any other
program (or a torch whose shape environment looks otherwise) is not shared, and torch.onnx captures
again as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.exporters.base import ExportRequest
from modelport.exporters.dims import dynamic_shapes

if TYPE_CHECKING:  # annotations only: verify's ONNX replay imports onnx_format, and this, without torch
    import torch

__all__ = ["onnx_chatter", "shared_program"]


def onnx_chatter(text: str) -> bool:
    """Warnings the ONNX exporter's note collector drops (``onnx_format._quiet_exporter``), by their note text."""
    return "LeafSpec" in text or "will not be used, since it shares" in text


def _shape_env(program: torch.export.ExportedProgram) -> Any:
    for node in program.graph.nodes:
        fake_mode = getattr(node.meta.get("val"), "fake_mode", None)
        if fake_mode is not None and getattr(fake_mode, "shape_env", None) is not None:
            return fake_mode.shape_env
    return None


def _traced_plainly(program: torch.export.ExportedProgram) -> bool:
    """No guard, deferred assertion or data-dependent size in the trace (private torch state, checked on 2.13)."""
    env = _shape_env(program)
    if env is None:
        return False
    guards = getattr(env, "guards", None)
    deferred = getattr(env, "deferred_runtime_asserts", None)
    unbacked = (getattr(env, "unbacked_symint_counter", None), getattr(env, "unbacked_symfloat_counter", None))
    if guards is None or deferred is None or unbacked != (0, 0):
        return False
    return not guards and not any(deferred.values())


def shared_program(request: ExportRequest) -> torch.export.ExportedProgram | None:
    """The pipeline's shape-probe program when torch.onnx would capture the same graph; None to let it capture.

    Never probes itself: an exporter called alone (no probe) keeps torch.onnx's own capture.
    """
    probe = request.probe
    if probe is None or probe.program is None:
        return None
    # torch.onnx installs its RNN while_loop decompositions only with dynamic shapes; the probe always does.
    if dynamic_shapes(request) is None:
        return None
    # The notes must be what torch.onnx's own capture would have added: share only a silent trace.
    if any(not onnx_chatter(w) for w in probe.warnings):
        return None
    return probe.program if _traced_plainly(probe.program) else None
