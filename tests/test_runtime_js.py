"""The JavaScript runtimes: ``node`` (onnxruntime-node) and ``browser`` (onnxruntime-web in headless Chromium).

Each runs real ONNX artifacts that ``modelport run`` wrote and must match their golden outputs; a perturbed
artifact must fail; a runtime program that hangs, crashes or answers garbage must fail cleanly. Needs
``make runtimes`` (a missing runtime skips; under MODELPORT_REQUIRE_RUNTIMES=1 it fails).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from runtime_harness import available_or_skip, golden_sets, replay

import modelport
from modelport import exporters
from modelport.errors import LoadError
from modelport.pipeline.manifest import read_manifest
from modelport.runtimes import _js
from modelport.runtimes._page_server import PageServer
from modelport.runtimes.base import Artifact, Session, SetResult, Unsupported
from modelport.runtimes.browser import BrowserRuntime, chromium_executable, driver_command
from modelport.runtimes.node import NodeRuntime
from modelport.runtimes.plan import artifact_for
from modelport.runtimes.process import run_program
from modelport.validators.compare import compare_outputs

pytestmark = pytest.mark.runtimes

JS = ["node", "browser"]
DOUBLES = Path(__file__).parent / "runtime_doubles"
# Models whose tensors cover the exchange's dtypes: float64 and float16 in and out, int64 in,
# int64 and bool out (with -inf logits), a 0-d input and output.
DTYPE_MODELS = [
    "tests/zoo.py:double",
    "tests/zoo.py:half",
    "tests/edge_models.py:two_tables",
    "tests/edge_models.py:mixed_outputs",
    "tests/edge_models.py:scalars",
]


def _onnx_folder(spec: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("js") / spec.rsplit(":", 1)[-1]
    report = modelport.run(spec, out=folder, formats="onnx", samples=0)
    assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]
    return folder


@pytest.fixture(scope="module")
def multi_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two inputs (image, features), four outputs (score, embedding, parts.0, parts.1)."""
    return _onnx_folder("tests/zoo.py:multi_input", tmp_path_factory)


@pytest.fixture(scope="module", params=DTYPE_MODELS)
def dtype_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _onnx_folder(request.param, tmp_path_factory)


def _judge(name: str, folder: Path) -> tuple[list[str], Session, list[SetResult]]:
    """Replay every golden set of the folder's onnx artifact in runtime ``name`` in one session.

    Returns the failed checks' messages, the (closed) session and its results. The tolerance is the onnx
    format's default for the model's dtypes (a float16 model gets its floor).
    """
    runtime = available_or_skip(name)
    manifest = read_manifest(folder)
    sets = golden_sets(folder)
    session = runtime.open(artifact_for(folder, manifest, "onnx"), timeout=300)
    try:
        results = session.infer_all([inputs for _, inputs, _ in sets])
    finally:
        session.close()
    tol = exporters.default_tolerance("onnx", manifest.model.dtypes)
    failed = []
    for (set_name, _, reference), result in zip(sets, results, strict=True):
        assert result.outputs is not None, f"{name} failed on {set_name}: {result.error}"
        for check in compare_outputs(reference, result.outputs, tol, input_set=set_name):
            assert check.dtype_match and check.shape_match, check.message
            if check.verdict == "fail":
                failed.append(f"{set_name}/{check.output}: {check.message}")
    return failed, session, results


# --- the runtimes compute what the model computes ---------------------------------------------------------


@pytest.mark.parametrize("name", JS)
def test_runs_the_mlp_and_reports_itself(name: str, mlp_folder: Path) -> None:
    failed, session, results = _judge(name, mlp_folder)
    assert failed == [] and len(results) == len(golden_sets(mlp_folder))
    # The times and facts the program itself measured and reported, recorded per candidate.
    assert session.load_seconds is not None and all(r.seconds is not None for r in results)
    if name == "node":
        assert session.facts["onnxruntime-node"] == _js.package_version("onnxruntime-node")
        assert session.facts["node"][0].isdigit()
    else:
        assert session.facts["onnxruntime-web"] == _js.package_version("onnxruntime-web")
        assert session.facts["chromium"][0].isdigit()
        assert "HeadlessChrome/" in session.facts["user_agent"]


@pytest.mark.parametrize("name", JS)
def test_runs_a_multi_input_multi_output_model(name: str, multi_folder: Path) -> None:
    results, checks = replay(name, multi_folder, "onnx")
    assert {c.output for c in checks} == {"score", "embedding", "parts.0", "parts.1"}
    assert all(c.verdict == "pass" for c in checks), [c.message for c in checks if c.verdict == "fail"]
    assert len(results) == len(golden_sets(multi_folder)) == 5


@pytest.mark.parametrize("name", JS)
def test_every_exchanged_dtype_round_trips(name: str, dtype_folder: Path) -> None:
    failed, _, _ = _judge(name, dtype_folder)
    assert failed == []


def _perturb(folder: Path) -> None:
    """Scale the largest float initializer of the ONNX file by 1.001 and save it back (replay reads no hashes)."""
    path = folder / "model.onnx"
    model = onnx.load(path)
    weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    target = max(weights, key=lambda t: int(np.prod(t.dims)))
    target.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(target) * np.float32(1.001), target.name))
    onnx.save(model, path)


@pytest.mark.parametrize("name", JS)
def test_a_perturbed_artifact_fails(name: str, artifact_copy: Path) -> None:
    available_or_skip(name)
    assert _judge(name, artifact_copy)[0] == []  # the same copy passes before
    _perturb(artifact_copy)
    failed, _, _ = _judge(name, artifact_copy)
    assert any(f.startswith("example/") for f in failed), failed


@pytest.mark.parametrize("name", JS)
def test_runs_a_model_whose_weights_are_in_an_external_data_file(name: str, artifact_copy: Path) -> None:
    runtime = available_or_skip(name)
    model = onnx.load(artifact_copy / "model.onnx")
    onnx.save(model, artifact_copy / "model.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert (artifact_copy / "weights.bin").stat().st_size > (artifact_copy / "model.onnx").stat().st_size
    signature = read_manifest(artifact_copy).signature
    artifact = Artifact("onnx", "onnx", artifact_copy, ("model.onnx", "weights.bin"), signature)
    (_, inputs, reference), *_ = golden_sets(artifact_copy)
    session = runtime.open(artifact, timeout=300)
    (result,) = session.infer_all([inputs])
    assert result.outputs is not None, result.error
    checks = compare_outputs(reference, result.outputs, exporters.get("onnx").tolerance, input_set="example")
    assert all(c.verdict == "pass" for c in checks), [c.message for c in checks]


@pytest.mark.parametrize("name", JS)
def test_a_file_that_is_not_onnx_fails_with_the_runtimes_message(name: str, artifact_copy: Path) -> None:
    runtime = available_or_skip(name)
    (artifact_copy / "model.onnx").write_bytes(b"\x08\x07 certainly not a protobuf graph")
    session = runtime.open(artifact_for(artifact_copy, read_manifest(artifact_copy), "onnx"), timeout=300)
    with pytest.raises(LoadError, match=rf"onnx@{name}: node exited 1; stderr: .*[Pp]rotobuf parsing failed\.$"):
        session.infer_all([golden_sets(artifact_copy)[0][1]])


# --- a runtime program that misbehaves fails cleanly ------------------------------------------------------


def _node_session(mlp_folder: Path, double: str, monkeypatch: pytest.MonkeyPatch, timeout: float = 300):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELPORT_NODE", str(DOUBLES / double))
    runtime = NodeRuntime()
    return runtime.open(artifact_for(mlp_folder, read_manifest(mlp_folder), "onnx"), timeout=timeout)


def test_a_hanging_program_is_killed_at_the_timeout(
    mlp_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("DOUBLE_PIDFILE", str(pidfile))
    session = _node_session(mlp_folder, "hang.sh", monkeypatch, timeout=3)
    with pytest.raises(LoadError, match=r"onnx@node: hang.sh did not finish within 3 s and was killed.*hanging"):
        session.infer_all([golden_sets(mlp_folder)[0][1]])
    child = int(pidfile.read_text())
    for _ in range(50):  # the sleeping grandchild went with the process group
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the hanging program's child {child} was left running")


@pytest.mark.parametrize(
    ("double", "mode", "expected"),
    [
        ("crash.sh", "", r"onnx@node: crash.sh exited 3; stderr: Error: the double's model loader broke"),
        ("garbage.sh", "", r"onnx@node's sets.json"),
        ("answer.py", "short_file", r"onnx@node: output 'output' holds 76 bytes, its shape \[2, 10\] float32 needs 80"),
    ],
)
def test_a_program_that_crashes_or_writes_garbage_fails_cleanly(
    double: str, mode: str, expected: str, mlp_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOUBLE_MODE", mode)
    monkeypatch.setenv("DOUBLE_OUTPUT", read_manifest(mlp_folder).signature.output_names[0])
    session = _node_session(mlp_folder, double, monkeypatch)
    with pytest.raises(LoadError, match=expected):
        session.infer_all([golden_sets(mlp_folder)[0][1]])


@pytest.mark.parametrize(("mode", "category"), [("wrong_shape", "shape"), ("wrong_dtype", "dtype")])
def test_a_well_formed_wrong_answer_fails_its_checks(
    mode: str, category: str, mlp_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = read_manifest(mlp_folder).signature.output_names[0]
    (_, inputs, reference), *_ = golden_sets(mlp_folder)
    answer = tmp_path / "answer.bin"  # wrong_dtype answers the golden values themselves, as float64
    answer.write_bytes(reference[output].astype("<f8").tobytes())
    monkeypatch.setenv("DOUBLE_ANSWER", str(answer))
    monkeypatch.setenv("DOUBLE_MODE", mode)
    monkeypatch.setenv("DOUBLE_OUTPUT", output)
    session = _node_session(mlp_folder, "answer.py", monkeypatch)
    (result,) = session.infer_all([inputs])
    assert result.outputs is not None
    (check,) = compare_outputs(reference, result.outputs, exporters.get("onnx").tolerance, input_set="example")
    assert check.verdict == "fail" and check.category == category, check


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("page_error.html", r"double: node exited 1; stderr: browser: page error: the double page broke$"),
        (
            "page_outside.html",
            r"browser: the page requested http://192\.0\.2\.1/weights\.bin, outside http://127\.0\.0\.1:",
        ),
    ],
)
def test_the_browser_driver_fails_on_a_page_error_or_a_request_elsewhere(
    page: str, expected: str, tmp_path: Path
) -> None:
    available_or_skip("browser")
    node, chromium = str(_js.node_executable()), str(chromium_executable())
    env = {"NODE_PATH": str(_js.packages_dir() / "node_modules")}
    with PageServer({"/page.html": DOUBLES / page}) as server:
        cmd = driver_command(node, chromium, server.origin, ["model.onnx"], tmp_path, tmp_path)
        with pytest.raises(LoadError, match=expected):
            run_program(cmd, what="double", timeout=60, env=env)


# --- availability, install, size limit, page server ---------------------------------------------------------


def test_availability_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_NODE", str(tmp_path / "no-node"))
    for runtime in (NodeRuntime(), BrowserRuntime()):
        state = runtime.available()
        assert not state.ok and state.enable == "modelport doctor --install (make runtimes in a clone)"
        assert state.reason == f"MODELPORT_NODE={tmp_path / 'no-node'} is not an executable file"
    monkeypatch.delenv("MODELPORT_NODE")
    if _js.node_executable() is None:
        pytest.skip("node is not on PATH")
    # An empty cache, or one holding only a half install (killed before its rename): not installed.
    monkeypatch.setenv("MODELPORT_CACHE_DIR", str(tmp_path / "cache"))
    half = _js.packages_dir().parent / f".{_js.packages_dir().name}.tmp-999999999" / "node_modules"
    (half / "onnxruntime-node").mkdir(parents=True)
    (half / "onnxruntime-node" / "package.json").write_text('{"version": "1.30.0"}')
    state = NodeRuntime().available()
    assert not state.ok and state.reason == f"onnxruntime-node is not installed in {_js.packages_dir()}"
    monkeypatch.setenv("MODELPORT_CHROMIUM", str(tmp_path / "no-chromium"))
    state = BrowserRuntime().available()
    assert (
        state.reason
        == f"MODELPORT_CHROMIUM={tmp_path / 'no-chromium'} is not an executable file (Debian package chromium)"
    )


def test_install_is_done_once() -> None:
    available_or_skip("node")
    assert NodeRuntime().install() is None and BrowserRuntime().install() is None  # already there: no npm call


def test_a_model_beyond_wasm_memory_is_unsupported_in_the_browser(mlp_folder: Path, tmp_path: Path) -> None:
    shutil.copy(mlp_folder / "model.onnx", tmp_path / "model.onnx")
    with (tmp_path / "model.onnx.data").open("wb") as f:
        f.truncate(4 * 2**30 + 1)  # sparse: no disk used
    signature = read_manifest(mlp_folder).signature
    artifact = Artifact("onnx", "onnx", tmp_path, ("model.onnx", "model.onnx.data"), signature)
    reason = BrowserRuntime().unsupported(artifact)
    assert reason is not None and "more than the 4 GiB a wasm memory can hold" in reason
    available_or_skip("browser")
    with pytest.raises(Unsupported, match=r"onnx@browser: the model's files hold 4\.0 GiB"):
        BrowserRuntime().open(artifact, timeout=300)
    assert BrowserRuntime().unsupported(artifact_for(mlp_folder, read_manifest(mlp_folder), "onnx")) is None


def test_the_page_server_serves_only_the_listed_files(tmp_path: Path) -> None:
    from urllib.error import HTTPError
    from urllib.request import urlopen

    (tmp_path / "page.html").write_text("<p>hi</p>")
    (tmp_path / "secret.txt").write_text("not listed")
    with PageServer({"/page.html": tmp_path / "page.html"}) as server:
        assert server.origin.startswith("http://127.0.0.1:")
        with urlopen(f"{server.origin}/page.html") as response:
            assert response.read() == b"<p>hi</p>" and response.headers["Content-Type"].startswith("text/html")
        for path in ("/secret.txt", "/../secret.txt", "/%2e%2e/secret.txt", "/", "/favicon.ico"):
            with pytest.raises(HTTPError) as caught:
                urlopen(f"{server.origin}{path}")
            assert caught.value.code == 404, path
    assert server.refused == ["/secret.txt", "/../secret.txt", "/%2e%2e/secret.txt", "/", "/favicon.ico"]
