"""The lock beside an artifact folder: one run at a time, and no verify while a run swaps it in.

``.NAME.modelport-lock`` sits in the target's parent (never inside the folder, which is swapped).
It is an ``flock``: the kernel drops it when its holder dies, so a lock left by a killed process
is simply taken by the next one. A run holds it exclusively from before any work until after the
commit; ``verify`` holds it shared, so several verifies run side by side but never during a run.
Neither waits: a busy lock is a usage error naming the holder's pid (written into the lock file).
The exclusive holder removes the file when it is done.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from modelport.errors import UsageError

__all__ = ["FolderLock", "lock_path"]

# Locks this process holds, by path: verify inside a run of the same process (tests) must not
# deadlock on its own lock.
_HELD: dict[Path, FolderLock] = {}


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.modelport-lock"


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text(encoding="ascii").strip() or "x")
        return f"process {pid}"
    return "another process"


class FolderLock:
    """An flock on ``lock_path(target)``; ``exclusive`` for a run, shared for verify."""

    def __init__(self, target: Path, *, exclusive: bool, what: str) -> None:
        self.path = lock_path(target)
        self.exclusive = exclusive
        self._what = what  # "--out DIR" or "DIR": how the error names the folder
        self._fd: int | None = None
        self._reentered = False

    def acquire(self) -> FolderLock:
        if self.path in _HELD:  # this process already holds it (a run that verifies what it wrote)
            self._reentered = True
            return self
        while True:
            fd = self._open()
            if fd is None:
                return self  # a read-only place with no lock file: no modelport run can be writing there
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(
                    f"{self._what} is in use by modelport {_holder(self.path)} (lock {self.path}); "
                    "wait for it to finish"
                ) from None
            # The previous holder may have removed the file between our open and our flock: lock the one there now.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        with contextlib.suppress(OSError):  # a lock opened read-only cannot carry the pid
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        _HELD[self.path] = self
        return self

    def _open(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or self.exclusive:
                raise UsageError(f"{self._what}: cannot create the lock {self.path}: {e.strerror or e}") from e
        try:
            return os.open(self.path, os.O_RDONLY)  # flock works on a read-only descriptor
        except FileNotFoundError:
            return None
        except OSError as e:
            raise UsageError(f"{self._what}: cannot open the lock {self.path}: {e.strerror or e}") from e

    def upgrade(self) -> bool:
        """Make a shared lock exclusive (to restore a folder); False when another holder shares it."""
        if self._fd is None or self._reentered:
            return self._reentered
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.exclusive = True
        return True

    def release(self) -> None:
        if self._reentered or self._fd is None:
            return
        _HELD.pop(self.path, None)
        fd, self._fd = self._fd, None
        try:
            if not self.exclusive:  # the last one out removes the file
                with contextlib.suppress(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self.exclusive = True
            if self.exclusive:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
