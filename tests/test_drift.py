"""verify --against: the drift of golden outputs between two artifact folders (e.g. two releases)."""

from __future__ import annotations

from pathlib import Path

import torch

import modelport
from modelport.models import BUILTIN


def _release(tmp_path: Path, name: str, bias_shift: float) -> Path:
    model = BUILTIN["mlp"].build(0)[0]
    state = model.state_dict()
    state["output.bias"] = state["output.bias"] + bias_shift
    torch.save(state, tmp_path / f"{name}.pt")
    out = tmp_path / name
    report = modelport.run(out=out, weights=tmp_path / f"{name}.pt", formats="onnx", samples=1)
    assert report.verdict == "pass"
    return out


def test_drift_is_reported_per_set_and_output(tmp_path: Path) -> None:
    old, new = _release(tmp_path, "v1", 0.0), _release(tmp_path, "v2", 1e-3)
    report = modelport.verify(new, against=old)
    assert report.verdict == "pass"  # reported, not judged, without --max-drift
    assert {c.input_set for c in report.drift} >= {"example", "random_1", "batch_1", "batch_64"}
    # A bias moved by 1e-3 moves every output by 1e-3 (up to float32 rounding of large outputs).
    assert all(abs((c.max_abs_err or 0) - 1e-3) < 1e-4 for c in report.drift)


def test_max_drift_turns_drift_into_a_failure(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    old, new = _release(tmp_path, "v1", 0.0), _release(tmp_path, "v2", 1e-3)
    result = cli("verify", str(new), "--against", str(old), "--max-drift", "1e-4", "--quiet")
    assert result.code == 1 and "FAIL drift example output" in result.out
    assert cli("verify", str(new), "--against", str(old), "--max-drift", "1e-2", "--quiet").code == 0


def test_identical_releases_have_no_drift(tmp_path: Path) -> None:
    old, new = _release(tmp_path, "v1", 0.0), _release(tmp_path, "v1b", 0.0)
    report = modelport.verify(new, against=old, max_drift="0")
    assert report.verdict == "pass" and all(c.bit_exact for c in report.drift)


def test_sets_with_other_inputs_are_not_compared(tmp_path: Path) -> None:
    old = tmp_path / "seed1"
    assert modelport.run(out=old, formats="onnx", samples=1, seed=1).verdict == "pass"
    new = tmp_path / "seed0"
    assert modelport.run(out=new, formats="onnx", samples=1, seed=0).verdict == "pass"
    report = modelport.verify(new, against=old)
    assert any("random_1 has other inputs" in n for n in report.notes)
    assert {c.input_set for c in report.drift} == {"zeros"}  # the one set both seeds share


def test_max_drift_without_against_is_a_usage_error(mlp_folder: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify", str(mlp_folder), "--max-drift", "1e-3")
    assert result.code == 2 and "--max-drift needs --against" in result.err
