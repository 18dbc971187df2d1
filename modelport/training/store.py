"""A folder of checkpoints: names, writing one crash-safely, reading one back, and pruning.

``step-000000050.pt`` holds the state after step 50. Each is written through ``atomic_write`` (a
temporary file in the same folder, fsync, rename), then the folder itself is fsynced so the rename
survives a power cut. A checkpoint that does not read back whole (truncated, damaged, not ours) is
renamed aside to ``NAME.corrupt``: never deleted, never counted again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from modelport.checkpoint import CHECKPOINT_FORMAT
from modelport.errors import one_line
from modelport.fsutil import atomic_write, fsync_dir
from modelport.loaders import load_torch
from modelport.training.state import canonical, content_crc32

__all__ = [
    "CRASH_ENV",
    "KIND",
    "Found",
    "checkpoint_name",
    "crash_point",
    "list_steps",
    "newest",
    "prune",
    "read",
    "set_aside",
    "sweep",
    "write",
]

KIND = "training"
VERSION = 2
_NAME = re.compile(r"^step-(\d{9,})\.pt$")
# Test-only fault injection (tests/test_training_kill.py): POINT@STEP dies there by SIGKILL.
CRASH_ENV = "MODELPORT_TEST_TRAIN_CRASH"


def checkpoint_name(step: int) -> str:
    return f"step-{step:09d}.pt"


def crash_point(point: str, step: int) -> None:
    if os.environ.get(CRASH_ENV) == f"{point}@{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def list_steps(folder: Path) -> list[int]:
    """The steps of the checkpoints in ``folder``, oldest first (by name; validity is checked on read)."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name)))


class _HalfWayKill:
    """Test-only: a file handle that SIGKILLs the process once ``limit`` bytes went through it."""

    def __init__(self, fh: IO[bytes], limit: int) -> None:
        self._fh, self._limit, self._written = fh, limit, 0

    def write(self, data: bytes) -> int:
        n = self._fh.write(data)
        self._written += n
        if self._written >= self._limit:
            self._fh.flush()  # the half-written temporary file is on disk for the test to find
            os.kill(os.getpid(), signal.SIGKILL)
        return n

    def flush(self) -> None:
        self._fh.flush()


def _tensor_bytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def write(folder: Path, step: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as the checkpoint of ``step``, adding its format fields and CRC; fsync the folder."""
    body: dict[str, Any] = canonical(  # type: ignore[assignment]
        {"format": CHECKPOINT_FORMAT, "version": VERSION, "kind": KIND, "step": step, **payload}
    )
    body["crc32"] = content_crc32(body)
    path = folder / checkpoint_name(step)
    with atomic_write(path) as fh:
        if os.environ.get(CRASH_ENV) == f"mid-write@{step}":
            torch.save(body, _HalfWayKill(fh, _tensor_bytes(body) // 2))  # type: ignore[arg-type]
        else:
            torch.save(body, fh)
        crash_point("before-rename", step)
    fsync_dir(folder)
    crash_point("after-rename", step)
    return path


@dataclass(frozen=True)
class Found:
    path: Path
    step: int
    data: dict[str, Any]


def read(path: Path, step: int) -> Found | str:
    """The checkpoint at ``path``, or why it is not a whole one (a short phrase)."""
    try:
        data = load_torch(path)
    except Exception as e:  # a truncated zip, a damaged pickle, a refused global: all "unreadable"
        return f"unreadable ({type(e).__name__}: {one_line(e, 120)})"
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT or data.get("kind") != KIND:
        return "not a modelport training checkpoint"
    if data.get("step") != step:
        return f"it holds step {data.get('step')!r}, not {step}"
    stored = data.pop("crc32", None)
    if stored != content_crc32(data):
        return "its content does not match its CRC-32 (damaged on disk)"
    missing = [k for k in ("model", "optimizer", "rng", "settings") if k not in data]
    if missing:
        return f"it lacks {', '.join(missing)}"
    return Found(path, step, data)


def set_aside(path: Path) -> Path:
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    return aside


def newest(folder: Path, skipped: list[str]) -> Iterator[Found]:
    """Readable checkpoints, newest first; each one that is not is set aside and described in ``skipped``."""
    for step in reversed(list_steps(folder)):
        path = folder / checkpoint_name(step)
        found = read(path, step)
        if isinstance(found, Found):
            yield found
            continue
        aside = set_aside(path)
        skipped.append(f"skipped checkpoint {path}: {found}; kept aside as {aside.name}")


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints (after a new one is safely written)."""
    removed = []
    for step in list_steps(folder)[:-keep] if keep > 0 else []:
        path = folder / checkpoint_name(step)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def sweep(folder: Path) -> list[Path]:
    """Temporary files a process killed mid-write left behind (``.step-*.pt.*.part``)."""
    if not folder.is_dir():
        return []
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".step-") and p.name.endswith(".part")]
    for path in leftovers:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return leftovers
