"""Every ONNX variant over protobuf's limit keeps its tensors in one NAME.data file beside it.

The real proof is a model over 2 GiB (the `big` tier and benchmarks/bench_big.py); here the
threshold is lowered so that the built-in MLP takes the same code path in seconds: which files
are written, how they are recorded, and that a moved folder still verifies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest

import modelport
from modelport.exporters import onnx_save
from modelport.pipeline.manifest import read_manifest

ONNX_FORMATS = ("onnx", "onnx_optimized", "onnx_fp16", "onnx_int8")


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int) -> Path:
    monkeypatch.setattr(onnx_save, "EXTERNAL_DATA_THRESHOLD", threshold)
    out = tmp_path / "mlp"
    report = modelport.run(out=out, formats=list(ONNX_FORMATS), samples=1)
    assert report.verdict == "pass", [c.reason for c in report.candidates if c.verdict != "pass"]
    return out


def _external_locations(path: Path) -> set[str]:
    model = onnx.load(str(path), load_external_data=False)
    return {
        entry.value
        for t in model.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
        for entry in t.external_data
        if entry.key == "location"
    }


def test_every_onnx_variant_writes_one_data_file_above_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(tmp_path, monkeypatch, threshold=1000)
    manifest = read_manifest(out)
    listed = {a.path: a for a in manifest.artifacts}
    for name in ONNX_FORMATS:
        record = manifest.formats[name]
        graph, data = record.files
        assert data == f"{graph}.data" and record.roles[data] == "external-data"
        assert _external_locations(out / graph) == {data}  # every tensor in its own data file, none elsewhere
        assert listed[data].role == "external-data" and listed[data].bytes == (out / data).stat().st_size
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    assert modelport.verify(moved).verdict == "pass"


def test_a_quantized_graph_small_enough_is_one_file_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The float32 tensors (about 31 KB) pass the threshold; the float16 (16 KB) and int8 (9 KB) ones do not.
    out = _run(tmp_path, monkeypatch, threshold=20_000)
    manifest = read_manifest(out)
    assert len(manifest.formats["onnx"].files) == 2
    for name in ("onnx_fp16", "onnx_int8"):
        assert manifest.formats[name].files == [manifest.formats[name].files[0]]
        assert not _external_locations(out / manifest.formats[name].files[0])
    assert not list(out.glob(".*.part"))  # no scratch folder is left behind
