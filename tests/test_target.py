"""--target onnxruntime==X.Y: files that load in that release, or a failure that names the nearest one that works."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import modelport
from modelport.exporters.targets import ORT_SUPPORT, oldest_release_for, parse_target


def _ir_and_opset(path: Path) -> tuple[int, int]:
    model = onnx.load(str(path))
    return model.ir_version, next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def test_export_for_onnxruntime_1_17_lowers_the_ir_version(tmp_path: Path) -> None:
    """The dynamo exporter writes IR 10; onnxruntime 1.17 reads IR 9 at most (its compatibility table)."""
    report = modelport.run(
        out=tmp_path / "t", formats="onnx,onnx_fp16,onnx_int8", samples=1, target="onnxruntime==1.17"
    )
    assert report.verdict == "pass"
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx"):
        ir, opset = _ir_and_opset(tmp_path / "t" / name)
        assert ir <= 9 and opset <= 20, name
    assert any("IR version lowered from 10 to 9" in n for n in report.formats["onnx"].notes)
    assert modelport.verify(tmp_path / "t", target="onnxruntime==1.17").verdict == "pass"


def test_an_older_target_gets_an_older_opset(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "t", formats="onnx", samples=1, target="onnxruntime==1.10")
    assert report.verdict == "pass"
    assert _ir_and_opset(tmp_path / "t" / "model.onnx") == (8, 15)


def test_an_unreachable_target_names_the_nearest_that_works(tmp_path: Path) -> None:
    report = modelport.run(
        "tests/zoo.py:transformer", out=tmp_path / "t", formats="onnx", samples=0, target="onnxruntime==1.6"
    )
    assert report.verdict == "fail"
    reason = report.candidates[0].reason or ""
    assert "reads opset 13 at most" in reason and "the nearest that works: --target onnxruntime==" in reason


def test_verify_against_a_target_names_the_files_that_would_not_load(mlp_folder: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify", str(mlp_folder), "--target", "onnxruntime==1.17")
    assert result.code == 1
    assert "load FAIL: model.onnx: IR version 10 > 9, the newest onnxruntime 1.17 reads" in result.out


def test_the_optimized_graph_is_only_for_the_release_that_made_it(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "t", formats="onnx,onnx_optimized", samples=0, target="onnxruntime==1.17")
    opt = next(c for c in report.candidates if c.format == "onnx_optimized")
    assert opt.status == "skipped" and "not made for onnxruntime 1.17" in (opt.reason or "")


def test_the_table_and_its_edges() -> None:
    assert ORT_SUPPORT[(1, 17)] == (20, 9)  # from onnxruntime's docs/reference/compatibility.md
    assert parse_target("onnxruntime==1.17.3").max_ir == 9
    assert parse_target("onnxruntime==1.40").assumed  # newer than the table: held to its newest row
    assert oldest_release_for(18, 8) == "onnxruntime==1.14"
    for bad in ("onnxruntime>=1.17", "ort==1.17", "onnxruntime==0.5"):
        with pytest.raises(modelport.UsageError):
            parse_target(bad)
