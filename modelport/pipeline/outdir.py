"""The output folder: checked before any work, built in a staging folder, swapped in at the end.

A run never leaves a half-written artifact folder: everything is written into a hidden
sibling folder, and only a complete folder (manifest written last) replaces the target.
If the run is aborted, the previous folder is untouched and the staging folder removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from modelport.errors import UsageError
from modelport.fsutil import fsync_dir, publish_mode

__all__ = ["MANIFEST_NAME", "OutputFolder", "check_output_path"]

MANIFEST_NAME = "manifest.json"


def check_output_path(out: Path, *, force: bool) -> Path:
    """Refuse an output path that cannot work, before anything is written. Returns it absolute."""
    out = Path(os.path.abspath(out))
    cwd = Path.cwd().resolve()
    if out.resolve() in (cwd, *cwd.parents, Path.home().resolve()):
        # --force replaces the whole folder: never the one the user is working in, or above it.
        raise UsageError(f"--out {out} is the current folder, one above it, or your home; choose a subfolder")
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            if parent == out:
                raise UsageError(f"--out {out} is a file, not a folder; choose a folder path")
            raise UsageError(f"--out {out} lies under {parent}, which is a file; choose a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file() and not force:
        raise UsageError(
            f"--out {out} is not empty and has no {MANIFEST_NAME}, so modelport did not write it; "
            "choose an empty or new folder, or pass --force to replace it"
        )
    return out


class OutputFolder:
    """A staging folder beside the target; ``commit`` swaps it in, ``abort`` removes it."""

    def __init__(self, target: Path, *, force: bool) -> None:
        self.target = check_output_path(target, force=force)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(
                tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}.modelport-staging-")
            )
        except OSError as e:
            raise UsageError(f"cannot create the output folder {self.target}: {e.strerror or e}") from e

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
