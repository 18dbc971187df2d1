"""One torch.export capture for torch_export and onnx: the ONNX file is the same, byte for byte, either way.

The onnx exporter takes the shape probe's program only when torch.onnx's own capture would trace the
same graph (``modelport/exporters/capture.py``); otherwise it lets torch.onnx capture again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelport.exporters import ExportRequest
from modelport.exporters.capture import shared_program
from modelport.exporters.onnx_format import OnnxExporter
from modelport.models import resolve_model
from modelport.pipeline.build import build_model, probe_built, widen_for_export

# (model spec, whether the probe's program is shared): a single input with its own batch axis traces no
# guard; two inputs sharing the batch label add an equality guard, which torch.onnx's capture turns into
# an assertion node (other value names in the graph), so that program is not shared.
CASES = [("mlp", True), ("tests/zoo.py:cnn", True), ("tests/edge_models.py:two_tables", False)]


def _request(spec: str, folder: Path, probed: bool) -> ExportRequest:
    built = build_model(resolve_model(spec), seed=0)
    if probed:
        probe_built(built, ["torch_export", "onnx"], {})
    flat = built.flat if built.flat is not built.model else None
    inputs = widen_for_export(built.inputs, built.signature)
    return ExportRequest(built.model, inputs, built.signature, folder, flat=flat, probe=built.probe)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(("spec", "shared"), CASES)
def test_onnx_from_the_probes_capture_is_the_file_torch_onnx_would_write(
    spec: str, shared: bool, tmp_path: Path
) -> None:
    probed = _request(spec, tmp_path / "probed", probed=True)
    assert (shared_program(probed) is not None) == shared
    own = _request(spec, tmp_path / "own", probed=False)
    assert shared_program(own) is None  # no probe: torch.onnx captures itself
    records = []
    for request in (probed, own):
        request.folder.mkdir()
        records.append(OnnxExporter().export(request))
    assert _digest(probed.folder) == _digest(own.folder)
    assert records[0] == records[1]


def test_the_shared_program_is_left_as_torch_export_saves_it(tmp_path: Path) -> None:
    request = _request("mlp", tmp_path, probed=True)
    program = shared_program(request)
    assert program is not None
    before = (str(program.graph), str(program.graph_signature), program.range_constraints)
    OnnxExporter().export(request)
    assert (str(program.graph), str(program.graph_signature), program.range_constraints) == before
