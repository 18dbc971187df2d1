"""The output folder: checked before any work, built in a staging folder, swapped in at the end.

A run holds the folder's lock (``folder_lock``) from before any work until after the commit.
Everything is written into a hidden sibling folder, and only a complete folder (manifest
written last) replaces the target: ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one
step, so the target path holds the old or the new complete folder at every instant; the old
one, now under the staging name, is removed after. Where the kernel or libc lacks it, two
renames do the swap (target -> ``.NAME.modelport-old-*``, staging -> target), and the next
``run`` or ``verify`` on that path first restores the old folder if a kill left the target
missing (``recover``). If the run is aborted, the previous folder is untouched and the staging
folder removed; staging folders a killed process left are swept by the next run, under the lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from modelport.errors import UsageError
from modelport.fsutil import atomic_write, fsync_dir, publish_mode
from modelport.loaders.jsonsafe import UnsafeFile, parse_json
from modelport.pipeline.folder_lock import FolderLock
from modelport.pipeline.preflight import check_disk, check_replaceable, check_writable_folder
from modelport.signing import SIGNATURE_NAME

__all__ = [
    "MANIFEST_NAME",
    "SET_ASIDE",
    "OutputFolder",
    "check_output_path",
    "reading",
    "recover",
    "replace_policy",
    "written_by_modelport",
]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2

MANIFEST_NAME = "manifest.json"


def written_by_modelport(folder: Path) -> str | None:
    """None when ``folder`` holds exactly what a modelport manifest lists; otherwise why not."""
    try:
        data = parse_json((folder / MANIFEST_NAME).read_bytes(), MANIFEST_NAME)
    except (OSError, UnsafeFile):
        return f"it has no readable {MANIFEST_NAME} from modelport"
    if not isinstance(data, dict) or data.get("kind") != "run" or not isinstance(data.get("artifacts"), list):
        return f"its {MANIFEST_NAME} is not a modelport manifest"
    listed = {a.get("path") for a in data["artifacts"] if isinstance(a, dict)} | {MANIFEST_NAME, SIGNATURE_NAME}
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    extra = [p for p in extra if p not in listed]
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        return f"it holds files its manifest does not list ({shown})"
    return None


SET_ASIDE = "--force: the folder that was at --out was moved aside, not deleted"


def _git_inside(folder: Path) -> Path | None:
    """The first ``.git`` under ``folder`` (a clone, a worktree's .git file, a submodule), or None."""
    for top, dirs, files in os.walk(folder):
        if ".git" in dirs or ".git" in files:
            return Path(top) / ".git"
    return None


def replace_policy(out: Path, *, force: bool, protect: Sequence[Path] = ()) -> bool:
    """May a run replace the folder at ``out``? True when it is one modelport did not write, to be set aside.

    A folder modelport wrote (its manifest lists every file) is replaced. A folder that holds a
    ``.git`` or a file the run reads (``protect``: the --model file, --weights, --inputs) is refused
    even with --force: replacing it would lose the source. Any other non-empty folder needs --force,
    and is then moved aside to a hidden sibling, never deleted, so the replace can be undone.
    """
    if not out.is_dir() or not any(out.iterdir()):
        return False
    for path in protect:
        if Path(os.path.realpath(path)).is_relative_to(out):
            raise UsageError(f"--out {out} holds {path}, which this run reads; choose another --out (--force or not)")
    why = written_by_modelport(out)
    if why is None:
        return False
    git = _git_inside(out)
    if git is not None:
        raise UsageError(f"--out {out} holds {git} (a git repository); choose another --out (--force or not)")
    if not force:
        raise UsageError(
            f"--out {out} is not empty and {why}; choose an empty or new folder, or pass --force to move it aside"
        )
    return True


def check_output_path(out: Path, *, force: bool, protect: Sequence[Path] = ()) -> Path:
    """Refuse an output path that cannot work, before anything is written. Returns it absolute."""
    try:
        # A symlinked folder is written through: the link stays, its target is replaced.
        out = Path(os.path.realpath(out))
        cwd = Path.cwd().resolve()
        if out in (cwd, *cwd.parents, Path.home().resolve()):
            # --force replaces the whole folder: never the one the user works in, or above it.
            raise UsageError(f"--out {out} is the current folder, one above it, or your home; choose a subfolder")
        for parent in [out, *out.parents]:
            if parent.exists() and not parent.is_dir():
                if parent == out:
                    raise UsageError(f"--out {out} is a file, not a folder; choose a folder path")
                raise UsageError(f"--out {out} lies under {parent}, which is a file; choose a folder path")
        replace_policy(out, force=force, protect=protect)
    except OSError as e:
        raise UsageError(f"--out {out}: {e.strerror or e}") from e
    return out


def _crash_point(step: str) -> None:
    """Test-only fault injection (tests/test_kill.py): MODELPORT_TEST_CRASH_AT=STEP dies here by SIGKILL."""
    if os.environ.get("MODELPORT_TEST_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    if os.environ.get("MODELPORT_TEST_NO_EXCHANGE"):  # test-only: take the two-rename path
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a libc older than 2.28
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):  # an old kernel, or a filesystem without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _leftovers(target: Path, kind: str) -> list[Path]:
    return [p for p in target.parent.glob(f".{target.name}.modelport-{kind}-*") if p.is_dir()]


def recover(target: Path) -> None:
    """Under the exclusive lock: finish or undo what a killed commit left beside the target.

    A replace of a foreign folder (an intent file) is finished: the foreign folder ends at its
    ``-replaced-`` name with the new folder at the target, or goes back to the target if the new
    one never got there. A previous modelport folder a kill between the two renames left aside
    is restored when the target is missing, else removed (the second rename happened).
    """
    for intent in _intents(target):
        _finish_replace(target, intent)
    olds = sorted(_leftovers(target, "old"), key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        os.rename(olds.pop(), target)
        fsync_dir(target.parent)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def _intents(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.modelport-intent-*.json"))


def _finish_replace(target: Path, intent: Path) -> None:
    parent = target.parent
    try:
        body = parse_json(intent.read_bytes(), intent.name)
        names = {key: body[key] for key in ("staging", "aside", "manifest_sha256")}
    except (OSError, UnsafeFile, KeyError, TypeError):
        intent.unlink(missing_ok=True)  # not an intent modelport finished writing: nothing was moved yet
        return
    prefix = f".{target.name}.modelport-"
    if not all(isinstance(v, str) and "/" not in v for v in names.values()) or not (
        names["staging"].startswith(prefix + "staging-") and names["aside"].startswith(prefix + "replaced-")
    ):
        return  # not an intent modelport wrote: touch nothing
    staging, aside, digest = parent / names["staging"], parent / names["aside"], names["manifest_sha256"]
    if not target.exists() and aside.is_dir():  # killed between the two renames: the foreign folder goes back
        os.rename(aside, target)
    elif staging.is_dir() and target.is_dir() and _manifest_sha256(target) == digest:
        os.rename(staging, aside)  # exchanged, not yet renamed: the foreign folder lies under the staging name
    fsync_dir(parent)
    intent.unlink()


def _manifest_sha256(folder: Path) -> str | None:
    try:
        return hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()
    except OSError:
        return None


@contextlib.contextmanager
def reading(folder: Path) -> Iterator[None]:
    """For verify: hold the folder's lock shared (no run swaps it meanwhile), restoring it first if needed."""
    target = Path(os.path.realpath(folder))
    if not target.parent.is_dir():
        yield
        return
    lock = FolderLock(target, exclusive=False, what=str(folder)).acquire()
    try:
        if (_leftovers(target, "old") or _intents(target)) and lock.upgrade():
            with contextlib.suppress(OSError):  # a folder verify cannot repair is reported as it is
                recover(target)
        yield
    finally:
        lock.release()


class OutputFolder:
    """A staging folder beside the target, under the target's lock; ``commit`` swaps it in, ``abort`` removes it.

    ``release`` (always, after either) drops the lock.
    """

    def __init__(self, target: Path, *, force: bool, protect: Sequence[Path] = ()) -> None:
        self.target = check_output_path(target, force=force, protect=protect)
        self.force, self.protect = force, protect
        self.aside: Path | None = None  # where commit moved a foreign folder (--force)
        what = f"--out {self.target}"
        check_writable_folder(what, self.target)
        parent = self.target.parent
        # The parents this run creates, removed again if it is aborted.
        self._created = [p for p in [parent, *parent.parents] if not p.exists()]
        self._lock: FolderLock | None = None
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._lock = FolderLock(self.target, exclusive=True, what=what).acquire()
            recover(self.target)
            for stale in _leftovers(self.target, "staging"):  # no live run owns them: we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            check_replaceable(what, self.target)
            self.staging = Path(
                tempfile.mkdtemp(dir=parent, prefix=f".{self.target.name}.modelport-staging-{os.getpid()}-")
            )
        except OSError as e:
            self.release()
            raise UsageError(f"cannot create the output folder {self.target}: {e.strerror or e}") from e
        except BaseException:
            self.release()
            raise

    def check_disk(self, needed: int) -> None:
        check_disk(f"--out {self.target}", self.staging, needed)

    def release(self) -> None:
        """Drop the lock and remove the parents this run created if nothing was committed there."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        for path in self._created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()

    def commit(self) -> Path:
        """Swap the staging folder in; the old folder is removed only after the swap.

        A folder modelport did not write (allowed by --force) is moved aside instead (``aside``
        afterwards), under a written intent so that a kill at any step is finished or undone by
        the next ``run`` or ``verify`` (``recover``), never leaving that folder to be swept.
        """
        publish_mode(self.staging)
        fsync_dir(self.staging)
        _crash_point("commit-start")
        parent = self.target.parent
        # Decided again here: the folder may have changed during the run.
        if replace_policy(self.target, force=self.force, protect=self.protect):
            self.aside = self._replace_foreign()
        elif not self.target.exists():
            os.rename(self.staging, self.target)
            _crash_point("renamed-new")
            fsync_dir(parent)
        elif _exchange(self.staging, self.target):
            _crash_point("exchanged")
            fsync_dir(parent)
            _crash_point("exchange-synced")
            shutil.rmtree(self.staging, ignore_errors=True)  # the old folder, under the staging name now
        else:
            old = parent / f".{self.target.name}.modelport-old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(self.target, old)
            _crash_point("renamed-old")
            os.rename(self.staging, self.target)
            _crash_point("renamed-new")
            fsync_dir(parent)
            shutil.rmtree(old, ignore_errors=True)
        self._created = []
        _crash_point("committed")
        return self.target

    def _replace_foreign(self) -> Path:
        """The target is a foreign folder: swap the new one in and keep the old one, whole, at a hidden sibling."""
        parent, name = self.target.parent, self.target.name
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        aside = parent / f".{name}.modelport-replaced-{stamp}-{secrets.token_hex(4)}"
        manifest = hashlib.sha256((self.staging / MANIFEST_NAME).read_bytes()).hexdigest()
        intent = parent / f".{name}.modelport-intent-{secrets.token_hex(4)}.json"
        body = {"staging": self.staging.name, "aside": aside.name, "manifest_sha256": manifest}
        with atomic_write(intent) as fh:
            fh.write(json.dumps(body).encode())
        fsync_dir(parent)
        _crash_point("intent-written")
        if _exchange(self.staging, self.target):
            _crash_point("replace-exchanged")
            os.rename(self.staging, aside)  # the foreign folder, under the staging name since the exchange
        else:
            os.rename(self.target, aside)
            _crash_point("replace-renamed-old")
            os.rename(self.staging, self.target)
        _crash_point("replace-renamed")
        fsync_dir(parent)
        intent.unlink()
        return aside

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
