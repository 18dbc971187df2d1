"""What ``modelport train`` trains on: a :class:`TrainingTask`, the built-in MLP's or one a ``--model`` defines.

The protocol for your own model: the module (or file) of ``--model``'s callable also defines

    def training_task() -> modelport.training.TrainingTask: ...

Its ``batch(seed, step)`` must return the same pair for the same arguments (draw from
``step_generator(seed, step)``), so a resumed run sees the data an uninterrupted one would, whatever
a data iterator's state was when the process died.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from modelport.errors import UsageError, one_line
from modelport.models import BUILTIN, ModelSource

__all__ = ["TrainingTask", "mlp_task", "step_generator", "task_for"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TrainingTask:
    name: str  # recorded in every checkpoint: a resume under another task is refused
    batch: Callable[[int, int], Batch]  # (seed, step) -> (inputs, targets), the same for the same arguments
    loss: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # may draw from the global RNGs
    optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]
    scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded from (seed, step) alone: the data of step N never depends on steps before it."""
    digest = hashlib.sha256(f"modelport-train:{seed}:{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


_BATCH = 64


def _teacher(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = step_generator(seed, -1)
    return torch.randn(20, 10, generator=g), torch.randn(10, generator=g)


def _mlp_batch(seed: int, step: int) -> Batch:
    """Points in 20 dimensions, labelled by a random linear teacher fixed by the seed: a learnable task."""
    weight, bias = _teacher(seed)
    x = torch.randn(_BATCH, 20, generator=step_generator(seed, step))
    return x, (x @ weight + bias).argmax(dim=1)


def _mlp_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Input noise drawn from the global torch generator, as augmentation in a user's loop would be: the
    # resume is exact only if that generator's state comes back too.
    noisy = x + 0.05 * torch.randn_like(x)
    loss: torch.Tensor = F.cross_entropy(model(noisy), y)
    return loss


def _mlp_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=3e-3)


def _mlp_scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.7)


def mlp_task() -> TrainingTask:
    """The built-in MLP's task: 10-way classification of seeded points, AdamW with a step-decayed rate."""
    return TrainingTask("mlp-synthetic", _mlp_batch, _mlp_loss, _mlp_optimizer, _mlp_scheduler)


def task_for(source: ModelSource) -> TrainingTask:
    """The built-in task for ``mlp``; otherwise ``training_task()`` from the module of ``--model``'s callable."""
    if source is BUILTIN["mlp"]:
        return mlp_task()
    module = sys.modules.get(getattr(source.create, "__module__", None) or "")
    factory = getattr(module, "training_task", None)
    where = getattr(module, "__file__", None) or getattr(module, "__name__", "its module")
    if not callable(factory):
        raise UsageError(
            f"--model {source.spec}: {where} defines no training_task(); add `def training_task() -> "
            "modelport.training.TrainingTask` beside the model's callable (see README, Training)"
        )
    try:
        task = factory()
    except (UsageError, KeyboardInterrupt):
        raise
    except Exception as e:
        raise UsageError(f"--model {source.spec}: training_task() raised {type(e).__name__}: {one_line(e)}") from e
    if not isinstance(task, TrainingTask):
        raise UsageError(
            f"--model {source.spec}: training_task() returned a {type(task).__name__}, not a "
            "modelport.training.TrainingTask"
        )
    return task
