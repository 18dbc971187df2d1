"""Kill tests (marker `kill`, `make kill`): whatever moment a run dies at, the target holds the old or the
new complete folder (or nothing, when there was none and the commit had not happened), and the next run
cleans or restores what the killed one left. Real `modelport run` processes, killed by SIGKILL."""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import small_disk

import modelport

pytestmark = pytest.mark.kill

ROOT = Path(modelport.__file__).resolve().parent.parent
FAST = ["--formats", "state_dict,onnx", "--samples", "0", "--quiet"]


def _spawn(out: Path, **env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    cmd = [sys.executable, "-m", "modelport", "run", "--out", str(out), *FAST]
    return subprocess.Popen(cmd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _leftovers(out: Path) -> list[str]:
    """Everything beside the target that a run may create: staging, old folders, the lock."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.modelport-"))


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the run neither reached the expected point nor ended")


def _staging(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.modelport-staging-*"))


def _manifest(out: Path) -> bytes | None:
    return (out / "manifest.json").read_bytes() if (out / "manifest.json").exists() else None


def _assert_intact(cli, out: Path, previous: bytes | None, *, committed: bool | None = None) -> None:  # type: ignore[no-untyped-def]
    """The target passes verify (the old or a new version), or is absent when there was none before."""
    result = cli("verify", str(out), "--quiet")  # restores a folder left aside first, if any
    if previous is None and not out.exists():
        assert committed is not True
        return
    assert result.code == 0, result.out + result.err
    if committed is False:
        assert _manifest(out) == previous
    elif committed is True:
        assert _manifest(out) != previous


# step -> whether the new folder is in place once the process dies there
EXCHANGE = {"commit-start": False, "exchanged": True, "exchange-synced": True, "committed": True}
TWO_RENAMES = {"commit-start": False, "renamed-old": None, "renamed-new": True, "committed": True}
FIRST = {"commit-start": False, "renamed-new": True, "committed": True}
CASES = (
    [("exchange", s, c) for s, c in EXCHANGE.items()]
    + [("two-renames", s, c) for s, c in TWO_RENAMES.items()]
    + [("first", s, c) for s, c in FIRST.items()]
)


@pytest.mark.parametrize(("path", "step", "committed"), CASES, ids=[f"{p}-{s}" for p, s, _ in CASES])
def test_a_kill_at_each_commit_step_leaves_a_complete_folder(  # type: ignore[no-untyped-def]
    tmp_path: Path, cli, path: str, step: str, committed: bool | None
) -> None:
    out = tmp_path / "out"
    previous = None
    if path != "first":  # a previous folder, from another seed so the two versions differ
        assert cli("run", "--out", str(out), *FAST, "--seed", "1").code == 0
        previous = _manifest(out)
    env = {"MODELPORT_TEST_CRASH_AT": step}
    if path == "two-renames":
        env["MODELPORT_TEST_NO_EXCHANGE"] = "1"
    proc = _spawn(out, **env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    if step == "renamed-old":  # the one moment the two-rename path leaves the target missing
        assert not out.exists() and any("-old-" in n for n in _leftovers(out))
    _assert_intact(cli, out, previous, committed=committed if previous is not None else None)
    assert cli("run", "--out", str(out), *FAST).code == 0  # the next run cleans up
    assert _leftovers(out) == []


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --force over a folder modelport did not write: step -> whether the new folder is in place once recovered
REPLACE_EXCHANGE = {"commit-start": False, "intent-written": False, "replace-exchanged": True, "replace-renamed": True}
REPLACE_TWO = {"intent-written": False, "replace-renamed-old": False, "replace-renamed": True, "committed": True}
REPLACE_CASES = [("exchange", s, c) for s, c in REPLACE_EXCHANGE.items()] + [
    ("two-renames", s, c) for s, c in REPLACE_TWO.items()
]


@pytest.mark.parametrize(("path", "step", "committed"), REPLACE_CASES, ids=[f"{p}-{s}" for p, s, _ in REPLACE_CASES])
def test_a_kill_while_force_moves_a_foreign_folder_aside_loses_neither(  # type: ignore[no-untyped-def]
    tmp_path: Path, cli, path: str, step: str, committed: bool
) -> None:
    """The foreign folder ends whole at the target (not committed) or at its -replaced- name (committed)."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "data.bin").write_bytes(os.urandom(1000))
    foreign = _snapshot(out)
    env = {"MODELPORT_TEST_CRASH_AT": step, **({"MODELPORT_TEST_NO_EXCHANGE": "1"} if path == "two-renames" else {})}
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    cmd = [sys.executable, "-m", "modelport", "run", "--out", str(out), *FAST, "--force"]
    done = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    if step == "replace-renamed-old":  # the one moment the target is missing: the foreign folder is aside
        assert not out.exists()
    cli("verify", str(out), "--quiet")  # finishes or undoes the replace first, under the lock
    aside = list(tmp_path.glob(".out.modelport-replaced-*"))
    if committed:
        assert cli("verify", str(out), "--quiet").code == 0
        assert len(aside) == 1 and _snapshot(aside[0]) == foreign
    else:
        assert _snapshot(out) == foreign and aside == []
    assert not list(tmp_path.glob(".out.modelport-intent-*"))
    again = cli("run", "--out", str(out), *FAST, "--force")  # the next run: nothing half-done is left
    assert again.code == 0, again.err
    assert [n for n in _leftovers(out) if "-replaced-" not in n] == []
    kept = list(tmp_path.glob(".out.modelport-replaced-*"))
    assert len(kept) == 1 and _snapshot(kept[0]) == foreign


def test_twenty_kills_at_random_moments(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL at random moments spread over the whole run (after start-up: once the staging folder exists),
    half with a previous folder, half without; both commit paths."""
    out = tmp_path / "out"
    rng = random.Random(8)
    span = 3.0  # seconds from the staging folder to the commit, roughly, on an idle 2-core machine
    finished = 0
    for i in range(20):
        if i % 2 == 0:
            shutil.rmtree(out, ignore_errors=True)
        previous = _manifest(out)
        env = {"MODELPORT_TEST_NO_EXCHANGE": "1"} if i % 4 >= 2 else {}
        proc = _spawn(out, **env)
        if _wait_for(lambda: bool(_staging(out)), proc):
            # The killed run's leftovers are gone by the time this run has its staging folder.
            assert len(_staging(out)) == 1 and not [n for n in _leftovers(out) if "-old-" in n]
            time.sleep(rng.uniform(0, span))
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            finished += 1  # it committed before the kill
        else:
            assert proc.returncode == -signal.SIGKILL, err
        _assert_intact(cli, out, previous)
    assert finished < 10  # the kills really land during the runs
    assert cli("run", "--out", str(out), *FAST).code == 0
    assert _leftovers(out) == []


def test_a_second_run_into_the_same_folder_exits_2_naming_the_first(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert cli("run", "--out", str(out), *FAST).code == 0
    before = _manifest(out)
    first = _spawn(out)
    try:
        assert _wait_for(lambda: bool(_staging(out)), first)
        second = cli("run", "--out", str(out), *FAST)
        assert second.code == 2 and f"in use by modelport process {first.pid}" in second.err
        assert len(second.err.strip().splitlines()) == 1
        busy = cli("verify", str(out))  # nor does verify read a folder a run may swap
        assert busy.code == 2 and f"process {first.pid}" in busy.err
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err  # the first run was not disturbed
    assert _manifest(out) != before and _leftovers(out) == []


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_mid_run_exits_1_in_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert cli("run", "--out", str(out), *FAST, "--seed", "1").code == 0
    before = _manifest(out)
    cmd = [sys.executable, "-m", "modelport", "run", "--out", str(out), *FAST]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # 20 kB: the golden data and report fit, state_dict.pt (34 kB) does not. CPython ignores SIGXFSZ itself,
    # so the write fails with EFBIG instead of killing the process.
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size(20_000)
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and "state_dict.pt" in lines[0], done.stderr
    assert _manifest(out) == before and _leftovers(out) == []
    assert cli("verify", str(out), "--quiet").code == 0


def test_a_disk_filling_up_mid_run_exits_1_in_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    with small_disk(tmp_path / "disk") as disk:
        out = disk / "out"
        assert cli("run", "--out", str(out), *FAST, "--seed", "1").code == 0
        before = _manifest(out)
        proc = _spawn(out)
        try:
            # Once the first format is written (after the pre-flight disk check), fill the disk.
            assert _wait_for(lambda: any((s / "state_dict.pt").exists() for s in _staging(out)), proc)
            with (disk / "filler").open("wb", buffering=0) as fh, pytest.raises(OSError):
                while True:
                    fh.write(b"\0" * 4096)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 1, err
        assert len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
        assert _manifest(out) == before and _leftovers(out) == []
        (disk / "filler").unlink()
        assert cli("verify", str(out), "--quiet").code == 0
