"""CI outputs: the JSON report validates against the published schema, JUnit counts match the report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from modelport.pipeline.records import SCHEMA_VERSION
from modelport.schema import SCHEMA_FILES, report_schemas

ROOT = Path(__file__).resolve().parent.parent


def test_published_schemas_match_the_records() -> None:
    """schemas/*.json are what `python -m modelport.schema schemas` writes today: regenerate them on change."""
    for kind, schema in report_schemas().items():
        published = json.loads((ROOT / "schemas" / SCHEMA_FILES[kind]).read_text())
        assert published == json.loads(json.dumps(schema)), f"schemas/{SCHEMA_FILES[kind]} is stale"


def _outputs(tmp_path: Path) -> list[str]:
    return [
        "--report-json",
        str(tmp_path / "ci" / "report.json"),
        "--junit-xml",
        str(tmp_path / "ci" / "junit.xml"),
        "--summary-md",
        str(tmp_path / "ci" / "summary.md"),
    ]


def _junit_counts(path: Path) -> tuple[int, int, int]:
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    tests = failures = skipped = 0
    for case in cases:
        tests += 1
        failures += case.find("failure") is not None
        skipped += case.find("skipped") is not None
    assert (int(root.get("tests", -1)), int(root.get("failures", -1))) == (tests, failures)
    return tests, failures, skipped


def _validate(path: Path, kind: str) -> dict:  # type: ignore[type-arg]
    data = json.loads(path.read_text())
    schema = json.loads((ROOT / "schemas" / SCHEMA_FILES[kind]).read_text())
    jsonschema.validate(data, schema)
    assert data["schema_version"] == SCHEMA_VERSION and data["kind"] == kind
    return data  # type: ignore[no-any-return]


def test_run_outputs_validate_and_count_like_the_report(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "strict"
    # An exact ONNX tolerance fails some checks, so the failure paths are exercised too.
    result = cli("run", "--out", str(out), "--formats", "state_dict,onnx", "--tol", "onnx=0,0", *_outputs(tmp_path))
    assert result.code == 1
    data = _validate(tmp_path / "ci" / "report.json", "run")
    checks = [c for cand in data["candidates"] for c in cand["checks"]]
    failing = [c for c in checks if c["verdict"] == "fail"]
    assert failing and all(c["category"] == "accuracy" for c in failing)
    assert _junit_counts(tmp_path / "ci" / "junit.xml") == (len(checks), len(failing), 0)
    junit = (tmp_path / "ci" / "junit.xml").read_text()
    assert 'type="accuracy"' in junit and "max_abs_err=" in junit
    summary = (tmp_path / "ci" / "summary.md").read_text()
    assert "FAIL" in summary and "| onnx@onnxruntime |" in summary and "accuracy" in summary


def test_verify_outputs_name_integrity_failures(tmp_path: Path, artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (artifact_copy / "model.onnx").write_bytes(b"not onnx")  # a damaged file, not re-hashed
    result = cli("verify", str(artifact_copy), *_outputs(tmp_path))
    assert result.code == 1
    data = _validate(tmp_path / "ci" / "report.json", "verify")
    assert [p["path"] for p in data["integrity"]] == ["model.onnx"]
    _, failures, _ = _junit_counts(tmp_path / "ci" / "junit.xml")
    report_failures = len(data["integrity"]) + sum(
        len([c for c in cand["checks"] if c["verdict"] == "fail"]) or (cand["verdict"] == "fail")
        for cand in data["candidates"]
    )
    assert failures == report_failures
    assert 'classname="integrity"' in (tmp_path / "ci" / "junit.xml").read_text()


def test_passing_verify_json_validates(tmp_path: Path, artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify", str(artifact_copy), "--report-json", str(tmp_path / "v.json"))
    assert result.code == 0
    assert _validate(tmp_path / "v.json", "verify")["verdict"] == "pass"


@pytest.mark.parametrize("flag", ["--report-json", "--junit-xml", "--summary-md", "--report-html"])
def test_ci_outputs_inside_the_artifact_folder_are_refused(artifact_copy: Path, cli, flag: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify", str(artifact_copy), flag, str(artifact_copy / "out.txt"))
    assert result.code == 2 and "inside the artifact folder" in result.err


def test_every_verify_failure_reaches_the_junit_file(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A failed run's folder, drift beyond --max-drift and --target problems are all failures in JUnit too."""
    failed = tmp_path / "failed"
    assert cli("run", "--out", str(failed), "--formats", "onnx", "--tol", "onnx=0,0", "--samples", "0").code == 1
    old = tmp_path / "old"
    assert cli("run", "--out", str(old), "--formats", "onnx", "--samples", "0", "--seed", "0", "--quiet").code == 0
    junit = tmp_path / "junit.xml"
    result = cli(
        "verify", str(failed), "--against", str(old), "--max-drift", "0", "--target", "onnxruntime==1.17",
        "--junit-xml", str(junit), "--summary-md", str(tmp_path / "s.md"),
    )  # fmt: skip
    assert result.code == 1
    text = junit.read_text()
    assert 'classname="manifest" name="recorded verdict"' in text
    assert 'classname="load"' in text and "(--target)" in text
    summary = (tmp_path / "s.md").read_text()
    assert "- load: model.onnx" in summary and "the run that wrote this folder failed" in summary
    _, failures, _ = _junit_counts(junit)
    assert failures >= 2
