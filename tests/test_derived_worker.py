"""Big models' derived ONNX formats are converted in a child process: the same files, the same records.

The limit is lowered so that the built-in MLP takes the child's path; its files must be byte for byte
those of the in-process conversion, and a conversion that fails in the child fails the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import modelport
from modelport.errors import ExportError
from modelport.exporters import derived_worker
from modelport.exporters.base import ExportOptions

DERIVED = ["onnx_optimized", "onnx_fp16", "onnx_int8"]


def _digests(folder: Path, report: modelport.Report) -> dict[str, str]:
    return {
        f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for name in DERIVED for f in report.formats[name].files
    }


def test_child_conversions_match_in_process_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = modelport.run(out=tmp_path / "here", formats=["safetensors", "onnx", *DERIVED], samples=1)
    monkeypatch.setattr(derived_worker, "CHILD_EXPORT_LIMIT", 0)
    child = modelport.run(out=tmp_path / "child", formats=["safetensors", "onnx", *DERIVED], samples=1)
    assert here.verdict == child.verdict == "pass"
    for name in DERIVED:
        stage = next(s for s in child.stages if s.name == name)
        assert stage.status == "ok" and any("in its own process" in n for n in stage.notes), stage
        assert not any("in its own process" in n for n in next(s for s in here.stages if s.name == name).notes)
        assert child.formats[name].details == here.formats[name].details
    assert _digests(tmp_path / "child", child) == _digests(tmp_path / "here", here)
    # The original's weights were set aside during the conversions and read back: the same outputs, bit for bit.
    assert any("set aside" in n for n in next(s for s in child.stages if s.name == "onnx_optimized").notes)
    for name in ("outputs.npz", "outputs64.npz"):
        assert (tmp_path / "child" / "golden" / name).read_bytes() == (tmp_path / "here" / "golden" / name).read_bytes()


def test_a_failure_in_the_child_is_an_export_error(tmp_path: Path) -> None:
    tmp_path.joinpath("model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ExportError, match="float16 conversion failed"):
        derived_worker.export_in_child("onnx_fp16", tmp_path, ExportOptions(), '{"inputs": [], "outputs": []}')


def test_int8_is_skipped_with_the_figures_where_its_quantizer_cannot_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime's quantizer takes about 6x the weights: a 6.4 GB model's was killed for memory at 24.9 GB.
    A machine that cannot hold it gets a skip naming the figures, not a run killed by the kernel."""
    from modelport.exporters import onnx_int8

    monkeypatch.setattr(onnx_int8, "INT8_MEMORY_FACTOR", 1e9)  # the MLP's 31 KB would need 29 TB
    report = modelport.run(out=tmp_path / "mlp", formats="onnx,onnx_int8", samples=1)
    assert report.verdict == "pass"
    stage = next(s for s in report.stages if s.name == "onnx_int8")
    assert stage.status == "skipped" and "int8 quantizer holds about 1e+09x the float32 weights" in (stage.reason or "")
    assert "more than this machine has" in (stage.reason or "") and "onnx_int8" not in report.formats


def test_an_export_killed_mid_write_leaves_no_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A conversion process killed for memory left its scratch folder (.model.int8.onnx.XXXX.part) in the
    artifact folder; a failed export now takes back every file and folder it added."""
    from modelport import exporters
    from modelport.format_record import FormatRecord

    def killed(request: object) -> FormatRecord:
        scratch = request.folder / ".model.int8.onnx.abc.part"  # type: ignore[attr-defined]
        scratch.mkdir()
        (scratch / "model.int8.onnx").write_bytes(b"half")
        raise ExportError("the onnx_int8 export process was killed by signal 9 (out of memory?)")

    monkeypatch.setattr(exporters.get("onnx_int8"), "export", killed)
    report = modelport.run(out=tmp_path / "mlp", formats="onnx,onnx_int8", samples=1)
    assert next(s for s in report.stages if s.name == "onnx_int8").status == "failed"
    assert not [p for p in (tmp_path / "mlp").iterdir() if p.name.startswith(".model.int8")]
