"""Localise one failing candidate: which artifact to open, through what, and the record of what was found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import one_line, raise_if_interrupted
from modelport.localize.engine import Probe, judge_trace
from modelport.localize.records import Localization
from modelport.localize.reference import trace_reference
from modelport.validators.records import CandidateResult, Tolerance

if TYPE_CHECKING:
    import torch

    from modelport.runtimes.base import Artifact
    from modelport.signature import Signature

__all__ = ["first_failing_set", "localizable", "localize_candidate"]

# Failures of what a candidate computed; a file that did not load or run has no values to compare.
_COMPUTED = {"accuracy", "shape", "dtype"}


def localizable(result: CandidateResult) -> bool:
    computed = any(c.category in _COMPUTED for c in result.failures())
    return result.verdict == "fail" and result.status == "ok" and computed


def first_failing_set(result: CandidateResult) -> str | None:
    return next((c.input_set for c in result.failures() if c.category in _COMPUTED), None)


def _open_probe(
    artifact: Artifact, runtime: str, trace: Any, inputs: Mapping[str, np.ndarray], tol: Tolerance
) -> tuple[Probe, list[str]]:
    from modelport.localize.onnx_side import OnnxProbe
    from modelport.localize.torch_side import TorchProbe

    notes = []
    if artifact.kind == "onnx":
        if runtime != "onnxruntime":
            notes.append(f"{runtime} ran the file; localised through onnxruntime on the same file")
        return OnnxProbe(artifact.path, artifact.signature, trace, inputs, tol), notes
    if artifact.kind == "torchscript":
        from modelport.loaders import load_torchscript
        from modelport.runtimes.torchscript import _keyword

        if runtime != "torchscript":
            notes.append(f"{runtime} ran the file; localised through torch.jit.load on the same file")
        module = load_torchscript(artifact.path)
        prefix = trace.prefix_in({n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()})
        return TorchProbe(
            module, artifact.signature, inputs, tol, f"torch.jit.load on {artifact.files[0]}", hooks=False,
            keyword=_keyword(artifact), prefix=prefix,
        ), notes  # fmt: skip
    if artifact.kind == "pt2":
        import torch

        from modelport.loaders import load_exported_program

        program = load_exported_program(artifact.path)
        unflat = torch.export.unflatten(program)
        prefix = trace.prefix_in(set(program.state_dict) | set(program.constants))
        via = f"torch.export.unflatten on {artifact.files[0]}"
        return TorchProbe(unflat, artifact.signature, inputs, tol, via, hooks=True, keyword=False, prefix=prefix), notes
    from modelport.runtimes.torch_eager import weights_clone

    via = f"{artifact.files[0]} loaded into the model's code"
    return TorchProbe(weights_clone(artifact), artifact.signature, inputs, tol, via, hooks=True), notes


def localize_candidate(
    model: torch.nn.Module,
    signature: Signature,
    artifact: Artifact,
    result: CandidateResult,
    input_set: str,
    inputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
) -> Localization:
    """Where ``result``'s artifact first diverges from ``model`` on one input set; never raises for the
    artifact's sake: what went wrong is the record's ``error`` status."""
    import time

    start = time.perf_counter()
    tol = result.tolerance
    try:
        trace = trace_reference(model, signature, inputs)
        probe, notes = _open_probe(artifact, result.runtime, trace, inputs, tol)
        try:
            failed = any(c.input_set == input_set for c in result.failures())
            found = judge_trace(result.candidate, input_set, trace, probe, reference, tol, failed=failed)
        finally:
            probe.close()
    except Exception as e:
        raise_if_interrupted(e)
        return Localization(
            candidate=result.candidate,
            input_set=input_set,
            status="error",
            via=artifact.files[0],
            summary=f"localisation failed: {type(e).__name__}: {one_line(e)}",
            tolerance=tol.describe(),
            seconds=round(time.perf_counter() - start, 6),
        )
    return found.model_copy(update={"notes": [*notes, *found.notes], "seconds": round(time.perf_counter() - start, 6)})
