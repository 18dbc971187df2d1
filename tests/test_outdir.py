"""The output folder is never half-written, never someone else's, and never left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import modelport
from modelport import exporters


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_foreign_manifest_json_is_not_mistaken_for_ours(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "my app"}')
    (app / "src" / "main.js").write_text("important")
    result = cli("run", "--out", str(app), "--formats", "state_dict")
    assert result.code == 2 and "not a modelport manifest" in result.err
    assert (app / "src" / "main.js").read_text() == "important"


def test_files_added_to_a_modelport_folder_are_not_deleted_silently(artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (artifact_copy / "NOTES.md").write_text("my notes")
    result = cli("run", "--out", str(artifact_copy), "--formats", "state_dict")
    assert result.code == 2 and "NOTES.md" in result.err and "--force" in result.err
    assert (artifact_copy / "NOTES.md").exists()


def test_interrupted_export_keeps_the_previous_folder(artifact_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch wraps a Ctrl-C during export in its own error; the run must still stop and change nothing."""
    before = _listing(artifact_copy)

    def interrupted(request):  # type: ignore[no-untyped-def]
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Failed to export the model with torch.export") from e

    monkeypatch.setattr(exporters.get("onnx"), "export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        modelport.run(out=artifact_copy, formats="onnx")
    assert _listing(artifact_copy) == before
    assert not list(artifact_copy.parent.glob(".*modelport-*"))


def test_an_aborted_run_removes_the_parents_it_created(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "new" / "deep" / "out"
    result = cli("run", "--model", "tests/zoo.py:no_example", "--out", str(out))  # no --input: bad usage
    assert result.code == 2 and "--input" in result.err
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_staging_folder_is_swept(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.modelport-staging-{dead.stdout.strip()}-abc"
    (stale / "golden").mkdir(parents=True)
    # A live pid proves nothing (pids are reused): the lock says whether a run owns them, and none holds it.
    reused = tmp_path / f".out.modelport-staging-{os.getppid()}-xyz"
    reused.mkdir()
    other = tmp_path / f".other.modelport-staging-{dead.stdout.strip()}-abc"  # another folder's: not ours to sweep
    other.mkdir()
    assert cli("run", "--out", str(tmp_path / "out"), "--formats", "state_dict", "--quiet").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "out"]  # the lock file is gone too


def test_a_symlinked_out_is_written_through(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    real = tmp_path / "real"
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert cli("run", "--out", str(link), "--formats", "state_dict", "--quiet").code == 0
    assert link.is_symlink() and json.loads((real / "manifest.json").read_text())["verdict"] == "pass"


def test_a_path_too_long_is_a_usage_error(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "--out", str(tmp_path / ("a" * 300)), "--formats", "state_dict")
    assert result.code == 2 and "Traceback" not in result.err
    result = cli("verify", str(tmp_path / ("a" * 300)))
    assert result.code == 2 and "Traceback" not in result.err


def test_report_json_at_a_folder_exits_2_before_anything_is_written(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "reports").mkdir()
    out = tmp_path / "out"
    for cmd in (["run", "--out", str(out), "--formats", "state_dict"], ["run", "--formats", "state_dict"]):
        result = cli(*cmd, "--report-json", str(tmp_path / "reports"))
        assert result.code == 2 and "--report-json" in result.err and "is a folder" in result.err
        assert result.out == "" and not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


@pytest.fixture
def mount(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Mount a small tmpfs (root with CAP_SYS_ADMIN only, else skip); unmounted after the test."""
    mounted: list[Path] = []

    def make(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)]).returncode:
            pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


def test_out_on_a_read_only_mount_exits_2_before_any_work(mount, cli) -> None:  # type: ignore[no-untyped-def]
    ro = mount("ro", "ro,size=1m")
    result = cli("run", "--out", str(ro / "deep" / "out"), "--formats", "state_dict")
    assert result.code == 2 and "read-only filesystem" in result.err and result.out == ""
    assert list(ro.iterdir()) == []


def test_not_enough_free_disk_exits_2_before_any_export(mount, cli) -> None:  # type: ignore[no-untyped-def]
    small = mount("small", "size=1m")
    result = cli("run", "--out", str(small / "out"), "--formats", "state_dict,onnx")
    assert result.code == 2 and "not enough free disk" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert list(small.iterdir()) == []  # staging folder and lock removed
    assert "state_dict" not in result.out  # refused after the build, before the first export


def test_an_immutable_previous_folder_exits_2_before_any_work(artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(artifact_copy)]).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        before = _listing(artifact_copy)
        result = cli("run", "--out", str(artifact_copy), "--formats", "state_dict")
        assert result.code == 2 and "immutable" in result.err and result.out == ""
    finally:
        subprocess.run(["chattr", "-i", str(artifact_copy)], check=True)
    assert _listing(artifact_copy) == before
    assert sorted(p.name for p in artifact_copy.parent.iterdir()) == ["copy"]


def test_a_run_killed_between_the_two_renames_is_restored_by_verify(artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Where renameat2 is missing, a kill between the renames leaves the target aside: verify restores it first."""
    before = _listing(artifact_copy)
    aside = artifact_copy.parent / ".copy.modelport-old-4242-abcd"
    artifact_copy.rename(aside)
    assert cli("verify", str(artifact_copy), "--quiet").code == 0
    assert _listing(artifact_copy) == before and not aside.exists()


def test_not_enough_free_memory_is_refused_after_the_build_before_any_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.errors import UsageError
    from modelport.pipeline import preflight

    real = preflight.available_memory()
    assert real is not None and real > 0  # read from /proc/meminfo on Linux
    weights = (20 * 256 + 256 + 256 * 10 + 10) * 4
    monkeypatch.setattr(preflight, "available_memory", lambda: weights)  # less than the model plus the margin
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=r"not enough free memory for this model: 0\.0 GiB available, about 0\.5 GiB"):
        modelport.run(out=out, formats=["state_dict"])
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_disk_check_counts_each_formats_share_of_the_weights() -> None:
    """float16 files hold half the float32 bytes and int8 a quarter: `--formats all` of a 6.4 GB model needs
    about 45 GB, not 8 full copies (57 GB), which refused a run that fitted."""
    from modelport.pipeline.preflight import disk_needed

    gb = 10**9
    base = disk_needed(gb, [])
    assert disk_needed(gb, ["onnx"]) - base == gb
    assert disk_needed(gb, ["onnx", "onnx_fp16", "onnx_int8"]) - base == gb + gb // 2 + gb // 4
