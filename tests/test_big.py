"""A real model over 2 GiB end to end: the 3.2 GB MLP through `run` and `verify` (`make big`, marker `big`).

A scaled-down imitation cannot prove protobuf's limit: the ONNX graph must really be too large
for one message. Needs about 25 GB of disk and 10 GB of memory; figures are printed by
benchmarks/bench_big.py, never asserted here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

pytestmark = pytest.mark.big

SPEC = f"{Path(__file__).with_name('big_models.py')}:mlp_3g"


def _modelport(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *argv], capture_output=True, text=True, timeout=3600)


def test_a_3_gb_mlp_runs_verifies_and_moves(tmp_path: Path) -> None:
    out = tmp_path / "big"
    run = _modelport("run", "--model", SPEC, "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["parameters"] * 4 > 2**31  # over protobuf's limit, for real
    for name in ("onnx", "onnx_optimized"):
        graph, data = manifest["formats"][name]["files"]
        assert data == f"{graph}.data" and (out / graph).stat().st_size < 1 << 20  # the graph alone is small
        model = onnx.load(str(out / graph), load_external_data=False)
        locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
        assert locations == {data}
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    verify = _modelport("verify", str(moved), "--quiet")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
