"""Input sets: the example X, and seeded inputs at other sizes of every dynamic axis.

Every runner gets exactly the same arrays. Set ``k`` is drawn from ``seed + k``, so a
set is the same for the same seed whatever else is selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from modelport.signature import Signature, TensorSpec, torch_to_numpy

__all__ = ["SWEEP_SIZES", "InputSet", "random_tensor", "sweep_sets"]

# Sizes each dynamic axis is run at besides the example's: 1 catches specialised
# broadcasting, 64 a size fixed to the example.
SWEEP_SIZES = (1, 64)


@dataclass(frozen=True)
class InputSet:
    name: str
    description: str
    inputs: dict[str, np.ndarray]  # by signature name; bfloat16 widened to float32


def random_tensor(spec: TensorSpec, shape: list[int], like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Seeded values that suit the dtype: normal floats, integers in the example's range, 0/1 masks."""
    dtype = like.dtype
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator).to(dtype)
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator) > 0.5
    high = int(like.max().item()) + 1 if like.numel() else 2
    return torch.randint(0, max(high, 1), shape, generator=generator, dtype=dtype)


def sweep_sets(signature: Signature, example: dict[str, torch.Tensor], seed: int) -> list[InputSet]:
    """One set per (dynamic axis label, size) pair, other dims as in the example."""
    labels = sorted({label for spec in signature.inputs for label in spec.dynamic_axes().values()})
    sets: list[InputSet] = []
    for label in labels:
        for size in SWEEP_SIZES:
            k = len(sets) + 1
            generator = torch.Generator().manual_seed(seed + k)
            arrays: dict[str, np.ndarray] = {}
            for spec in signature.inputs:
                like = example[spec.name]
                shape = [size if spec.dynamic_axes().get(i) == label else n for i, n in enumerate(like.shape)]
                arrays[spec.name] = torch_to_numpy(random_tensor(spec, shape, like, generator))
            sets.append(InputSet(f"{label}_{size}", f"{label}={size}, random, seed {seed + k}", arrays))
    return sets
