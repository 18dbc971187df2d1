"""Checks of ``verify`` that no other test protected: each test here fails when its check is removed.

Each tamper is re-hashed (``rehash``), so the sha256 check cannot catch it, and is made
consistent with everything else in the folder, so that only the check named in the test can.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import DEFAULT_CANDIDATES, load_manifest, rehash
from onnx import numpy_helper

import modelport
from modelport import exporters
from modelport.exporters import ExportRequest
from modelport.models import BUILTIN
from modelport.pipeline.build import build_model
from modelport.pipeline.records import VerifyReport

LOSSY_CANDIDATES = ["onnx_fp16@onnxruntime", "onnx_int8@onnxruntime"]


def _failing(report: VerifyReport) -> dict[str, set[tuple[str, str | None]]]:
    """candidate -> {(input set, category)} of its failing checks, or {("-", category)} when it did not run."""
    out: dict[str, set[tuple[str, str | None]]] = {}
    for cand in report.candidates:
        if cand.verdict == "fail":
            out[cand.candidate] = {(c.input_set, c.category) for c in cand.failures()} or {("-", cand.category)}
    return out


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


# --- a. every golden set is replayed, not only the example -------------------------------------------


def test_a_tampered_golden_set_other_than_the_example_fails(artifact_copy: Path) -> None:
    golden = load_manifest(artifact_copy)["golden"]
    entry = next(s for s in golden["sets"] if s["name"] == "random_1")
    with np.load(artifact_copy / entry["outputs"]) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["output"] = arrays["output"] + np.float32(1e-3)
    _write_npz(artifact_copy / entry["outputs"], arrays)
    # The ONNX test-data copy of the set is changed the same way: the folder agrees with itself.
    pb = f"{entry['onnx_test_data']}/output_0.pb"
    (artifact_copy / pb).write_bytes(numpy_helper.from_array(arrays["output"], name="output").SerializeToString())
    for rel in (entry["outputs"], pb):
        rehash(artifact_copy, rel)

    report = modelport.verify(artifact_copy, trust=True)
    assert report.verdict == "fail" and report.integrity == []
    # Every artifact disagrees with the edited set, and only with it.
    assert _failing(report) == {c: {("random_1", "accuracy")} for c in DEFAULT_CANDIDATES}


class _WrongAtOtherBatches(torch.nn.Module):
    """The model, plus 0.01 per row of batch beyond the example's 2: right only at the example's batch size."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.ones_like(x[:, :1]).sum()  # the batch size as a tensor: the graph computes it at run time
        return self.inner(x) + (rows - 2) * 0.01


def test_an_onnx_file_wrong_only_at_another_batch_size_fails_on_the_sweep(artifact_copy: Path, tmp_path: Path) -> None:
    built = build_model(BUILTIN["mlp"], seed=0)
    assert built.inputs["x"].shape[0] == 2
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    request = ExportRequest(_WrongAtOtherBatches(built.model).eval(), built.inputs, built.signature, scratch)
    exporters.get("onnx").export(request)
    shutil.copyfile(scratch / "model.onnx", artifact_copy / "model.onnx")
    rehash(artifact_copy, "model.onnx")

    report = modelport.verify(artifact_copy, trust=True)
    assert report.verdict == "fail" and report.integrity == []
    assert _failing(report) == {"onnx@onnxruntime": {("batch_1", "accuracy"), ("batch_64", "accuracy")}}


# --- b. a folder whose run failed does not verify, even when what it holds replays ----------------------


def test_a_folder_whose_export_stage_failed_does_not_verify(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "colliding"
    # A model without MatMul or Gemm: dynamic quantization has nothing to quantize, so onnx_int8 fails to export.
    run = modelport.run("tests/edge_models.py:colliding", out=folder, formats="onnx,onnx_int8", samples=0)
    assert run.verdict == "fail"
    assert {c.candidate: (c.verdict, c.category) for c in run.candidates} == {
        "onnx@onnxruntime": ("pass", None),
        "onnx_int8@onnxruntime": ("fail", "export"),
    }

    report = modelport.verify(folder)
    assert report.verdict == "fail"
    assert report.integrity == [] and [c.verdict for c in report.candidates] == ["pass"]  # what is there replays
    assert "the run that wrote this folder failed (onnx_int8@onnxruntime)" in report.notes
    result = cli("verify", str(folder))
    assert result.code == 1 and "verdict: FAIL" in result.out


# --- c. the golden sets are the ones the run checked ----------------------------------------------------


def test_a_golden_set_dropped_from_the_manifest_is_caught(artifact_copy: Path) -> None:
    manifest = load_manifest(artifact_copy)
    golden = manifest["golden"]
    dropped = next(s for s in golden["sets"] if s["name"] == "batch_64")
    golden["sets"] = [s for s in golden["sets"] if s is not dropped]
    # Its files go too, and the listing with them: every remaining file is listed, every listed file is there.
    shutil.rmtree((artifact_copy / dropped["inputs"]).parent)  # inputs, outputs and float64 outputs
    shutil.rmtree(artifact_copy / dropped["onnx_test_data"])
    set_folder = dropped["inputs"].rsplit("/", 1)[0]
    gone = (f"{set_folder}/", f"{dropped['onnx_test_data']}/")
    manifest["artifacts"] = [a for a in manifest["artifacts"] if not a["path"].startswith(gone)]
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest, indent=2))

    report = modelport.verify(artifact_copy, trust=True)
    assert report.verdict == "fail"
    assert all(c.verdict == "pass" for c in report.candidates)  # every remaining set still replays
    required, consistency = sorted(report.integrity, key=lambda p: p.problem)
    assert consistency.path == required.path == "manifest.json"
    assert "its golden sets" in consistency.problem and "are not the ones the run checked" in consistency.problem
    assert "'batch_64'" in consistency.problem
    assert required.problem == "golden set 'batch_64', which the recorded options call for, is missing"


def test_golden_sets_dropped_with_their_recorded_checks_are_still_required(artifact_copy: Path) -> None:
    """Review finding: drop the sweep sets and every recorded check alike, and the consistency check has nothing
    to compare; the sets the recorded options and signature call for are still required."""
    manifest = load_manifest(artifact_copy)
    golden = manifest["golden"]
    for dropped in [s for s in golden["sets"] if s["kind"] == "sweep"]:
        shutil.rmtree((artifact_copy / dropped["inputs"]).parent)
        shutil.rmtree(artifact_copy / dropped["onnx_test_data"])
        gone = (dropped["inputs"].rsplit("/", 1)[0] + "/", f"{dropped['onnx_test_data']}/")
        manifest["artifacts"] = [a for a in manifest["artifacts"] if not a["path"].startswith(gone)]
    golden["sets"] = [s for s in golden["sets"] if s["kind"] != "sweep"]
    for cand in manifest["candidates"]:
        cand["checks"] = []
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
    problems = [p.problem for p in modelport.verify(artifact_copy).integrity]
    assert "golden set 'batch_1', which the recorded options call for, is missing" in problems
    assert "golden set 'batch_64', which the recorded options call for, is missing" in problems
    assert "onnx@onnxruntime passed with no recorded check" in problems


def test_a_golden_set_relabelled_as_an_edge_case_is_caught(artifact_copy: Path) -> None:
    """Review finding: a set's kind decides whether a lossy format's miss gates; it is never taken on trust."""
    manifest = load_manifest(artifact_copy)
    for s in manifest["golden"]["sets"]:
        s["kind"] = "edge"
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
    problems = [p.problem for p in modelport.verify(artifact_copy).integrity]
    assert "golden set 'random_1' is recorded as kind 'edge'; it is 'random'" in problems
    assert "golden set 'batch_64' is recorded as kind 'edge'; it is 'sweep'" in problems


# --- d. the optimized, float16 and int8 files hold what their names say ---------------------------------


@pytest.fixture(scope="module")
def all_formats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("all") / "mlp"
    report = modelport.run(out=folder, formats="all", samples=1)
    assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]
    assert modelport.verify(folder).verdict == "pass"  # the identity checks accept the real files
    return folder


@pytest.fixture
def all_copy(all_formats: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(all_formats, target)
    return target


def _export_scaled(fmt: str, scale: float, scratch: Path) -> Path:
    """``fmt``'s file, exported by its own exporter from the built-in MLP with its output layer scaled."""
    built = build_model(BUILTIN["mlp"], seed=0)
    model = BUILTIN["mlp"].build(seed=0)[0]
    model.load_state_dict(built.model.state_dict())
    with torch.no_grad():
        model.output.weight.mul_(scale)
    scratch.mkdir()
    exporter = exporters.get(fmt)
    exporter.export(ExportRequest(model.eval(), built.inputs, built.signature, scratch))
    return scratch / exporter.main_file


@pytest.mark.parametrize(
    ("fmt", "scale"),
    [
        ("onnx_optimized", 1.001),  # lossless: the smallest change the tolerances promise to catch
        ("onnx_fp16", 1.2),  # lossy: outputs well outside their tolerance, by weights alone
        ("onnx_int8", 1.2),
    ],
)
def test_a_derived_file_from_other_weights_fails(all_copy: Path, tmp_path: Path, fmt: str, scale: float) -> None:
    exporter = exporters.get(fmt)
    shutil.copyfile(_export_scaled(fmt, scale, tmp_path / "scratch"), all_copy / exporter.main_file)
    rehash(all_copy, exporter.main_file)

    report = modelport.verify(all_copy, trust=True)
    assert report.verdict == "fail" and report.integrity == []
    failing = _failing(report)
    assert list(failing) == [exporter.candidate]
    assert {category for _, category in failing[exporter.candidate]} == {"accuracy"}
    assert ("example", "accuracy") in failing[exporter.candidate]


@pytest.mark.parametrize(
    ("fmt", "source", "needle"),
    [
        ("onnx_fp16", "model.onnx", "holds more float32 weights"),  # the float32 graph passes fp16's tolerance
        ("onnx_fp16", "model.int8.onnx", "it is not a float16 graph"),
        ("onnx_int8", "model.onnx", "holds no integer operator"),  # and int8's
        ("onnx_int8", "model.fp16.onnx", "holds no integer operator"),
    ],
    ids=["fp16<-fp32", "fp16<-int8", "int8<-fp32", "int8<-fp16"],
)
def test_a_lossy_file_holding_another_graph_fails_its_identity_check(
    all_copy: Path, fmt: str, source: str, needle: str
) -> None:
    exporter = exporters.get(fmt)
    shutil.copyfile(all_copy / source, all_copy / exporter.main_file)
    rehash(all_copy, exporter.main_file)

    report = modelport.verify(all_copy, trust=True)
    assert report.verdict == "fail" and report.integrity == []
    assert _failing(report) == {exporter.candidate: {("-", "load")}}
    bad = next(c for c in report.candidates if c.candidate == exporter.candidate)
    assert bad.reason is not None and needle in bad.reason and exporter.main_file in bad.reason


def test_the_float32_graph_would_pass_the_lossy_tolerances_on_parity_alone(all_formats: Path) -> None:
    """Why the identity check exists: the substituted float32 graph is well within fp16's and int8's tolerances."""
    import onnxruntime as ort

    from modelport.pipeline.golden import read_npz
    from modelport.validators.compare import compare_outputs

    session = ort.InferenceSession(str(all_formats / "model.onnx"), providers=["CPUExecutionProvider"])
    x = read_npz(all_formats / "golden" / "inputs.npz")
    y = read_npz(all_formats / "golden" / "outputs.npz")
    (out,) = session.run(["output"], dict(x))
    for fmt in ("onnx_fp16", "onnx_int8"):
        checks = compare_outputs(y, {"output": out}, exporters.get(fmt).tolerance, input_set="example")
        assert [c.verdict for c in checks] == ["pass"]
    assert onnx.load(str(all_formats / "model.onnx")).graph.initializer  # a real graph with weights


def test_a_graph_without_weights_must_still_compute_in_float16() -> None:
    """A model without weights converts to casts to float16; a file with neither weights nor casts is not fp16."""
    from onnx import TensorProto, helper

    from modelport.exporters.onnx_fp16 import float16_problem

    def graph(nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
        return helper.make_model(helper.make_graph(nodes, "g", [x], [y]))

    plain = graph([helper.make_node("Add", ["x", "x"], ["y"])])
    assert float16_problem(plain) == "holds no float16 weight or cast to float16: it is not a float16 graph"
    half = graph(
        [
            helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
            helper.make_node("Add", ["h", "h"], ["s"]),
            helper.make_node("Cast", ["s"], ["y"], to=TensorProto.FLOAT),
        ]
    )
    assert float16_problem(half) is None
