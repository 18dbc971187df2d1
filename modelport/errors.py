"""modelport's exceptions.

    ModelportError                 base of everything modelport raises on purpose
    ├── UsageError                 bad flags, bad paths, bad files handed to us: the CLI exits 2
    └── StageError                 a pipeline step could not do its job (export, load, run): exit 1
        ├── ExportError
        ├── LoadError
        ├── ParityFailure          validate: a candidate failed its checks (the details are in the records)
        ├── NotReproducible        --check-determinism: a second export gave other bytes
        └── WriteError             a file could not be written (disk full, size limit, read-only): the run stops

Messages are one line and end with what to do next. Third-party exceptions are
wrapped at the boundary with ``raise ... from e`` so the cause is kept.
"""

from __future__ import annotations

import errno
import re

__all__ = [
    "ExportError",
    "LoadError",
    "ModelportError",
    "NotReproducible",
    "ParityFailure",
    "StageError",
    "UsageError",
    "WriteError",
    "one_line",
    "raise_if_interrupted",
    "resource_error",
    "root_cause",
]


class ModelportError(Exception):
    """Base class for errors raised by modelport."""


class UsageError(ModelportError):
    """The user asked for something that cannot work as given (exit code 2)."""


class StageError(ModelportError):
    """A pipeline stage failed (exit code 1); other stages go on where they can."""


class ExportError(StageError):
    """An exporter could not write its artifact."""


class LoadError(StageError):
    """A saved artifact could not be loaded back by its runtime."""


class ParityFailure(StageError):
    """The validate stage found failing candidates; each one's checks say why."""


class NotReproducible(StageError):
    """A second export in a new process wrote other bytes (--check-determinism)."""


class WriteError(StageError):
    """A write failed for want of room or permission: the whole run stops (exit 1), the previous folder is kept.

    Not a failed format: a folder whose formats failed for want of disk must not replace a good one.
    """


# Errors that say the filesystem, not the model, is the problem.
_RESOURCE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def resource_error(exc: BaseException) -> OSError | None:
    """The disk-full, file-too-large or read-only OSError in ``exc``'s chain, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _RESOURCE_ERRNOS:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a ``raise ... from`` chain (where the real problem is usually named)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


_interrupted = False  # set by the CLI's SIGINT and SIGTERM handler (``interrupt``)


def interrupt(signum: int, frame: object) -> None:
    """The CLI's handler for Ctrl-C and SIGTERM: remember it, then unwind as Ctrl-C does."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if an interrupt came and was swallowed on its way (a KeyboardInterrupt raised
    inside a finalizer is printed and dropped by Python): called between stages, so a run still stops."""
    if _interrupted:
        raise KeyboardInterrupt


def raise_if_interrupted(exc: BaseException) -> None:
    """torch wraps a Ctrl-C during export in its own errors; a user's interrupt must still stop the run."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first meaningful line of an error message, without terminal colours, cut to ``limit`` characters."""
    text = _ANSI.sub("", str(exc)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(first) > limit:
        first = first[: limit - 3] + "..."
    return first
