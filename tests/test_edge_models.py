"""The awkward models of edge_models.py: each must give a right answer, a reasoned skip, or a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

import modelport
from modelport.models import resolve_model
from modelport.pipeline.build import build_model
from modelport.pipeline.inputs import random_sets

SPEC = "tests/edge_models.py"


def _run(name: str, tmp_path: Path, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("samples", 1)
    return modelport.run(f"{SPEC}:{name}", out=tmp_path / name, **kwargs)


def test_a_batch_axis_the_model_fixes_is_not_claimed_dynamic(tmp_path: Path) -> None:
    report = _run("fixed_batch", tmp_path, formats="onnx,torchscript")
    assert report.verdict == "pass"
    assert report.signature.inputs[0].shape == [2, 8]
    build = next(s for s in report.stages if s.name == "build")
    assert any("'batch'" in n and "not dynamic" in n for n in build.notes)
    dims = onnx.load(str(tmp_path / "fixed_batch" / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 8]


def test_a_declared_axis_the_model_fixes_is_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "--model", f"{SPEC}:fixed_seq", "--dynamic", "x:1=seq", "--out", str(tmp_path / "o"))
    assert result.code == 2 and "--dynamic seq: the model fails when x:1 change size" in result.err
    assert not (tmp_path / "o").exists()


def test_namedtuple_fields_name_the_outputs(tmp_path: Path) -> None:
    report = _run("namedtuple_out", tmp_path, formats="torch_export,onnx,torchscript")
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    assert report.signature.output_names == ["logits", "features"]


def test_varargs_forward_exports(tmp_path: Path) -> None:
    report = _run("varargs", tmp_path, formats="torch_export,onnx")
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    assert report.signature.input_names == ["input_0", "input_1"]


def test_scalar_inputs_and_outputs_stay_scalar(tmp_path: Path) -> None:
    report = _run("scalars", tmp_path, formats="all")
    assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]
    assert report.signature.outputs[1].shape == []
    golden = tmp_path / "scalars" / "golden"
    assert np.load(golden / "outputs.npz")["output_1"].shape == ()
    assert np.load(golden / "inputs.npz")["scale"].shape == ()


def test_int_bool_inf_and_none_outputs_through_lossy_formats(tmp_path: Path) -> None:
    report = _run("mixed_outputs", tmp_path, formats="all")
    assert report.signature.output_names == ["output_0", "output_2", "output_3"]  # the None is dropped
    assert [o.dtype for o in report.signature.outputs] == ["float32", "int64", "bool"]
    for cand in report.candidates:
        # -inf logits and integer outputs must not trip the cosine gate of fp16/int8.
        assert not any("cosine" in (c.message or "") for c in cand.checks), cand.candidate
    # Integer outputs are compared exactly: int8 flips one argmax among the 64 rows of the batch sweep. That is a
    # real difference in what the artifact computes, reported as that candidate's failure; every other one passes.
    assert report.verdict == "fail"
    verdicts = {c.candidate: c.verdict for c in report.candidates}
    assert verdicts == {c: "fail" if c == "onnx_int8@onnxruntime" else "pass" for c in verdicts}
    assert len(verdicts) == 8 and all(c.status == "ok" for c in report.candidates)
    int8 = next(c for c in report.candidates if c.format == "onnx_int8")
    (failure,) = int8.failures()
    assert (failure.input_set, failure.set_kind, failure.output, failure.category) == (
        "batch_64",
        "sweep",
        "output_2",
        "accuracy",
    )
    assert failure.reference_dtype == "int64" and failure.max_abs_err == 1 and failure.mismatches == 1


def test_colliding_names_are_kept_apart(tmp_path: Path) -> None:
    report = _run("colliding", tmp_path, formats="state_dict,onnx")
    assert report.signature.output_names == ["a_b", "a_b__2"]
    assert report.verdict == "pass"
    assert sorted(np.load(tmp_path / "colliding" / "golden" / "outputs.npz").files) == ["a_b", "a_b__2"]


def test_each_id_input_fits_its_own_table() -> None:
    built = build_model(resolve_model(f"{SPEC}:two_tables"), seed=0)
    assert built.rules["input_ids"].high == 1000 and built.rules["token_type_ids"].high == 2
    ids = random_sets(built.inputs, built.rules, 0, 3)
    assert max(int(s.inputs["input_ids"].max()) for s in ids) > 100  # not squeezed below the smaller table


def test_float_masks_are_masks(tmp_path: Path) -> None:
    built = build_model(resolve_model(f"{SPEC}:float_mask"), seed=0)
    assert built.rules["attention_mask"].kind == "mask"
    report = _run("float_mask", tmp_path, formats="onnx,onnx_int8", samples=3)
    assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]


def test_a_model_that_cannot_be_copied_still_gets_a_float64_reference(tmp_path: Path) -> None:
    report = _run("locked", tmp_path, formats="onnx")
    assert report.verdict == "pass"
    assert report.candidates[0].checks[0].reference_rounding_err is not None


def test_a_batch_of_one_exports_with_a_dynamic_batch(tmp_path: Path) -> None:
    report = _run("batch_one", tmp_path, formats="torch_export,onnx")
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    assert report.signature.inputs[0].shape == ["batch", 8]


def test_a_callable_that_exits_is_a_usage_error(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "--model", f"{SPEC}:exits", "--out", str(tmp_path / "o"))
    assert result.code == 2 and "raised SystemExit" in result.err


def test_tiny_outputs_flag_a_vacuous_tolerance(tmp_path: Path) -> None:
    from modelport.validators.compare import compare_array
    from modelport.validators.records import Tolerance

    ref = np.full(4, 1e-7, np.float32)
    check = compare_array(ref, -ref, Tolerance(atol=1e-5, rtol=1e-5), input_set="s", output="y")
    assert check.verdict == "pass" and check.vacuous  # it cannot fail: the report must say so
