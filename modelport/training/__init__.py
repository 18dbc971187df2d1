"""Training that survives a power cut: checkpoints that resume bit-identically.

- :class:`Checkpointer`: for your own loop. Saves model, optimizer, scheduler, step and every RNG state
  (torch CPU, numpy, Python ``random``) with the thread count and determinism settings every K steps,
  keeps the last M, and restores all of it from the newest valid checkpoint.
- :func:`train`: the ``modelport train`` command's loop over a :class:`TrainingTask` (the built-in MLP's
  seeded synthetic task, or one a ``--model`` module defines with ``training_task()``).

Names load on first use: importing the package loads no torch.
"""

from __future__ import annotations

from modelport._lazy import lazy_attributes

__all__ = ["Checkpointer", "TrainResult", "TrainingTask", "deterministic", "seed_everything", "train"]

_WHERE = {
    "Checkpointer": "modelport.training.checkpointer",
    "TrainResult": "modelport.training.loop",
    "train": "modelport.training.loop",
    "TrainingTask": "modelport.training.task",
    "deterministic": "modelport.training.state",
    "seed_everything": "modelport.training.state",
}


__getattr__ = lazy_attributes(__name__, _WHERE)
