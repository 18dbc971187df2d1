"""The runtime layer's conformance guard: every registered runtime runs the built-in MLP's artifact from its
folder and matches the golden outputs; a registered runtime without a case here fails the suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_harness import replay

from modelport import runtimes

# runtime -> the format of the MLP folder it runs
CONFORMANCE = {
    "torch": "torch_export",
    "torchscript": "torchscript",
    "onnxruntime": "onnx",
    "onnx_reference": "onnx",
    "node": "onnx",
    "browser": "onnx",
    "libtorch": "torchscript",
    "opencv": "onnx",
}
# Runtimes outside Python: their cases need a toolchain (`make runtimes`), so they run under the `runtimes` marker
# (`make test-runtimes`), not `make test`.
OUTSIDE_PYTHON = {"node", "browser", "libtorch", "opencv"}
PYTHON = "torch,torchscript,onnxruntime,onnx_reference"  # every runtime inside Python: `make test` needs no other


def test_every_registered_runtime_has_a_conformance_case() -> None:
    assert set(runtimes.names()) == set(CONFORMANCE), "add the new runtime's case to CONFORMANCE"


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.runtimes) if n in OUTSIDE_PYTHON else n for n in sorted(CONFORMANCE)],
)
def test_runtime_runs_the_mlp_from_its_folder(name: str, mlp_folder: Path) -> None:
    results, checks = replay(name, mlp_folder, CONFORMANCE[name])
    assert checks and all(c.verdict == "pass" for c in checks), [c.message for c in checks if c.verdict == "fail"]
    runtime = runtimes.get(name)
    assert runtime.available().version
    assert len(results) == len({c.input_set for c in checks})


def test_the_runtime_registry_and_the_records_import_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from modelport import runtimes; runtimes.names(); "
        "import modelport.runtimes.plan, modelport.pipeline.records, modelport.pipeline.settings; "
        "print(','.join(m for m in ('torch','onnx','onnxruntime','numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", done.stdout


def test_unknown_runtimes_are_named() -> None:
    from modelport.errors import UsageError

    with pytest.raises(UsageError, match="unknown runtime 'tensorrt'"):
        runtimes.parse_runtimes("onnx_reference,tensorrt")
    assert runtimes.parse_runtimes("all") == runtimes.names()
    with pytest.raises(UsageError, match="unknown runtime 'bogus'"):
        runtimes.parse_runtimes("all,bogus")  # a typo next to `all` is not swallowed


def _onnx_with_fused_ops(artifact_copy: Path) -> Path:
    """The MLP folder with model.onnx replaced by onnxruntime's optimized graph (com.microsoft::FusedGemm)."""
    import shutil

    from conftest import rehash

    shutil.copyfile(artifact_copy / "model.optimized.onnx", artifact_copy / "model.onnx")
    rehash(artifact_copy, "model.onnx")
    return artifact_copy


def test_an_operator_a_partial_runtime_lacks_is_a_skip_unless_named(artifact_copy: Path) -> None:
    import modelport
    from modelport.runtimes import plan

    folder = _onnx_with_fused_ops(artifact_copy)
    # Selected without being named, as through the default set or `all` (which would run node, the browser, C++).
    unnamed = plan.Selection(("torch", "torchscript", "onnxruntime", "onnx_reference"))
    found = {c.candidate: c for c in modelport.verify(folder, runtimes=unnamed, trust=True).candidates}
    ref = found["onnx@onnx_reference"]
    assert (ref.status, ref.verdict) == ("skipped", "pass"), ref
    assert "com.microsoft::FusedGemm" in (ref.reason or "") and "name onnx_reference in --runtimes" in (
        ref.reason or ""
    )
    assert found["onnx@onnxruntime"].verdict == "pass"
    assert "onnx_optimized@onnx_reference" not in found  # bound to onnxruntime: never paired
    named = modelport.verify(folder, runtimes="onnxruntime,onnx_reference", trust=True)
    ref = next(c for c in named.candidates if c.candidate == "onnx@onnx_reference")
    assert (ref.status, ref.verdict, ref.category) == ("failed", "fail", "load") and named.verdict == "fail"


def test_a_selected_runtime_that_is_not_available_fails_naming_the_fix(
    mlp_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelport
    from modelport.runtimes.base import Availability
    from modelport.runtimes.onnx_reference import OnnxReferenceRuntime

    # The reference evaluator's own availability, as on a machine whose onnx lacks it.
    gone = Availability(reason="onnx.reference does not import", enable="pip install onnx")
    monkeypatch.setattr(OnnxReferenceRuntime, "available", lambda self: gone)
    report = modelport.verify(mlp_folder, runtimes=PYTHON)
    ref = next(c for c in report.candidates if c.candidate == "onnx@onnx_reference")
    assert (ref.verdict, ref.category) == ("fail", "load") and report.verdict == "fail"
    assert "not available: onnx.reference does not import; enable it with: pip install onnx" in (ref.reason or "")


def test_every_candidate_records_its_runtime_version_and_timings(mlp_folder: Path) -> None:
    import modelport

    report = modelport.verify(mlp_folder, runtimes=PYTHON)
    assert report.verdict == "pass"
    assert {c.candidate for c in report.candidates} >= {"onnx@onnxruntime", "onnx@onnx_reference"}
    for cand in report.candidates:
        if cand.status != "ok" or (cand.format in ("state_dict", "safetensors") and cand.proof != ""):
            pass
        assert cand.runtime_version, cand.candidate
        assert cand.load_seconds is not None and set(cand.infer_seconds) == {c.input_set for c in cand.checks}


def test_doctor_lists_every_runtime_with_its_version_or_how_to_enable_it(cli) -> None:  # type: ignore[no-untyped-def]
    import json

    result = cli("doctor", "--json")
    listed = {r["runtime"]: r for r in json.loads(result.out)["runtimes"]}
    assert list(listed) == runtimes.names()
    for row in listed.values():
        assert (row["version"] is not None) == row["available"], row
        assert row["available"] or (row["reason"] and row["enable"]), row
    assert listed["onnxruntime"]["available"] and listed["onnxruntime"]["default"]
    assert result.code == (0 if all(r["available"] for r in listed.values()) else 1)
    text = cli("doctor").out
    assert all(line.split()[0] in listed for line in text.strip().splitlines())


def test_each_candidates_outputs_are_kept_for_later(tmp_path: Path) -> None:
    import numpy as np

    import modelport

    report = modelport.run(out=tmp_path / "out", formats="onnx", runtimes=PYTHON, samples=0)
    for cand in report.candidates:
        kept = cand.outputs()
        assert set(kept) == {c.input_set for c in cand.checks}, cand.candidate
        for check in cand.checks:
            got = kept[check.input_set][check.output]
            assert list(got.shape) == check.shape and str(got.dtype) == check.dtype
    ort, ref = (next(c for c in report.candidates if c.runtime == r) for r in ("onnxruntime", "onnx_reference"))
    assert not np.array_equal(ort.outputs()["large"]["output"], ref.outputs()["large"]["output"])  # two engines


@pytest.mark.runtimes
def test_verify_all_runtimes_from_a_moved_folder_alone(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from runtime_harness import available_or_skip

    for name in runtimes.names():
        available_or_skip(name)
    made = cli("run", "--out", str(tmp_path / "made"), "--runtimes", "all", "--samples", "1", "--quiet")
    assert made.code == 0, made.out + made.err
    shutil.move(tmp_path / "made", tmp_path / "elsewhere" / "moved")
    result = cli("verify", str(tmp_path / "elsewhere" / "moved"), "--runtimes", "all")
    assert result.code == 0, result.out
    for candidate in ("onnx@node", "onnx@browser", "onnx@opencv", "onnx@onnx_reference", "torchscript@libtorch"):
        assert f"│ {candidate}" in result.out and f"proof: {candidate}: intact by sha256" in result.out


@pytest.mark.runtimes
def test_runtime_timeout_kills_a_hanging_runtime_and_fails_its_row(
    mlp_folder: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from runtime_harness import available_or_skip

    available_or_skip("node")  # its packages; the program itself is replaced by one that never answers
    monkeypatch.setenv("MODELPORT_NODE", str(Path(__file__).parent / "runtime_doubles" / "hang.sh"))
    result = cli("verify", str(mlp_folder), "--runtimes", "onnxruntime,node", "--runtime-timeout", "2", "--quiet")
    assert result.code == 1, result.out
    assert "FAIL onnx@node" in result.out and "did not finish within 2 s and was killed" in result.out


def test_a_bad_runtime_timeout_is_a_usage_error(mlp_folder: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for bad in ("0", "-1", "inf", "nan"):
        result = cli("verify", str(mlp_folder), "--runtime-timeout", bad)
        assert result.code == 2 and "--runtime-timeout must be a number of seconds above 0" in result.err, bad


def test_an_operator_the_onnx_reference_lacks_is_unsupported_naming_it(tmp_path: Path) -> None:
    """Review finding: GlobalLpPool (no reference implementation) was a plain load failure, never a skip."""
    import onnx
    from onnx import TensorProto, helper

    from modelport.runtimes.base import Artifact, Unsupported
    from modelport.signature import Signature, TensorSpec

    node = helper.make_node("GlobalLpPool", ["x"], ["y"], p=2)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(tmp_path / "model.onnx"))
    signature = Signature(
        inputs=[TensorSpec(name="x", shape=[1, 2, 3, 3], dtype="float32")],
        outputs=[TensorSpec(name="y", shape=[1, 2, 1, 1], dtype="float32")],
    )
    artifact = Artifact("onnx", "onnx", tmp_path, ("model.onnx",), signature)
    with pytest.raises(Unsupported, match=r"does not implement it: .*GlobalLpPool"):
        runtimes.get("onnx_reference").open(artifact, timeout=10)


def test_a_set_a_session_cannot_run_by_design_is_remembered_for_the_skip() -> None:
    """Found on BERT: onnx_reference's kernels raise on some sets; infer_all must keep the Unsupported, not bury it
    in a set's error text, so that an unnamed partial runtime is skipped rather than failed."""
    import numpy as np

    from modelport.runtimes.base import Session, Unsupported

    class Picky(Session):
        name = "onnx@picky"

        def infer(self, inputs):  # type: ignore[no-untyped-def]
            if inputs["x"].shape[0] > 1:
                raise Unsupported("no kernel for a batch above 1")
            return {"y": inputs["x"] * 2}

    session = Picky()
    results = session.infer_all([{"x": np.ones((1, 2))}, {"x": np.ones((3, 2))}])
    assert results[0].outputs is not None and results[1].error and "no kernel" in results[1].error
    assert isinstance(session.unsupported, Unsupported) and "no kernel" in str(session.unsupported)
