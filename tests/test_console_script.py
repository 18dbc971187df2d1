"""The installed console script, in real subprocesses (each pays 3-8 s of imports, so only a few)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import modelport

pytestmark = pytest.mark.slow


def _modelport() -> str:
    exe = Path(sys.executable).parent / "modelport"
    found = str(exe) if exe.exists() else shutil.which("modelport")
    assert found, "the modelport console script is not installed (pip install -e .)"
    return found


def test_version() -> None:
    proc = subprocess.run([_modelport(), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"modelport {modelport.__version__}"


def test_run_then_verify_as_a_user_would(tmp_path: Path) -> None:
    out = tmp_path / "artifacts" / "mlp"
    proc = subprocess.run([_modelport(), "run", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verdict: PASS" in proc.stdout
    assert "onnx@onnxruntime" in proc.stdout
    assert proc.stderr == "", "exporter noise must not reach the terminal"
    assert json.loads((out / "manifest.json").read_text())["verdict"] == "pass"

    proc = subprocess.run([_modelport(), "verify", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verdict: PASS" in proc.stdout


def test_python_dash_m_and_bad_usage_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelport", "run", "--out", str(tmp_path / "o"), "--formats", "bogus"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown format 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
