"""``Checkpointer``: crash-safe checkpoints for your own training loop, and an exact resume.

    ckpt = Checkpointer("runs/a", model, optimizer, scheduler, every=100, keep=3, settings={"seed": 0})
    start = ckpt.resume()                # 0 on a fresh folder; else everything is restored
    for step in range(start, total):
        ...                              # one optimizer step
        ckpt.maybe_save(step + 1)        # every 100 completed steps

Refused with a UsageError (the CLI's exit 2): a checkpoint of another model (parameter names, shapes,
dtypes) or of another run (``settings``, the thread count, the determinism settings, the optimizer's
and scheduler's classes). A checkpoint that does not read back whole is skipped, named, and the
next older one is used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from modelport.errors import UsageError, WriteError, resource_error
from modelport.training import store
from modelport.training.state import capture_rng, restore_rng, run_settings

__all__ = ["Checkpointer"]


def _stderr(message: str) -> None:
    print(f"modelport: {message}", file=sys.stderr)


class Checkpointer:
    """Save every ``every`` steps into ``folder``, keep the newest ``keep``, restore on :meth:`resume`."""

    def __init__(
        self,
        folder: str | Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        *,
        every: int,
        keep: int = 3,
        settings: Mapping[str, object] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if every < 1:
            raise UsageError(f"checkpoint every {every} steps: expected a whole number >= 1")
        if keep < 1:
            raise UsageError(f"keep {keep} checkpoints: expected a whole number >= 1")
        self.folder = Path(folder)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.every, self.keep = every, keep
        self.user_settings = dict(settings or {})
        self.log = log or _stderr
        self.last_saved: Path | None = None

    def settings(self) -> dict[str, Any]:
        """What a resume must match: the caller's settings, the process's and the optimizer's classes."""
        return {
            **{k: _plain(v) for k, v in sorted(self.user_settings.items())},
            **run_settings(),
            "optimizer": type(self.optimizer).__name__,
            "scheduler": type(self.scheduler).__name__ if self.scheduler is not None else None,
        }

    def checkpoints(self) -> list[Path]:
        return [self.folder / store.checkpoint_name(s) for s in store.list_steps(self.folder)]

    def resume(self) -> int:
        """Restore the newest valid checkpoint and return its step (0 when there is none)."""
        for leftover in store.sweep(self.folder):
            self.log(f"removed {leftover.name}, a checkpoint whose write was interrupted")
        skipped: list[str] = []
        found = next(store.newest(self.folder, skipped), None)
        for line in skipped:
            self.log(line)
        if found is None:
            return 0
        self._check(found)
        self._restore(found)
        return found.step

    def maybe_save(self, step: int, metrics: Mapping[str, float] | None = None) -> Path | None:
        """After ``step`` completed steps: save when it is a multiple of ``every``."""
        store.crash_point("step", step)
        return self.save(step, metrics) if step % self.every == 0 else None

    def save(self, step: int, metrics: Mapping[str, float] | None = None) -> Path:
        """Write the checkpoint of ``step`` now, then prune to the newest ``keep``."""
        payload: dict[str, Any] = {
            "epoch": 0,  # the fields save_checkpoint files have, so readers of either find them
            "metrics": {k: float(v) for k, v in (metrics or {}).items()},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": capture_rng(),
            "settings": self.settings(),
            "torch_version": str(torch.__version__),
        }
        try:
            path = store.write(self.folder, step, payload)
        except Exception as e:  # torch wraps a failed write in a RuntimeError; the OSError is its context
            if (cause := resource_error(e)) is None:
                raise
            before = f"{self.last_saved} is intact" if self.last_saved is not None else "no earlier checkpoint"
            raise WriteError(
                f"cannot write checkpoint {cause.filename or self.folder}: {cause.strerror}; {before}: free space "
                "and resume"
            ) from e
        self.last_saved = path
        store.prune(self.folder, self.keep)
        return path

    def _check(self, found: store.Found) -> None:
        name = found.path
        mismatch = _model_mismatch(self.model.state_dict(), found.data["model"])
        if mismatch:
            raise UsageError(f"checkpoint {name} is of another model ({mismatch}); train it into another folder")
        ours, theirs = self.settings(), found.data["settings"]
        diffs = [
            f"{key} {theirs.get(key)!r} there, {ours.get(key)!r} here"
            for key in sorted(set(ours) | set(theirs))
            if ours.get(key) != theirs.get(key)
        ]
        if diffs:
            raise UsageError(
                f"checkpoint {name} comes from another run ({'; '.join(diffs)}); resume with its settings or "
                "train into another folder"
            )
        if found.data.get("torch_version") != str(torch.__version__):
            self.log(
                f"checkpoint {name} was written by torch {found.data.get('torch_version')}, this is "
                f"{torch.__version__}: the resumed run may differ from an uninterrupted one in the last bits"
            )

    def _restore(self, found: store.Found) -> None:
        data = found.data
        self.model.load_state_dict(data["model"])
        try:
            self.optimizer.load_state_dict(data["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(data["scheduler"])
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"checkpoint {found.path}: its optimizer state does not fit this optimizer ({e})") from e
        restore_rng(data["rng"])
        self.last_saved = found.path


def _plain(value: object) -> object:
    """Settings are stored as plain values (weights_only loads them); tuples compare equal after a load as lists."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _model_mismatch(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    missing = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    shapes = [
        f"{k} {_describe(theirs[k])} there, {_describe(v)} here"
        for k, v in ours.items()
        if k in theirs and _describe(theirs[k]) != _describe(v)
    ]
    parts = []
    if missing:
        parts.append(f"not in the checkpoint: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if extra:
        parts.append(f"not in this model: {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
    if shapes:
        parts.append("; ".join(shapes[:2]) + (" ..." if len(shapes) > 2 else ""))
    return "; ".join(parts)


def _describe(value: object) -> str:
    return f"{list(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
