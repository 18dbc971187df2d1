"""Training checkpoints that survive a power cut, and that load without executing code.

``save_checkpoint`` writes through a temporary file in the same folder, fsyncs it and
renames it over the old one, so the path always holds a complete checkpoint. The
content is state_dicts and plain numbers only, which ``torch.load(weights_only=True)``
reads; ``modelport run --weights ckpt.pt`` accepts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modelport.errors import UsageError
from modelport.fsutil import atomic_write
from modelport.loaders import load_torch

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "modelport-checkpoint"


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int = 0,
    step: int = 0,
    metrics: dict[str, float] | None = None,
) -> Path:
    target = Path(path)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
    }
    with atomic_write(target) as fh:
        torch.save(payload, fh)
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (``weights_only=True``)."""
    data = load_torch(Path(path))
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"{path} is not a modelport checkpoint (no format={CHECKPOINT_FORMAT!r})")
    return data
