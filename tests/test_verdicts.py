"""The verdict's rules: the float64 error budget, lossy formats on edge sets, verify's own tolerance
policy, zero-check candidates, all-zero outputs, lost coverage. Each rule is seen deciding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import modelport
from modelport.pipeline import reference64
from modelport.pipeline.golden import read_npz, write_npz
from modelport.validators import tolerance
from modelport.validators.candidate import summarise
from modelport.validators.compare import compare_array
from modelport.validators.records import Tolerance
from tests.conftest import load_manifest, rehash
from tests.perturbation import assert_perturbation_caught

MODELS = "tests/verdict_models.py"
ONNX_TOL = Tolerance(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def wide_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("verdicts") / "wide"
    report = modelport.run(f"{MODELS}:wide_gain", out=folder, formats="torch_export,onnx", samples=0)
    assert report.verdict == "pass", [c.failures() for c in report.candidates]
    return folder


# -- the float64 error budget ------------------------------------------------------------------


def test_float32_reordering_beyond_the_tolerance_passes_on_the_float64_budget(wide_folder: Path) -> None:
    report = modelport.verify(wide_folder)
    assert report.verdict == "pass"
    onnx = next(c for c in report.candidates if c.format == "onnx")
    large = next(c for c in onnx.checks if c.input_set == "large")
    # The element-wise bound alone fails it; the float64 reference shows it is ordinary rounding.
    assert large.mismatches and large.decided_by == "float64-copy"
    assert large.max_abs_err_vs_fp64 is not None and large.fp64_allowance is not None
    assert large.max_abs_err_vs_fp64 <= large.fp64_allowance
    assert large.reference_rounding_err is not None
    assert large.fp64_allowance == pytest.approx(tolerance.FP64_ROUNDING_FACTOR * large.reference_rounding_err)


def test_without_the_budget_that_check_fails(wide_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tolerance, "FP64_ROUNDING_FACTOR", 0.0)
    report = modelport.verify(wide_folder)
    assert report.verdict == "fail"
    onnx = next(c for c in report.candidates if c.format == "onnx")
    assert [c.input_set for c in onnx.failures()] == ["large"]
    assert "beyond the float64 rounding allowance" in (onnx.failures()[0].message or "")


def test_verify_recomputes_the_budget_from_the_float64_files(wide_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(wide_folder, folder)
    rel = "golden/sets/large/outputs64.npz"
    arrays = read_npz(folder / rel)
    # Float64 outputs that the candidate does not match: the allowance no longer covers it.
    write_npz(folder / rel, {k: v + 1e-3 * np.abs(v).max() for k, v in arrays.items()})
    rehash(folder, rel)
    report = modelport.verify(folder)
    assert report.verdict == "fail"
    onnx = next(c for c in report.candidates if c.format == "onnx")
    assert {c.input_set for c in onnx.failures()} == {"large"}


def test_a_rounding_error_beyond_the_cap_grounds_nothing() -> None:
    ref = np.array([1.0, 2.0, 3.0], np.float32)
    cand = ref + np.float32(1e-3)
    ref64 = ref.astype(np.float64) + 1e-3  # golden outputs far from their own float64 run
    check = compare_array(ref, cand, ONNX_TOL, input_set="s", output="y", reference64=ref64)
    assert check.verdict == "fail" and check.fp64_allowance is None


@pytest.mark.parametrize("tol", [Tolerance(atol=0, rtol=0), Tolerance(atol=1e-2, rtol=0.05, rtol_scope="tensor")])
def test_exact_and_lossy_tolerances_get_no_float64_allowance(tol: Tolerance) -> None:
    ref = np.array([1.0, 2.0, 3.0], np.float32)
    ref64 = ref.astype(np.float64) + 1e-7
    cand = ref + np.float32(0.2)
    check = compare_array(ref, cand, tol, input_set="s", output="y", reference64=ref64)
    assert check.verdict == "fail" and check.decided_by == "tolerance" and check.fp64_allowance is None


def test_the_allowance_is_capped() -> None:
    ref = np.array([1.0, -1.0], np.float32)
    ref64 = ref.astype(np.float64) + 9e-5  # rounding 9e-5: 8x would be 7.2e-4, the cap is 10 * 2e-5
    cand = (ref64 + 2.5e-4).astype(np.float32)
    check = compare_array(ref, cand, ONNX_TOL, input_set="s", output="y", reference64=ref64)
    assert check.fp64_allowance == pytest.approx(2e-4)
    assert check.verdict == "fail"


def test_small_elements_do_not_inherit_the_rounding_of_large_ones() -> None:
    """A detection-style output: pixel boxes with float32 rounding of 3e-4, probabilities beside them.
    Probabilities off by 9e-4 (60x their bound) fail, although that is within 4x the box rounding."""
    ref = np.array([640.0, 320.0, 0.5, 0.25], np.float32)
    ref64 = ref.astype(np.float64) + np.array([3e-4, -2e-4, 1e-9, -1e-9])
    boxes_ok = ref64 + np.array([2e-4, 2e-4, 0.0, 0.0])
    assert (
        compare_array(ref, boxes_ok.astype(np.float32), ONNX_TOL, input_set="s", output="y", reference64=ref64).verdict
        == "pass"
    )
    probs_off = ref64 + np.array([2e-4, 2e-4, 9e-4, 0.0])
    check = compare_array(ref, probs_off.astype(np.float32), ONNX_TOL, input_set="s", output="y", reference64=ref64)
    assert check.verdict == "fail" and check.mismatches == 1


def test_nan_on_an_edge_set_gates_even_for_lossy_formats() -> None:
    from modelport.validators.candidate import ReplaySet, check_candidate

    class NanOnZeros:  # a runtime whose graph breaks on all-zero inputs
        name = "int8"

        def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            x = inputs["x"]
            return {"y": np.full_like(x, np.nan) if not x.any() else x * 2}

        def close(self) -> None:
            pass

    x = np.ones((2, 3), np.float32)
    sets = [ReplaySet("example", {"x": x}, {"y": x * 2}), ReplaySet("zeros", {"x": 0 * x}, {"y": 0 * x}, "edge")]
    lossy = Tolerance(atol=1e-2, rtol=0.05, rtol_scope="tensor", min_cosine=0.99)
    result = check_candidate(
        "onnx_int8@onnxruntime", "onnx_int8", "onnxruntime", NanOnZeros, sets, lossy, gate_edges=False
    )
    assert result.verdict == "fail"
    (bad,) = result.failures()
    assert bad.input_set == "zeros" and bad.gates and bad.nonfinite_mismatches == 6
    assert "6 NaN or infinite where the reference is not" in (bad.message or "")


@pytest.mark.parametrize("spec", ["mlp", f"{MODELS}:wide_gain", "tests/zoo.py:cnn", "tests/zoo.py:transformer"])
def test_a_last_layer_scaled_by_1_001_still_fails(spec: str, tmp_path: Path, wide_folder: Path) -> None:
    from modelport.models import resolve_model

    folder = wide_folder
    if spec != f"{MODELS}:wide_gain":
        folder = tmp_path / "f"
        dynamic = "input_ids:1=seq,attention_mask:1=seq" if "transformer" in spec else None
        report = modelport.run(spec, out=folder, formats="onnx", samples=1, dynamic=dynamic)
        assert report.verdict == "pass"
    model, _ = resolve_model(spec, None).build(0)
    assert assert_perturbation_caught(folder, model) > 0


# -- the layer-by-layer float64 estimate ---------------------------------------------------------


@pytest.mark.parametrize("spec", ["tests/zoo.py:cnn", "tests/zoo.py:transformer", "tests/zoo.py:tied"])
def test_layer_by_layer_float64_equals_the_copy_and_leaves_the_model_intact(spec: str) -> None:
    from modelport.pipeline.build import build_model
    from modelport.pipeline.inputs import random_sets

    built = build_model(modelport.models.resolve_model(spec, None), 0)
    before = {k: v.clone() for k, v in built.model.state_dict().items()}
    copy64 = reference64.Float64Reference(__import__("copy").deepcopy(built.model).double(), built.signature, "copy")
    layerwise = reference64.Float64Reference(built.model, built.signature, "layerwise")
    for s in random_sets(built.inputs, built.rules, 0, 2):
        a, b = copy64.infer(s.inputs), layerwise.infer(s.inputs)
        assert a.keys() == b.keys() and a
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    after = built.model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


def test_large_models_use_the_layer_by_layer_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reference64, "FP64_MAX_PARAMS", 1000)
    folder = tmp_path / "wide"
    report = modelport.run(f"{MODELS}:wide_gain", out=folder, formats="onnx", samples=0)
    assert report.verdict == "pass"
    assert report.golden is not None and report.golden.float64_estimate == "layerwise"
    large = next(c for c in report.candidates[0].checks if c.input_set == "large")
    assert large.decided_by == "float64-layerwise"
    assert any("layer by layer" in n for s in report.stages for n in s.notes)
    assert modelport.verify(folder).verdict == "pass"


def test_where_layer_by_layer_fails_the_whole_model_widens_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: a tied projection uses a parameter outside its module; the estimate must not be lost."""
    import copy

    from modelport.pipeline.build import build_model
    from modelport.pipeline.inputs import random_sets

    built = build_model(modelport.models.resolve_model(f"{MODELS}:tied_head", None), 0)
    before = {k: v.clone() for k, v in built.model.state_dict().items()}
    exact = reference64.Float64Reference(copy.deepcopy(built.model).double(), built.signature, "copy")
    bounded = reference64.Float64Reference(built.model, built.signature, "layerwise")
    (s,) = random_sets(built.inputs, built.rules, 0, 1)
    np.testing.assert_array_equal(exact.infer(s.inputs)["output"], bounded.infer(s.inputs)["output"])
    assert bounded.estimate == "inplace"
    after = built.model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


# -- lossy formats on synthetic edge sets --------------------------------------------------------

# A tolerance a 14th of int8's default: the cnn's representative sets use under 0.05 of the
# default bound, its x100 edge set about 0.1 (measured), so only the edge set fails it.
TIGHT_INT8 = "onnx_int8=7e-4,3.5e-3"


@pytest.fixture(scope="module")
def int8_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("verdicts") / "int8"
    modelport.run("tests/zoo.py:cnn", out=folder, formats="onnx_int8", samples=1, tol=TIGHT_INT8)
    return folder


def test_lossy_formats_are_flagged_not_failed_on_edge_sets(int8_folder: Path) -> None:
    manifest = modelport.pipeline.manifest.read_manifest(int8_folder)
    (cand,) = manifest.candidates
    assert manifest.verdict == "pass" and cand.verdict == "pass"
    assert {c.input_set for c in cand.flagged()} == {"large"} and not cand.failures()
    assert all(not c.gates for c in cand.checks if c.set_kind == "edge")
    assert modelport.verify(int8_folder).verdict == "pass"
    report_md = (int8_folder / "report.md").read_text()
    assert "flagged, not gating" in report_md


def test_strict_edges_makes_them_gate(int8_folder: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert modelport.verify(int8_folder, strict_edges=True).verdict == "fail"
    result = cli(
        "run", "--model", "tests/zoo.py:cnn", "--formats", "onnx_int8", "--samples", "1", "--tol", TIGHT_INT8,
        "--strict-edges", "--out", str(tmp_path / "strict"),
    )  # fmt: skip
    assert result.code == 1 and "FAIL (accuracy)" in result.out
    assert load_manifest(tmp_path / "strict")["options"]["strict_edges"] is True
    assert cli("verify", str(tmp_path / "strict")).code == 1  # the recorded option binds verify too


def test_lossless_formats_gate_on_edge_sets(wide_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tolerance, "FP64_ROUNDING_FACTOR", 0.0)
    (onnx,) = [c for c in modelport.verify(wide_folder).candidates if c.format == "onnx"]
    assert onnx.verdict == "fail" and all(c.gates for c in onnx.checks)


# -- verify holds its own tolerance policy -------------------------------------------------------


def test_a_recorded_tolerance_looser_than_the_default_fails_verify(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "loose"
    assert modelport.run("mlp", out=folder, formats="onnx", samples=0, tol="onnx=1e-3").verdict == "pass"
    result = cli("verify", str(folder))
    assert result.code == 1
    assert "onnx's recorded tolerance atol=0.001 rtol=1e-05 is looser than the default" in result.out
    assert cli("verify", str(folder), "--allow-loose").code == 0


def test_zeroed_weights_with_a_huge_recorded_tolerance_fail(tmp_path: Path) -> None:
    """The issue's attack: every ONNX weight zeroed, `tol=onnx=1e9` written into the manifest, re-hashed."""
    import onnx

    folder = tmp_path / "attacked"
    assert modelport.run("mlp", out=folder, formats="onnx", samples=0).verdict == "pass"
    model = onnx.load(str(folder / "model.onnx"))
    for init in model.graph.initializer:
        zeros = np.zeros_like(onnx.numpy_helper.to_array(init))
        init.CopyFrom(onnx.numpy_helper.from_array(zeros, init.name))
    onnx.save(model, str(folder / "model.onnx"))
    rehash(folder, "model.onnx")
    manifest = load_manifest(folder)
    manifest["options"]["tol"] = {"onnx": {"atol": 1e9, "rtol": None}}
    manifest["tolerances"]["onnx"].update(atol=1e9, source="--tol")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = modelport.verify(folder)
    assert report.verdict == "fail"
    assert any("looser than the default" in p.problem for p in report.integrity)
    (onnx_result,) = report.candidates
    assert onnx_result.verdict == "fail" and onnx_result.tolerance.atol == 1e-5  # replayed at the default


def test_verify_tolerance_flags_are_the_verifiers_own(mlp_folder: Path, cli) -> None:  # type: ignore[no-untyped-def]
    strict = modelport.verify(mlp_folder, tol="onnx=0,0")
    onnx = next(c for c in strict.candidates if c.format == "onnx")
    assert strict.verdict == "fail" and onnx.tolerance.source == "verify --tol"
    assert cli("verify", str(mlp_folder), "--atol", "1e-4", "--rtol", "1e-4").code == 0
    assert cli("verify", str(mlp_folder), "--tol", "onnx=x").code == 2


def test_verify_flags_vacuous_checks(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    assert modelport.run(f"{MODELS}:tiny_output", out=folder, formats="onnx", samples=0).verdict == "pass"
    assert any("cannot fail" in n for n in modelport.verify(folder).notes)


# -- zero checks, all-zero outputs, lost coverage ------------------------------------------------


def test_a_candidate_with_zero_checks_cannot_pass() -> None:
    result = summarise("onnx@onnxruntime", "onnx", "onnxruntime", ONNX_TOL, [])
    assert result.verdict == "fail" and "zero checks" in (result.reason or "")


LOSSY = Tolerance(atol=1e-2, rtol=0.05, rtol_scope="tensor", min_cosine=0.99)


def test_an_all_zero_candidate_fails_the_cosine_gate() -> None:
    ref = np.full(8, 0.004, np.float32)  # small enough for the element-wise bound alone to pass zeros
    check = compare_array(ref, np.zeros(8, np.float32), LOSSY, input_set="s", output="y")
    assert check.verdict == "fail" and "all zeros" in (check.message or "")


def test_an_all_zero_reference_is_judged_element_wise() -> None:
    ref = np.zeros(8, np.float32)
    near = compare_array(ref, np.full(8, 1e-4, np.float32), LOSSY, input_set="s", output="y")
    far = compare_array(ref, np.full(8, 1.0, np.float32), LOSSY, input_set="s", output="y")
    assert near.verdict == "pass" and far.verdict == "fail"


def test_a_set_the_original_fails_on_is_lost_coverage(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    summary = tmp_path / "summary.md"
    result = cli(
        "run", "--model", f"{MODELS}:small_batches", "--formats", "state_dict", "--samples", "0",
        "--out", str(tmp_path / "o"), "--summary-md", str(summary),
    )  # fmt: skip
    assert result.code == 0
    assert "coverage lost: input set batch_64 (sweep)" in result.out
    assert "coverage lost: input set batch_64" in summary.read_text()
    (lost,) = modelport.pipeline.manifest.read_manifest(tmp_path / "o").lost_coverage
    assert lost.name == "batch_64" and "at most 32" in lost.reason


def test_a_float16_claim_in_the_manifest_does_not_widen_the_defaults(tmp_path: Path) -> None:
    """Review finding: the float16 defaults are 100x wider; which apply is read from the folder's own files."""
    import onnx

    folder = tmp_path / "claim"
    assert modelport.run("mlp", out=folder, formats="onnx", samples=0).verdict == "pass"
    model = onnx.load(str(folder / "model.onnx"))
    for init in model.graph.initializer:
        scaled = onnx.numpy_helper.to_array(init) * np.float32(1.003)
        init.CopyFrom(onnx.numpy_helper.from_array(scaled, init.name))
    onnx.save(model, str(folder / "model.onnx"))
    rehash(folder, "model.onnx")
    manifest = load_manifest(folder)
    manifest["model"]["dtypes"] = ["float16", "float32"]
    manifest["tolerances"]["onnx"].update(atol=1e-3, rtol=1e-2, source="default (float16 model)")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = modelport.verify(folder)
    assert report.verdict == "fail"
    assert any("looser than the default" in p.problem for p in report.integrity)


def test_a_real_float16_model_verifies_at_its_own_defaults(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    assert modelport.run("tests/zoo.py:half", out=folder, formats="state_dict,onnx", samples=0).verdict == "pass"
    report = modelport.verify(folder)  # no --allow-loose: the float16 defaults are the right ones here
    assert report.verdict == "pass", [p.problem for p in report.integrity]
    assert {c.tolerance.source for c in report.candidates if c.format == "onnx"} == {"manifest"}


def test_an_element_that_rounded_luckily_gets_the_outputs_median_rounding() -> None:
    """One element's float32 value landed next to the exact one (own error 1e-9, the others 5e-5): a runtime
    that reorders its sum by 1e-4 is within 8x the output's median rounding, not failed on the lucky one."""
    reference64 = np.linspace(1.0, 8.0, 16)
    reference = reference64 + 5e-5
    reference[3] = reference64[3] + 1e-9
    candidate = reference64 + 4e-5
    candidate[3] = reference64[3] + 1e-4
    check = compare_array(reference, candidate, ONNX_TOL, input_set="s", output="y", reference64=reference64)
    assert check.verdict == "pass" and check.decided_by == "float64-copy", check.message
    # An error far beyond that rounding still fails: the floor is the output's rounding, not a blank cheque.
    candidate[3] = reference64[3] + 1e-2
    assert (
        compare_array(reference, candidate, ONNX_TOL, input_set="s", output="y", reference64=reference64).verdict
        == "fail"
    )
