"""Real models of every kind, end to end through every format (tests/zoo.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from conftest import ALL_FORMATS

import modelport

ALL = ALL_FORMATS
# Formats a model cannot have, and why (the run must say so and still pass).
SKIPS = {
    "double": {"onnx_fp16": "float32 model", "onnx_int8": "float32 model"},
    "half": {"onnx_fp16": "float32 model", "onnx_int8": "float32 model"},
    "bfloat16": {
        "onnx": "bfloat16 kernels",
        "onnx_optimized": "bfloat16 kernels",
        "onnx_fp16": "float32 model",
        "onnx_int8": "float32 model",
    },
}


def _run(name: str, out: Path, *extra: str, formats: str = "all") -> modelport.Report:
    return modelport.run(f"tests/zoo.py:{name}", out=out, formats=formats, samples=1, **_kw(extra))


def _kw(extra: tuple[str, ...]) -> dict[str, Any]:
    return dict(zip(extra[::2], extra[1::2], strict=True))


@pytest.mark.parametrize(
    "name", ["cnn", "transformer", "embedding_bag", "multi_input", "tied", "dropout_bn", "double", "half", "bfloat16"]
)
def test_every_model_kind_through_every_format(name: str, tmp_path: Path) -> None:
    report = _run(name, tmp_path / name)
    assert report.verdict == "pass", [
        (c.candidate, c.reason, [f.message for f in c.failures()]) for c in report.candidates
    ]
    by_format = {c.format: c for c in report.candidates}
    assert list(by_format) == ALL
    for fmt, cand in by_format.items():
        why = SKIPS.get(name, {}).get(fmt)
        if why:
            assert cand.status == "skipped" and why in (cand.reason or ""), (fmt, cand.reason)
        else:
            assert cand.status == "ok" and cand.checks, fmt
    assert modelport.verify(tmp_path / name).verdict == "pass"


def test_nested_outputs_get_readable_names_everywhere(tmp_path: Path) -> None:
    report = _run("multi_input", tmp_path / "m", formats="onnx")
    names = ["score", "embedding", "parts.0", "parts.1"]
    assert report.signature.output_names == names
    assert report.signature.input_names == ["image", "features"]
    graph = onnx.load(str(tmp_path / "m" / "model.onnx")).graph
    assert [o.name for o in graph.output] == names
    assert sorted(np.load(tmp_path / "m" / "golden" / "outputs.npz").files) == sorted(names)
    assert {c.output for c in report.candidates[0].checks} == set(names)


def test_keyword_inputs_and_a_declared_sequence_axis(tmp_path: Path) -> None:
    report = modelport.run(
        "tests/zoo.py:transformer",
        out=tmp_path / "t",
        formats="torch_export,onnx",
        dynamic="input_ids:1=seq,attention_mask:1=seq",
        samples=1,
    )
    assert report.verdict == "pass"
    assert report.signature.inputs[0].shape == ["batch", "seq"]
    assert report.signature.outputs[1].shape == ["batch", "seq", 32]
    assert {"seq_1", "seq_16", "batch_1", "batch_64"} <= {g.name for g in report.golden.sets}  # type: ignore[union-attr]
    dims = onnx.load(str(tmp_path / "t" / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "seq"]


def test_trace_specialisation_is_caught_and_explained(tmp_path: Path) -> None:
    """A data-dependent branch: tracing bakes in one side, and some sweep input takes the other."""
    report = _run("data_dependent", tmp_path / "dd", formats="torchscript,torch_export,onnx")
    assert report.verdict == "fail"
    ts = next(c for c in report.candidates if c.format == "torchscript")
    assert ts.status == "ok" and ts.verdict == "fail"
    assert all(c.verdict == "pass" for c in ts.checks if c.input_set == "example")
    assert "specialised on the example" in (ts.reason or "")
    assert "TracerWarning" in (ts.reason or "")
    for fmt in ("torch_export", "onnx"):
        cand = next(c for c in report.candidates if c.format == fmt)
        assert cand.category == "export" and "data-dependent" in (cand.reason or "")


def test_training_mode_is_switched_off_and_said(tmp_path: Path) -> None:
    report = _run("dropout_bn", tmp_path / "d", formats="state_dict,onnx")
    build = next(s for s in report.stages if s.name == "build")
    assert any("training mode" in n and "Dropout" in n for n in build.notes)
    assert report.verdict == "pass"


def test_int8_is_really_quantized_and_small(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "mlp", formats="all")
    assert report.verdict == "pass"
    details = report.formats["onnx_int8"].details
    assert details["size_vs_fp32"] <= 0.40  # type: ignore[operator]
    ops = {n.op_type for n in onnx.load(str(tmp_path / "mlp" / "model.int8.onnx")).graph.node}
    assert "MatMulInteger" in ops and "Gemm" not in ops
    int8 = next(c for c in report.candidates if c.format == "onnx_int8")
    assert int8.min_cosine is not None and int8.min_cosine > 0.99
    assert int8.min_top1_agreement is not None
    fp16 = next(c for c in report.candidates if c.format == "onnx_fp16")
    assert report.formats["onnx_fp16"].details["size_vs_fp32"] < 0.7  # type: ignore[operator]
    assert fp16.max_abs_err is not None and fp16.max_abs_err > 0  # lossy, and measured as such


def test_model_without_example_inputs_takes_input_declarations(tmp_path: Path) -> None:
    report = modelport.run("tests/zoo.py:no_example", out=tmp_path / "n", formats="onnx", inputs="x=3x20:float32")
    assert report.verdict == "pass"
    assert report.signature.inputs[0].model_dump() == {"name": "x", "shape": ["batch", 20], "dtype": "float32"}
    assert np.load(tmp_path / "n" / "golden" / "inputs.npz")["x"].shape == (3, 20)


def test_script_method_is_recorded(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "s", formats="torchscript", torchscript_method="script")
    assert report.verdict == "pass"
    assert report.formats["torchscript"].details["method"] == "script"


def test_float64_reference_separates_rounding_from_error(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "f", formats="onnx", samples=1)
    check = report.candidates[0].checks[0]
    assert check.reference_rounding_err is not None and check.max_abs_err_vs_fp64 is not None
    # Both the original (float32) and onnxruntime sit within float32 rounding of the float64 result.
    assert check.reference_rounding_err < 1e-5 and check.max_abs_err_vs_fp64 < 1e-5
    assert report.candidates[0].min_passing_atol is not None


def test_unknown_model_specs_are_usage_errors(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for spec, needle in [
        ("nope", "unknown model 'nope'"),
        ("tests/missing.py:f", "no such file"),
        ("tests/zoo.py:nothing", "has no attribute 'nothing'"),
        ("tests/zoo.py:ZOO", "not a callable"),
        ("json:dumps", "raised TypeError"),
        ("no_such_pkg.mod:f", "cannot import no_such_pkg.mod"),
    ]:
        result = cli("run", "--model", spec, "--out", str(tmp_path / "o"))
        assert result.code == 2 and needle in result.err, (spec, result.err)
        assert "Traceback" not in result.err
    assert list(tmp_path.iterdir()) == []


def test_manifest_records_weights_and_dtypes(tmp_path: Path) -> None:
    report = _run("half", tmp_path / "h", formats="onnx")
    data = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert data["model"]["dtypes"] == ["float16"]
    assert data["tolerances"]["onnx"]["source"] == "default (float16 model)"
    assert report.verdict == "pass"


def test_generated_ids_and_masks_are_valid(tmp_path: Path) -> None:
    from modelport.models import resolve_model
    from modelport.pipeline.build import build_model

    built = build_model(resolve_model("tests/zoo.py:transformer"), seed=0)
    from modelport.pipeline.inputs import random_sets, sweep_sets

    sets = random_sets(built.inputs, built.rules, 0, 5) + sweep_sets(built.signature, built.inputs, built.rules, 0)
    for s in sets:
        ids, mask = s.inputs["input_ids"], s.inputs["attention_mask"]
        assert ids.min() >= 0 and ids.max() < 50  # below the smallest embedding table
        assert set(np.unique(mask)) <= {0, 1}
        assert (mask.max(axis=-1) == 1).all(), f"{s.name}: a row is all padding"
        if mask.shape[-1] > 1:
            assert (mask.min(axis=-1) == 0).all(), f"{s.name}: no row has padding, so masking is never exercised"
    assert built.rules["attention_mask"].keep == 1  # the example's majority value means keep
    torch.testing.assert_close(built.inputs["attention_mask"].sum(), torch.tensor(13))
