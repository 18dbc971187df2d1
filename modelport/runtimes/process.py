"""Running another runtime's program: a timeout, a reaped process group, the stderr tail on failure.

A program that hangs is killed (its whole process group) when its timeout passes; a browser that
playwright started in a group of its own exits when its driver's pipe closes (measured: within about
3 s, nothing left behind); one that crashes or exits non-zero gives a ``LoadError`` with the last lines
of its stderr; Ctrl-C kills it before propagating. Output goes to files, not pipes, so a chatty
program cannot block on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import LoadError

__all__ = ["DEFAULT_TIMEOUT", "Finished", "run_program", "stderr_tail"]

DEFAULT_TIMEOUT = 300.0  # seconds per program run: generous (a cold browser, a big model); --runtime-timeout


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def stderr_tail(text: str, lines: int = 5, limit: int = 600) -> str:
    """The last meaningful lines of a program's stderr, on one line."""
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    joined = " | ".join(kept)
    return joined[-limit:] if joined else "(no output on stderr)"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def run_program(
    cmd: Sequence[str],
    *,
    what: str,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> Finished:
    """Run ``cmd`` to completion in its own process group; ``what`` names it in errors ("onnx@node").

    A timeout, a signal or (with ``check``) a non-zero exit raises ``LoadError`` with the stderr tail.
    """
    environ = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(cmd), cwd=cwd, env=environ, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            raise LoadError(f"{what}: cannot start {cmd[0]}: {e.strerror or e}") from e
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            _kill_group(proc)
            err.seek(0)
            tail = stderr_tail(err.read().decode(errors="replace"))
            raise LoadError(
                f"{what}: {Path(cmd[0]).name} did not finish within {timeout:g} s and was killed "
                f"(raise --runtime-timeout if it is only slow); stderr: {tail}"
            ) from e
        except BaseException:  # Ctrl-C: never leave the program running
            _kill_group(proc)
            raise
        finally:
            # Children it left behind (a browser's renderers) go with the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    finished = Finished(proc.returncode, stdout, stderr, seconds)
    if check and proc.returncode != 0:
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited {proc.returncode}"
        raise LoadError(f"{what}: {Path(cmd[0]).name} {how}; stderr: {stderr_tail(stderr)}")
    return finished
