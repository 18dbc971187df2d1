"""``modelport train``: progress on stdout, skipped checkpoints and warnings on stderr, errors one line.

Exit 0: trained to --steps; 1: a checkpoint or weights.pt could not be written (disk full, size
limit: the previous checkpoint is intact, --resume continues); 2: bad usage, or a checkpoint of
another model or run.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["train_command"]


def train_command(args: argparse.Namespace, out: Console) -> int:
    from modelport.training.loop import train

    def say(message: str) -> None:
        out.print(message, highlight=False, markup=False)

    def warn(message: str) -> None:
        print(f"modelport: {message}", file=sys.stderr)

    result = train(
        args.model,
        out=args.out,
        steps=args.steps,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        resume=args.resume,
        seed=args.seed,
        threads=args.threads,
        log=warn,
        progress=say,
    )
    loss = "nothing left to train" if result.final_loss is None else f"final loss {result.final_loss:.6f}"
    say(f"trained to step {result.steps} ({loss}): {result.weights} (modelport run --weights {result.weights})")
    return 0
