"""``train(...)``: the loop behind ``modelport train``, a :class:`Checkpointer` around a :class:`TrainingTask`.

``--out DIR`` receives ``checkpoints/step-*.pt`` (every K steps and at the end, the newest M kept) and,
when the run completes, ``weights.pt`` (the model's state_dict, for ``modelport run --weights``).
The run is deterministic (``torch.use_deterministic_algorithms(True)``, ``threads`` intra-op
threads, every generator seeded), so a run resumed after a crash ends with the same bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from modelport.errors import UsageError, WriteError, resource_error
from modelport.fsutil import atomic_write
from modelport.models import ModelSource, resolve_model
from modelport.pipeline.folder_lock import FolderLock
from modelport.training import store
from modelport.training.checkpointer import Checkpointer
from modelport.training.state import capture_rng, deterministic, restore_rng, seed_everything
from modelport.training.task import TrainingTask, task_for

__all__ = ["TrainResult", "train"]


@dataclass(frozen=True)
class TrainResult:
    steps: int  # the step the run ended at
    resumed_from: int  # 0 for a fresh run
    final_loss: float | None  # None when there was nothing left to train
    weights: Path
    checkpoints: list[Path]


def _whole(name: str, value: int, least: int) -> None:
    if not isinstance(value, int) or value < least:
        raise UsageError(f"{name} {value!r}: expected a whole number >= {least}")


def train(
    model: object = "mlp",
    *,
    out: str | Path,
    steps: int,
    checkpoint_every: int,
    keep: int = 3,
    resume: bool = False,
    seed: int = 0,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``model`` (a ``--model`` spec) on its task for ``steps`` steps, checkpointing into ``out``."""
    for name, value, least in (("--steps", steps, 1), ("--checkpoint-every", checkpoint_every, 1)):
        _whole(name, value, least)
    _whole("--keep", keep, 1)
    _whole("--threads", threads, 1)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder; choose a folder path")
    source = resolve_model(model)
    task = task_for(source)
    folder.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: print(message, file=sys.stderr))
    with FolderLock(folder, exclusive=True, what=f"--out {folder}"), deterministic(threads):
        outside = capture_rng()  # a caller's generators are theirs: put back afterwards
        try:
            return _run(source, task, folder, steps, checkpoint_every, keep, resume, seed, log, say)
        finally:
            restore_rng(outside)


def _run(
    source: ModelSource,
    task: TrainingTask,
    folder: Path,
    steps: int,
    every: int,
    keep: int,
    resume: bool,
    seed: int,
    log: Callable[[str], None] | None,
    say: Callable[[str], None],
) -> TrainResult:
    seed_everything(seed)
    net, _ = source.build(seed)
    net.train()
    optimizer = task.optimizer(net)
    scheduler = task.scheduler(optimizer) if task.scheduler is not None else None
    settings = {"seed": seed, "task": task.name, "model": type(net).__name__}
    ckpt = Checkpointer(
        folder / "checkpoints", net, optimizer, scheduler, every=every, keep=keep, settings=settings, log=log
    )
    existing = store.list_steps(ckpt.folder)
    if existing and not resume:
        raise UsageError(
            f"--out {folder} already holds checkpoints (newest: step {existing[-1]}); pass --resume to continue "
            "from them, or choose another --out"
        )
    start = ckpt.resume() if resume else 0
    if start > steps:
        raise UsageError(f"--out {folder}: its newest checkpoint is at step {start}, past --steps {steps}")
    if start:
        say(f"resumed from {ckpt.last_saved} (step {start})")
    loss_value: float | None = None
    for step in range(start, steps):
        inputs, targets = task.batch(seed, step)
        optimizer.zero_grad(set_to_none=True)
        loss = task.loss(net, inputs, targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_value = float(loss.detach())
        if (path := ckpt.maybe_save(step + 1, {"loss": loss_value})) is not None:
            say(f"step {step + 1}/{steps}  loss {loss_value:.6f}  {path.name}")
    if loss_value is not None and steps % every:
        path = ckpt.save(steps, {"loss": loss_value})  # the end is a checkpoint too: --resume then has nothing to do
        say(f"step {steps}/{steps}  loss {loss_value:.6f}  {path.name}")
    weights = folder / "weights.pt"
    try:
        with atomic_write(weights) as fh:
            torch.save(net.state_dict(), fh)
    except Exception as e:  # torch wraps a failed write in a RuntimeError; the OSError is its context
        if (cause := resource_error(e)) is None:
            raise
        raise WriteError(
            f"cannot write {cause.filename or weights}: {cause.strerror}; the checkpoints are intact: free space "
            "and rerun with --resume"
        ) from e
    return TrainResult(steps, start, loss_value, weights, ckpt.checkpoints())
