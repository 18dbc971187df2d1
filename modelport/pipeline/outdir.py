"""The output folder: checked before any work, built in a staging folder, swapped in at the end.

A run never leaves a half-written artifact folder: everything is written into a hidden
sibling folder, and only a complete folder (manifest written last) replaces the target.
If the run is aborted, the previous folder is untouched and the staging folder removed;
a staging folder left by a killed process is swept by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from modelport.errors import UsageError
from modelport.fsutil import fsync_dir, publish_mode
from modelport.loaders.jsonsafe import UnsafeFile, parse_json

__all__ = ["MANIFEST_NAME", "OutputFolder", "check_output_path", "written_by_modelport"]

MANIFEST_NAME = "manifest.json"


def written_by_modelport(folder: Path) -> str | None:
    """None when ``folder`` holds exactly what a modelport manifest lists; otherwise why not."""
    try:
        data = parse_json((folder / MANIFEST_NAME).read_bytes(), MANIFEST_NAME)
    except (OSError, UnsafeFile):
        return f"it has no readable {MANIFEST_NAME} from modelport"
    if not isinstance(data, dict) or data.get("kind") != "run" or not isinstance(data.get("artifacts"), list):
        return f"its {MANIFEST_NAME} is not a modelport manifest"
    listed = {a.get("path") for a in data["artifacts"] if isinstance(a, dict)} | {MANIFEST_NAME}
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    extra = [p for p in extra if p not in listed]
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        return f"it holds files its manifest does not list ({shown})"
    return None


def check_output_path(out: Path, *, force: bool) -> Path:
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
        if out.is_dir() and any(out.iterdir()) and not force:
            why = written_by_modelport(out)
            if why is not None:
                raise UsageError(
                    f"--out {out} is not empty and {why}; choose an empty or new folder, or pass --force to replace it"
                )
    except OSError as e:
        raise UsageError(f"--out {out}: {e.strerror or e}") from e
    return out


def _sweep_stale(parent: Path, name: str) -> None:
    """Remove staging folders whose process is gone (killed mid-run); a live run's folder is left alone."""
    for stale in parent.glob(f".{name}.modelport-staging-*"):
        pid_text = stale.name.rsplit("-staging-", 1)[-1].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:
            pass


class OutputFolder:
    """A staging folder beside the target; ``commit`` swaps it in, ``abort`` removes it."""

    def __init__(self, target: Path, *, force: bool) -> None:
        self.target = check_output_path(target, force=force)
        parent = self.target.parent
        # The parents this run creates, removed again if it is aborted.
        self._created = [p for p in [parent, *parent.parents] if not p.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
            _sweep_stale(parent, self.target.name)
            self.staging = Path(
                tempfile.mkdtemp(dir=parent, prefix=f".{self.target.name}.modelport-staging-{os.getpid()}-")
            )
        except OSError as e:
            self._remove_created()
            raise UsageError(f"cannot create the output folder {self.target}: {e.strerror or e}") from e

    def _remove_created(self) -> None:
        for path in self._created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()

    def commit(self) -> Path:
        """Replace the target with the staging folder; the old folder is removed only after the swap."""
        publish_mode(self.staging)
        fsync_dir(self.staging)
        old: Path | None = None
        if self.target.exists():
            old = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}.modelport-old-"))
            os.rmdir(old)
            os.replace(self.target, old)
        os.replace(self.staging, self.target)
        fsync_dir(self.target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._remove_created()
