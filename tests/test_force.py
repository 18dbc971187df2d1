"""--force: what a run may replace. A .git or the model's own source is never replaced; any other
folder modelport did not write is moved aside (undoable), never deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = ("--formats", "onnx", "--samples", "0", "--quiet")
MODEL = "import torch\n\ndef make():\n    return torch.nn.Linear(4, 2), torch.randn(2, 4)\n"


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("git", ["dir", "file", "nested"])
def test_a_folder_holding_git_is_refused_even_with_force(tmp_path: Path, cli, git: str) -> None:  # type: ignore[no-untyped-def]
    clone = tmp_path / "clone"
    where = clone / "sub" if git == "nested" else clone
    where.mkdir(parents=True)
    if git == "file":  # a worktree's or submodule's .git is a file
        (where / ".git").write_text("gitdir: /elsewhere\n")
    else:
        (where / ".git").mkdir()
        (where / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (clone / "README.md").write_text("my project")
    before = _snapshot(clone)
    result = cli("run", "--out", str(clone), *TINY, "--force")
    assert result.code == 2
    _one_line(result.err, ".git", "--force or not")
    assert _snapshot(clone) == before
    assert not list(tmp_path.glob(".clone*"))


@pytest.mark.parametrize("depth", ["beside", "below"])
def test_the_folder_holding_the_model_file_is_refused_even_with_force(tmp_path: Path, cli, depth: str) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    src = project if depth == "beside" else project / "src"
    src.mkdir(parents=True)
    (src / "net.py").write_text(MODEL)
    before = _snapshot(project)
    result = cli("run", "--model", f"{src / 'net.py'}:make", "--out", str(project), *TINY, "--force")
    assert result.code == 2
    _one_line(result.err, "net.py", "which this run reads")
    assert _snapshot(project) == before and not list(tmp_path.glob(".project*"))


def test_the_folder_holding_the_weights_file_is_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    first = tmp_path / "first"
    assert cli("run", "--out", str(first), *TINY).code == 0  # a modelport folder (replaceable without --force)
    import torch

    from modelport.models.source import BUILTIN

    torch.save(BUILTIN["mlp"].build(0)[0].state_dict(), first / "trained.pt")
    result = cli("run", "--out", str(first), *TINY, "--weights", str(first / "trained.pt"), "--force")
    assert result.code == 2
    _one_line(result.err, "trained.pt", "which this run reads")
    assert (first / "trained.pt").exists()


def test_force_moves_a_foreign_folder_aside_instead_of_deleting_it(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out"
    (target / "data").mkdir(parents=True)
    (target / "data" / "table.csv").write_text("1,2,3")
    before = _snapshot(target)
    refused = cli("run", "--out", str(target), *TINY)
    assert refused.code == 2
    _one_line(refused.err, "not empty", "--force to move it aside")
    assert _snapshot(target) == before

    result = cli("run", "--out", str(target), *TINY, "--force")
    assert result.code == 0, result.err
    aside = list(tmp_path.glob(".out.modelport-replaced-*"))
    assert len(aside) == 1 and _snapshot(aside[0]) == before, "the old folder, whole, beside the new one"
    _one_line(result.err, "moved aside, not deleted", str(aside[0]), "undo")
    assert (target / "manifest.json").is_file() and not (target / "data").exists()
    assert cli("verify", str(target), "--require-signature", "--quiet").code == 0

    again = cli("run", "--out", str(target), *TINY)  # a folder modelport wrote: replaced, nothing set aside
    assert again.code == 0 and again.err == ""
    assert list(tmp_path.glob(".out.modelport-replaced-*")) == aside
