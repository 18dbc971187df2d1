"""Pre-flight checks: everything that can be known to fail is refused before minutes of work.

Each refusal is a UsageError (exit 2) in one line. Checked: the output folder's parent can be
written (not a read-only mount, not an immutable folder, permissions), the target folder can be
moved (not immutable), every CI output path is a file path that can be written, and there is
enough free disk for the model (``disk_needed``). The lock is the other pre-flight check
(``folder_lock``), taken by ``OutputFolder`` before any of these.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

from modelport.errors import UsageError
from modelport.memory import available_memory

__all__ = [
    "available_memory",
    "check_disk",
    "check_memory",
    "check_output_file",
    "check_replaceable",
    "check_writable_folder",
    "disk_needed",
]

_FS_IOC_GETFLAGS = 0x80086601  # linux/fs.h
_FS_IMMUTABLE_FL = 0x10
_FS_APPEND_FL = 0x20
_MARGIN = 1 << 20  # report.md, golden data, manifest: small next to the weights


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _immutable(path: Path) -> bool:
    """chattr +i or +a: even root cannot add, remove or rename entries there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, b"\0" * 4))[0]
    except OSError:  # a filesystem without the flags (tmpfs on older kernels, network mounts)
        return False
    finally:
        os.close(fd)
    return bool(flags & (_FS_IMMUTABLE_FL | _FS_APPEND_FL))


def _why_not_writable(folder: Path) -> str | None:
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return "it is on a read-only filesystem"
    if _immutable(folder):
        return "it is immutable (chattr +i or +a)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "you lack write permission there"
    return None


def check_writable_folder(what: str, path: Path) -> None:
    """Refuse when files cannot be created where ``path`` will be (its nearest existing folder)."""
    folder = _nearest_existing(path.parent)
    try:
        why = _why_not_writable(folder) if folder.is_dir() else f"{folder} is not a folder"
    except OSError as e:
        why = e.strerror or str(e)
    if why is not None:
        raise UsageError(f"{what} cannot be written in {folder}: {why}; choose another place")


def check_replaceable(what: str, target: Path) -> None:
    """A previous folder that cannot be moved aside would fail only at the final swap."""
    if target.is_dir() and _immutable(target):
        raise UsageError(f"{what}: the folder {target} is immutable (chattr +i) and cannot be replaced; choose another")


def check_output_file(flag: str, path: Path) -> None:
    """A CI output path (--report-json ...) must name a file that can be written, checked before any work."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file path such as {path / 'report.out'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} cannot be written: you lack write permission; choose another path")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{flag} {path} lies under {parent}, which is a file; choose another path")
    check_writable_folder(flag, path)


def disk_needed(parameter_bytes: int, formats: Sequence[str]) -> int:
    """The free disk a run needs: each format's share of the weights (every file holds them all; float16
    half, int8 a quarter), one more copy for the scratch files and the staging of derived formats, and
    1 MiB for the golden data, report and manifest (golden data grows with the inputs, not the weights)."""
    from modelport import exporters

    shares = sum(exporters.get(name).disk_share for name in formats)
    return int(parameter_bytes * (shares + 1)) + _MARGIN


def check_disk(what: str, folder: Path, needed: int) -> None:
    """Refuse when the filesystem of ``folder`` has less than ``needed`` bytes free."""
    free = None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(_nearest_existing(folder)).free
    if free is not None and free < needed:
        raise UsageError(
            f"{what}: not enough free disk in {folder}: {_mib(free)} free, about {_mib(needed)} needed "
            "(one copy of the weights per format, plus 1 MiB); free some space or choose another place"
        )


# What a run holds beside the model besides the artifact it checks: Python, torch and onnxruntime
# themselves, golden data, one input set's activations. Measured at 0.4 to 0.6 GB on the MLPs.
_MEMORY_MARGIN = 512 << 20


def check_memory(parameter_bytes: int) -> None:
    """Refuse a run that cannot fit: the model is built; every check loads one artifact beside it."""
    free = available_memory()
    needed = parameter_bytes + _MEMORY_MARGIN
    if free is not None and free < needed:
        raise UsageError(
            f"not enough free memory for this model: {_gib(free)} available, about {_gib(needed)} more needed "
            f"(each artifact is loaded back once beside the {_gib(parameter_bytes)} of weights, plus "
            f"{_gib(_MEMORY_MARGIN)}); close other programs or use a machine with more memory"
        )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
