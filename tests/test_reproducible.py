"""Reproducible artifacts: the same seed and versions give the same bytes, wherever the run happens."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import load_manifest

import modelport

ROOT = Path(__file__).resolve().parent.parent
# timings, and TorchScript (allowed to differ)
VARIABLE = {"manifest.json", "report.md", "report.html", "model.torchscript.pt"}


def _hashes(folder: Path) -> dict[str, str]:
    return {a["path"]: a["sha256"] for a in load_manifest(folder)["artifacts"] if a["path"] not in VARIABLE}


def test_two_runs_from_different_folders_are_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outs = []
    for name in ("first", "second"):
        work = tmp_path / name / "deeper" / "work"
        work.mkdir(parents=True)
        monkeypatch.chdir(work)
        report = modelport.run(out=Path("artifacts") / "mlp", formats="all", samples=1)
        assert report.verdict == "pass"
        outs.append(work / "artifacts" / "mlp")
    first, second = (_hashes(o) for o in outs)
    assert first == second
    assert {"model.onnx", "model.pt2", "model.int8.onnx", "golden/inputs.npz"} <= set(first)


def _blobs(path: Path) -> list[bytes]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(n) for n in archive.namelist()]
    return [path.read_bytes()]


def test_artifacts_do_not_leak_the_builders_paths(mlp_folder: Path) -> None:
    """The dynamo exporter's stack traces name source files; they are stripped (names and scopes stay)."""
    leaks = [str(ROOT).encode(), str(mlp_folder.parent).encode(), b"site-packages"]
    for path in sorted(mlp_folder.rglob("*")):
        rel = path.relative_to(mlp_folder).as_posix()
        # TorchScript too: its debug records go
        if not path.is_file() or rel in {"manifest.json", "report.md", "report.html"}:
            continue
        for blob in _blobs(path):
            assert not any(leak in blob for leak in leaks), f"{rel} embeds a local path"
    import onnx

    node = onnx.load(str(mlp_folder / "model.onnx")).graph.node[0]
    keys = {p.key for p in node.metadata_props}
    assert "pkg.torch.onnx.stack_trace" not in keys
    assert {"namespace", "pkg.torch.onnx.name_scopes"} <= keys  # layer localisation needs these


def test_check_determinism_exports_again_in_a_new_process(tmp_path: Path) -> None:
    report = modelport.run(out=tmp_path / "d", formats="state_dict,torchscript,onnx", samples=1, check_determinism=True)
    assert report.verdict == "pass"
    assert report.determinism is not None and report.determinism.differs == []
    assert "model.onnx" in report.determinism.identical
    assert set(report.determinism.allowed_to_differ) <= {"model.torchscript.pt"}
    stage = next(s for s in report.stages if s.name == "determinism")
    assert stage.status == "ok"
