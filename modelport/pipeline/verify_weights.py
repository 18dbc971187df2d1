"""Verifying weights-only formats without the model's code.

A state_dict or safetensors file cannot run on its own: it needs the architecture, and
``verify`` never imports model code. Instead every tensor is compared, exactly, with the
same tensor inside a self-contained artifact of the folder that was itself replayed
against the golden outputs: the ``.pt2`` program first, else the ONNX initializers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from modelport.errors import StageError, one_line
from modelport.exporters.runtime import require
from modelport.exporters.weights import WeightsExporter
from modelport.pipeline.records import Report
from modelport.signature import torch_to_numpy
from modelport.validators.candidate import not_run, summarise
from modelport.validators.compare import compare_array
from modelport.validators.records import CandidateResult, OutputCheck, Tolerance

__all__ = ["Anchor", "check_weights", "find_anchor"]

Anchor = tuple[str, dict[str, np.ndarray]]  # (format it came from, tensors by name)


def _from_pt2(path: Path) -> dict[str, np.ndarray]:
    torch = require("torch")
    from modelport.exporters.quiet import collect_warnings

    with collect_warnings(None):
        program = torch.export.load(str(path))
    return {k: torch_to_numpy(v) for k, v in program.state_dict.items()}


def _from_onnx(path: Path) -> dict[str, np.ndarray]:
    onnx = require("onnx")
    model = onnx.load(str(path))
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}


def find_anchor(root: Path, manifest: Report, usable: Callable[[str], bool]) -> Anchor | None:
    """Tensors of the first self-contained artifact whose candidate passed (``usable(format)``)."""
    for fmt, read in (("torch_export", _from_pt2), ("onnx", _from_onnx)):
        record = manifest.formats.get(fmt)
        if record is None or not usable(fmt):
            continue
        try:
            return fmt, read(root / record.files[0])
        except Exception:
            continue
    return None


def _missing(exporter: WeightsExporter, tol: Tolerance, reason: str) -> CandidateResult:
    return not_run(exporter.candidate, exporter.name, exporter.runtime, tol, "missing", reason)


def check_weights(
    exporter: WeightsExporter, root: Path, files: list[str], tol: Tolerance, anchor: Anchor | None
) -> CandidateResult:
    """Every tensor of the weights file equals the anchor's tensor of the same name, and the names match exactly."""
    if anchor is None:
        return not_run(
            exporter.candidate,
            exporter.name,
            exporter.runtime,
            tol,
            "load",
            "cannot be verified without the model's code: no verified torch_export or onnx artifact to compare "
            "its tensors with (include torch_export in --formats)",
        )
    try:
        state = exporter.read_state(root / files[0])
    except StageError as e:
        return not_run(exporter.candidate, exporter.name, exporter.runtime, tol, "load", str(e))
    source, reference = anchor
    # Graph exports of wrapped models name their tensors "model.<name>".
    prefixed = bool(reference) and all(k.startswith("model.") for k in reference)
    reference = {k.removeprefix("model.") if prefixed else k: v for k, v in reference.items()}
    extra = sorted(k for k in state if k not in reference)
    if extra:
        return _missing(
            exporter, tol, f"{files[0]} holds tensors the {source} artifact does not: {', '.join(extra[:5])}"
        )
    if source == "torch_export":  # the program holds exactly the model's state: the names must match exactly
        absent = sorted(k for k in reference if k not in state)
        if absent:
            return _missing(
                exporter, tol, f"{files[0]} lacks tensors the {source} artifact has: {', '.join(absent[:5])}"
            )
    # The tensor names were compared above: that is a check even when both hold no tensor.
    checks = [
        OutputCheck(
            input_set=f"weights vs {source}",
            output="(tensor names)",
            verdict="pass",
            set_kind="weights",
            elements=len(state),
            mismatches=0,
        )
    ]
    for key, value in state.items():
        try:
            candidate = torch_to_numpy(value)  # type: ignore[arg-type]
        except Exception as e:
            return not_run(exporter.candidate, exporter.name, exporter.runtime, tol, "load", f"{key}: {one_line(e)}")
        checks.append(
            compare_array(reference[key], candidate, tol, input_set=f"weights vs {source}", output=key).model_copy(
                update={"set_kind": "weights"}
            )
        )
    return summarise(exporter.candidate, exporter.name, exporter.runtime, tol, checks)
