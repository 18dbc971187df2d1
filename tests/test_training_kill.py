"""Kill tests for `modelport train` (marker `kill`, `make kill`): real training processes killed by SIGKILL at
fault points (after a step, half-way through a checkpoint's bytes, before and after its rename) and at random
moments, then resumed in a new process: at most K steps are lost, and the final bytes equal an uninterrupted
run's. A file-size limit and a disk filling up during a checkpoint: one line, the previous checkpoint intact,
and the run resumes to the same bytes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import small_disk

from modelport.training import store
from tests.test_kill import ROOT, _limit_file_size, _wait_for

pytestmark = pytest.mark.kill

K = 10
RUN = ["--checkpoint-every", str(K), "--keep", "3"]


def _cmd(out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "modelport", "train", "--out", str(out), "--steps", str(steps), *RUN, *extra]


def _env(**extra: str) -> dict[str, str]:
    # Unbuffered: the progress line of every checkpoint is out before a kill can come.
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def _train(out: Path, steps: int, *extra: str, preexec: Callable[[], None] | None = None, **env: str):  # type: ignore[no-untyped-def]
    return subprocess.run(
        _cmd(out, steps, *extra), env=_env(**env), capture_output=True, text=True, timeout=180, preexec_fn=preexec
    )


def _ckpt(out: Path, step: int) -> Path:
    return out / "checkpoints" / store.checkpoint_name(step)


def _newest_valid(out: Path) -> int:
    """The step a resume would start from (read without setting anything aside)."""
    for step in reversed(store.list_steps(out / "checkpoints")):
        if isinstance(store.read(_ckpt(out, step), step), store.Found):
            return step
    return 0


def _parts(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob(".step-*.part"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 steps without a kill, in a process of its own."""
    out = tmp_path_factory.mktemp("train-kill") / "whole"
    done = _train(out, 60)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize(
    ("point", "step", "resumes_at"),
    [
        ("step", 35, 30),  # between checkpoints: the 5 steps since the last one are lost
        ("mid-write", 40, 30),  # half of step-40's bytes written: K steps lost, the half file never counts
        ("before-rename", 40, 30),  # written and fsynced, not yet renamed
        ("after-rename", 40, 40),  # renamed, older ones not yet pruned
    ],
)
def test_a_kill_at_each_point_loses_at_most_k_steps_and_resumes_to_the_same_bytes(
    uninterrupted: Path, tmp_path: Path, point: str, step: int, resumes_at: int
) -> None:
    out = tmp_path / "out"
    killed = _train(out, 60, MODELPORT_TEST_TRAIN_CRASH=f"{point}@{step}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _newest_valid(out) == resumes_at and step - resumes_at <= K
    if point in ("mid-write", "before-rename"):
        assert len(_parts(out)) == 1  # the interrupted write is there, under its temporary name only
    resumed = _train(out, 60, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"(step {resumes_at})" in resumed.stdout
    assert _parts(out) == []
    assert (out / "weights.pt").read_bytes() == (uninterrupted / "weights.pt").read_bytes()
    assert _ckpt(out, 60).read_bytes() == _ckpt(uninterrupted, 60).read_bytes()


def test_kills_at_random_moments_resume_to_the_same_bytes(tmp_path: Path) -> None:
    steps = 3000  # room for four kills of up to ~0.4 s of training each: no attempt may finish first
    whole = tmp_path / "whole"
    assert _train(whole, steps).returncode == 0
    out, rng = tmp_path / "out", random.Random(12)
    for attempt in range(4):
        proc = subprocess.Popen(
            _cmd(out, steps, *(["--resume"] if attempt else [])),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:  # after the process has written a checkpoint of its own, a kill at a random moment
            before = store.list_steps(out / "checkpoints")
            assert _wait_for(lambda seen=before: store.list_steps(out / "checkpoints") != seen, proc, timeout=120)
            time.sleep(rng.uniform(0, 0.4))
            proc.send_signal(signal.SIGKILL)
            printed, _ = proc.communicate(timeout=60)
            assert proc.returncode == -signal.SIGKILL  # killed while training, not after it had finished
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        saved = [int(line.split()[1].split("/")[0]) for line in printed.splitlines() if line.startswith("step ")]
        # Every checkpoint the process announced survived: a resume loses only what came after it.
        assert _newest_valid(out) >= max(saved, default=0)
    resumed = _train(out, steps, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "weights.pt").read_bytes() == (whole / "weights.pt").read_bytes()
    assert _parts(out) == []


def _assert_one_line_and_intact(done: subprocess.CompletedProcess[str], out: Path, reason: str) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], done.stderr
    assert f"checkpoint {_ckpt(out, 30)}" in lines[0] and f"{_ckpt(out, 20)} is intact" in lines[0]
    assert _newest_valid(out) == 20 and _parts(out) == []


def test_a_file_size_limit_during_a_checkpoint_keeps_the_previous_one(uninterrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _train(out, 20).returncode == 0
    # 20 kB: the lock file fits, a checkpoint (115 kB) does not. CPython ignores SIGXFSZ: the write fails (EFBIG).
    limited = _train(out, 40, "--resume", preexec=_limit_file_size(20_000))
    _assert_one_line_and_intact(limited, out, "File too large")
    assert _train(out, 40, "--resume").returncode == 0
    assert _ckpt(out, 40).read_bytes() == _ckpt(uninterrupted, 40).read_bytes()


def test_a_disk_filling_up_during_a_checkpoint_keeps_the_previous_one(uninterrupted: Path, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        out = disk / "out"
        assert _train(out, 20).returncode == 0
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 4096)
        os.truncate(filler, filler.stat().st_size - 48 * 1024)  # room for the lock, not for a checkpoint
        full = _train(out, 40, "--resume")
        _assert_one_line_and_intact(full, out, "No space left on device")
        filler.unlink()
        assert _train(out, 40, "--resume").returncode == 0
        assert _ckpt(out, 40).read_bytes() == _ckpt(uninterrupted, 40).read_bytes()
