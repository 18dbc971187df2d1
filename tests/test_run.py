"""End to end: `modelport run` on the built-in MLP, and the artifact folder contract."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import ALL_FORMATS, DEFAULT_CANDIDATES, load_manifest

import modelport
from modelport.pipeline.golden import read_npz
from modelport.pipeline.records import SCHEMA_VERSION

STAGES = ["build", "tensors", *ALL_FORMATS, "validate", "localize", "determinism", "profile", "manifest"]
SKIPPED = {"onnx_fp16", "onnx_int8", "localize", "determinism", "profile"}  # not in the default run
CANDIDATES = DEFAULT_CANDIDATES
SETS = [
    ("example", "example"),
    ("random_1", "random"),
    ("random_2", "random"),
    ("random_3", "random"),
    ("batch_1", "sweep"),
    ("batch_64", "sweep"),
    ("zeros", "edge"),
    ("large", "edge"),
]


def test_every_file_is_listed_with_its_hash(mlp_folder: Path) -> None:
    manifest = load_manifest(mlp_folder)
    on_disk = {p.relative_to(mlp_folder).as_posix() for p in mlp_folder.rglob("*") if p.is_file()}
    listed = {a["path"]: a for a in manifest["artifacts"]}
    assert set(listed) == on_disk - {"manifest.json", "manifest.sig"}  # the manifest cannot list its signature
    for rel, entry in listed.items():
        data = (mlp_folder / rel).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), rel
        assert entry["bytes"] == len(data), rel
    roles = {a["path"]: (a["format"], a["role"]) for a in manifest["artifacts"]}
    assert roles["model.onnx"] == ("onnx", "model")
    assert roles["state_dict.pt"] == ("state_dict", "weights")
    assert roles["golden/outputs.npz"] == ("golden", "golden-outputs")


def test_manifest_records_what_a_consumer_needs(mlp_folder: Path) -> None:
    m = load_manifest(mlp_folder)
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["verdict"] == "pass"
    for dist in ("modelport", "python", "torch", "onnx", "onnxruntime", "numpy"):
        assert m["environment"][dist], dist
    assert m["model"]["name"] == "mlp" and m["model"]["parameters"] == 20 * 256 + 256 + 256 * 10 + 10
    assert m["signature"]["inputs"] == [{"name": "x", "shape": ["batch", 20], "dtype": "float32"}]
    assert m["signature"]["outputs"] == [{"name": "output", "shape": ["batch", 10], "dtype": "float32"}]
    assert [s["name"] for s in m["stages"]] == STAGES
    assert all(s["status"] == ("skipped" if s["name"] in SKIPPED else "ok") for s in m["stages"])
    assert [c["candidate"] for c in m["candidates"]] == CANDIDATES
    assert m["golden"]["inputs"] == "golden/inputs.npz" and m["golden"]["outputs"] == "golden/outputs.npz"
    assert [(s["name"], s["kind"]) for s in m["golden"]["sets"]] == SETS[1:]
    assert m["tolerances"]["state_dict"] == {
        "atol": 0.0,
        "rtol": 0.0,
        "rtol_scope": "element",
        "min_cosine": None,
        "source": "default",
    }
    assert m["tolerances"]["onnx"]["atol"] > 0
    onnx_details = m["formats"]["onnx"]["details"]
    model = onnx.load(str(mlp_folder / "model.onnx"))
    assert onnx_details["ir_version"] == model.ir_version
    assert onnx_details["opset"] == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def test_every_candidate_ran_every_input_set(mlp_folder: Path) -> None:
    m = load_manifest(mlp_folder)
    for cand in m["candidates"]:
        assert cand["verdict"] == "pass"
        assert [(c["input_set"], c["set_kind"]) for c in cand["checks"]] == SETS
        shapes = {c["input_set"]: c["shape"] for c in cand["checks"]}
        assert shapes["example"] == [2, 10] and shapes["batch_1"] == [1, 10] and shapes["batch_64"] == [64, 10]
        # The float64 re-run of the original shows how much error is plain float32 rounding.
        assert all(c["reference_rounding_err"] is not None for c in cand["checks"])
    clones = [c for c in m["candidates"] if c["format"] in ("state_dict", "safetensors", "torchscript", "torch_export")]
    assert all(check["bit_exact"] for c in clones for check in c["checks"])


def test_golden_outputs_reproduce_with_a_plain_onnxruntime_session(mlp_folder: Path) -> None:
    """What a consumer in another service does: open the .onnx file, feed the golden inputs."""
    m = load_manifest(mlp_folder)
    session = ort.InferenceSession(str(mlp_folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    assert session.get_inputs()[0].shape == ["batch", 20]
    sets = [(m["golden"]["inputs"], m["golden"]["outputs"])] + [
        (s["inputs"], s["outputs"]) for s in m["golden"]["sets"]
    ]
    for inputs_path, outputs_path in sets:
        inputs = dict(np.load(mlp_folder / inputs_path, allow_pickle=False))
        expected = dict(np.load(mlp_folder / outputs_path, allow_pickle=False))
        (got,) = session.run(["output"], inputs)
        np.testing.assert_allclose(got, expected["output"], atol=1e-5, rtol=1e-5)


def test_onnx_is_one_self_contained_file(mlp_folder: Path) -> None:
    assert not list(mlp_folder.glob("*.data"))
    onnx.checker.check_model(str(mlp_folder / "model.onnx"), full_check=True)


def test_report_has_the_parity_table_and_one_deprecation_note(mlp_folder: Path) -> None:
    text = (mlp_folder / "report.md").read_text()
    assert "Verdict: PASS" in text
    for cand in CANDIDATES:
        assert f"| {cand} | example | output |" in text
    assert text.count("TorchScript is deprecated upstream") == 1


def test_golden_inputs_hold_the_example_x(mlp_folder: Path) -> None:
    x = read_npz(mlp_folder / "golden" / "inputs.npz")["x"]
    assert x.shape == (2, 20) and x.dtype == np.float32


def test_rerun_replaces_a_folder_modelport_wrote(artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "--out", str(artifact_copy), "--formats", "state_dict", "--quiet")
    assert result.code == 0, result.err
    assert not (artifact_copy / "model.onnx").exists()
    assert load_manifest(artifact_copy)["options"]["formats"] == ["state_dict"]
    assert not list(artifact_copy.parent.glob(".*modelport-*")), "staging folders must not be left behind"


def test_force_replaces_a_foreign_folder(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "foreign"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = cli("run", "--out", str(target), "--formats", "safetensors", "--force", "--quiet")
    assert result.code == 0, result.err
    assert not (target / "notes.txt").exists() and (target / "manifest.json").exists()


def test_unselected_formats_are_skipped_with_the_reason(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "o", formats="state_dict")
    stages = {s.name: s for s in report.stages}
    assert stages["onnx"].status == "skipped" and "not selected" in (stages["onnx"].reason or "")
    assert [c.candidate for c in report.candidates] == ["state_dict@torch"]
    assert report.verdict == "pass" and report.exit_code == 0


def test_global_tolerance_never_loosens_the_clones_unless_named(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "o", formats="state_dict,safetensors", atol=0.5, tol="safetensors=1e-3,0")
    assert report.tolerances["state_dict"].atol == 0 and report.tolerances["state_dict"].source == "default"
    assert report.tolerances["safetensors"].atol == 1e-3 and report.tolerances["safetensors"].source == "--tol"


def test_a_parity_failure_fails_the_run_and_is_recorded(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """ONNX Runtime is not bit-exact on this MLP, so an exact tolerance must fail, not warn."""
    out = tmp_path / "strict"
    result = cli("run", "--out", str(out), "--formats", "onnx", "--tol", "onnx=0,0")
    assert result.code == 1
    assert "FAIL" in result.out and "onnx@onnxruntime" in result.out
    m = load_manifest(out)
    assert m["verdict"] == "fail"
    failing = [c for c in m["candidates"][0]["checks"] if c["verdict"] == "fail"]
    assert failing and all(c["category"] == "accuracy" and c["mismatches"] > 0 for c in failing)


def test_an_export_failure_is_reported_and_leaves_no_artifact(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "opset7"
    result = cli("run", "--out", str(out), "--formats", "onnx", "--opset", "7")
    assert result.code == 1
    m = load_manifest(out)
    onnx_stage = next(s for s in m["stages"] if s["name"] == "onnx")
    assert onnx_stage["status"] == "failed" and "opset" in onnx_stage["reason"]
    assert m["candidates"][0]["category"] == "export"
    assert not (out / "model.onnx").exists()


@pytest.mark.parametrize(("exporter", "ir_version"), [("legacy", 9), ("dynamo", 10)])
def test_both_onnx_exporters_produce_a_dynamic_batch(tmp_path: Path, exporter: str, ir_version: int) -> None:
    report = modelport.run(out=tmp_path / exporter, formats="onnx", onnx_exporter=exporter)  # type: ignore[arg-type]
    assert report.verdict == "pass"
    assert report.formats["onnx"].details["exporter"] == exporter
    assert report.formats["onnx"].details["ir_version"] == ir_version
    dim = onnx.load(str(tmp_path / exporter / "model.onnx")).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"


def test_no_exporter_noise_reaches_the_user(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """TorchScript's deprecation warnings and the dynamo exporter's progress lines stay out of the output."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modelport.run(out=tmp_path / "o", formats="torchscript,onnx")
    leaked = [str(w.message) for w in caught if "jit" in str(w.message) or "LeafSpec" in str(w.message)]
    assert leaked == []
    out, err = capfd.readouterr()
    assert "[torch.onnx]" not in out + err
    assert "torchvision" not in out + err


def test_moved_folder_still_verifies(mlp_folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "mlp"
    shutil.copytree(mlp_folder, target)
    assert modelport.verify(target).verdict == "pass"


def test_golden_sets_replay_from_the_onnx_test_data_layout(mlp_folder: Path) -> None:
    """test_data_set_N/input_K.pb and output_K.pb: what ONNX test runners and protobuf readers consume."""
    m = load_manifest(mlp_folder)
    session = ort.InferenceSession(str(mlp_folder / "model.onnx"), providers=["CPUExecutionProvider"])
    dirs = [m["golden"]["onnx_test_data"]] + [s["onnx_test_data"] for s in m["golden"]["sets"]]
    assert dirs == [f"golden/onnx/test_data_set_{i}" for i in range(len(dirs))]
    for rel in dirs:
        tensors = {}
        for kind in ("input_0", "output_0"):
            proto = onnx.TensorProto()
            proto.ParseFromString((mlp_folder / rel / f"{kind}.pb").read_bytes())
            tensors[proto.name] = onnx.numpy_helper.to_array(proto)
        (got,) = session.run(["output"], {"x": tensors["x"]})
        np.testing.assert_allclose(got, tensors["output"], atol=1e-5, rtol=1e-5)
    roles = {a["role"] for a in m["artifacts"] if a["path"].startswith("golden/onnx/")}
    assert roles == {"golden-onnx-inputs", "golden-onnx-outputs"}


def test_stages_report_start_progress_and_end_while_they_run(tmp_path: Path) -> None:
    """A front end can show a long export while it runs: each stage starts, may report progress, then ends."""
    from modelport.pipeline.stages import StageEvent

    events: list[StageEvent] = []
    ended: list[str] = []
    report = modelport.run(
        out=tmp_path / "out", formats="onnx", samples=0, on_event=events.append, on_stage=lambda r: ended.append(r.name)
    )
    assert report.verdict == "pass"
    ran = [r.name for r in report.stages if r.status != "skipped"]
    for name in ran:
        kinds = [e.kind for e in events if e.stage == name]
        assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"progress"}, (name, kinds)
    assert ("onnx", "progress", "loading model.onnx back") in [(e.stage, e.kind, e.message) for e in events]
    assert any(e.stage == "validate" and e.message == "checking onnx@onnxruntime" for e in events)
    skipped = [r.name for r in report.stages if r.status == "skipped"]
    assert all([e.kind for e in events if e.stage == name] == ["end"] for name in skipped)
    assert ended == [r.name for r in report.stages]  # on_stage: each record as its stage ends, in order


def test_log_json_writes_every_stage_event_as_a_json_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    import json

    log = tmp_path / "events.jsonl"
    result = cli("run", "--out", str(tmp_path / "out"), "--formats", "onnx", "--samples", "0", "--log-json", str(log))
    assert result.code == 0, result.err
    events = [json.loads(line) for line in log.read_text().splitlines()]
    ended = [e["record"]["name"] for e in events if e["kind"] == "end"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert ended == [s["name"] for s in manifest["stages"]]
    assert {"stage": "onnx", "kind": "progress", "message": "loading model.onnx back"} in [
        {k: e[k] for k in ("stage", "kind", "message") if k in e} for e in events
    ]
    assert all(isinstance(e["time"], float) for e in events)
    refused = cli("run", "--out", str(tmp_path / "other"), "--log-json", str(tmp_path))
    assert refused.code == 2 and "--log-json" in refused.err and not (tmp_path / "other").exists()
