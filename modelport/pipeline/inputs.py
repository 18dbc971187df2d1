"""Input sets: the example X, seeded random inputs, every dynamic axis at other sizes, edge cases.

Every runner gets exactly the same arrays. Values suit each input: normal floats,
token ids below the model's smallest embedding table, and 0/1 or boolean masks that
never mask a whole row. Set ``k`` is drawn from ``seed + k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from modelport.errors import UsageError
from modelport.pipeline.golden import read_npz
from modelport.pipeline.sweep import sweep_sizes
from modelport.signature import Signature, TensorSpec, torch_to_numpy

__all__ = [
    "EDGE_SCALE",
    "InputSet",
    "SetKind",
    "ValueRule",
    "edge_sets",
    "generate",
    "random_sets",
    "sweep_sets",
    "sweep_sizes",
    "user_set",
    "value_rules",
]

SetKind = Literal["example", "random", "sweep", "edge", "user"]
EDGE_SCALE = 100.0  # "large" edge case: standard-normal inputs times this


@dataclass(frozen=True)
class InputSet:
    name: str
    kind: SetKind
    description: str
    inputs: dict[str, np.ndarray]  # by signature name; bfloat16 widened to float32


@dataclass(frozen=True)
class ValueRule:
    """How to draw values for one input."""

    kind: Literal["float", "ids", "mask"]
    dtype: torch.dtype
    high: int = 2  # ids: values in [0, high)
    keep: bool | int = True  # mask: the value that means "attend"


def _vocab_sizes(model: torch.nn.Module) -> list[int]:
    return sorted(
        {m.num_embeddings for m in model.modules() if isinstance(m, torch.nn.Embedding | torch.nn.EmbeddingBag)}
    )


def _id_range(sizes: list[int], example: torch.Tensor | None) -> int:
    """Ids below the smallest embedding table that fits the example's own ids.

    An input whose example ids reach 900 feeds the 1000-row table, not the 2-row token-type
    one; without an example, the smallest table is the only safe bound.
    """
    seen = int(example.max()) + 1 if example is not None and example.numel() else 0
    fitting = [s for s in sizes if s >= seen]
    if fitting:
        return fitting[0]
    return max(seen, 2) if seen else 10


def value_rules(model: torch.nn.Module, example: Mapping[str, torch.Tensor]) -> dict[str, ValueRule]:
    """Infer each input's value range from its dtype, its name and the example's values."""
    rules: dict[str, ValueRule] = {}
    sizes = _vocab_sizes(model)
    for name, t in example.items():
        binary = t.numel() > 0 and bool(((t == 0) | (t == 1)).all())
        if t.dtype.is_floating_point and not (binary and "mask" in name.lower()):
            rules[name] = ValueRule("float", t.dtype)
            continue
        if t.dtype == torch.bool or (binary and "mask" in name.lower()):
            ones = int(t.to(torch.int64).sum()) if t.numel() else t.numel()
            majority = ones * 2 >= t.numel()  # the common value is taken to mean "keep"
            keep: bool | int = majority if t.dtype == torch.bool else int(majority)
            rules[name] = ValueRule("mask", t.dtype, keep=keep)
            continue
        rules[name] = ValueRule("ids", t.dtype, high=_id_range(sizes, t))
    return rules


def generate(rule: ValueRule, shape: list[int], generator: torch.Generator) -> torch.Tensor:
    if rule.kind == "float":
        return torch.randn(shape, generator=generator).to(rule.dtype)
    if rule.kind == "ids":
        return torch.randint(0, rule.high, shape, generator=generator).to(rule.dtype)
    # A padding mask: each row keeps a random prefix of at least one position and, when it
    # can, pads at least one, so no row is all masked whichever value means "masked".
    n = shape[-1] if shape else 1
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    low, high = (1, n) if n > 1 else (1, 2)
    lengths = torch.randint(low, high, (rows, 1), generator=generator)
    keep = torch.arange(n).unsqueeze(0) < lengths
    values = keep if rule.keep else ~keep
    return values.reshape(shape).to(rule.dtype)


def _to_numpy(inputs: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: torch_to_numpy(v) for k, v in inputs.items()}


def random_sets(
    example: Mapping[str, torch.Tensor], rules: Mapping[str, ValueRule], seed: int, count: int
) -> list[InputSet]:
    sets = []
    for i in range(1, count + 1):
        generator = torch.Generator().manual_seed(seed + i)
        inputs = {name: generate(rules[name], list(t.shape), generator) for name, t in example.items()}
        sets.append(
            InputSet(f"random_{i}", "random", f"example shapes, random values, seed {seed + i}", _to_numpy(inputs))
        )
    return sets


def sweep_sets(
    signature: Signature, example: Mapping[str, torch.Tensor], rules: Mapping[str, ValueRule], seed: int
) -> list[InputSet]:
    """One set per (dynamic axis label, size): both ends of its range (``Signature.dims``); other dims as example.

    Without a declared or narrowed range that is 1 and a larger size (64 for the batch, else twice the example).
    """
    sets: list[InputSet] = []
    k = 100
    for label, size in sweep_sizes(signature, {n: tuple(t.shape) for n, t in example.items()}):
        k += 1
        generator = torch.Generator().manual_seed(seed + k)
        inputs = {}
        for spec in signature.inputs:
            axes = spec.dynamic_axes()
            shape = [size if axes.get(i) == label else n for i, n in enumerate(example[spec.name].shape)]
            inputs[spec.name] = generate(rules[spec.name], shape, generator)
        sets.append(
            InputSet(f"{label}_{size}", "sweep", f"{label}={size}, random values, seed {seed + k}", _to_numpy(inputs))
        )
    return sets


def edge_sets(example: Mapping[str, torch.Tensor], rules: Mapping[str, ValueRule], seed: int) -> list[InputSet]:
    """Zeros and large magnitudes in every float input (ids and masks as in the example)."""
    floats = [name for name, rule in rules.items() if rule.kind == "float"]
    if not floats:
        return []
    generator = torch.Generator().manual_seed(seed + 1000)
    zeros = {n: (torch.zeros_like(t) if n in floats else t) for n, t in example.items()}
    large = {
        n: ((torch.randn(t.shape, generator=generator) * EDGE_SCALE).to(t.dtype) if n in floats else t)
        for n, t in example.items()
    }
    return [
        InputSet("zeros", "edge", "every float input all zeros", _to_numpy(zeros)),
        InputSet("large", "edge", f"float inputs standard normal x {EDGE_SCALE:g}", _to_numpy(large)),
    ]


def _fits(spec: TensorSpec, array: np.ndarray) -> str | None:
    if array.ndim != len(spec.shape):
        return f"rank {array.ndim}, the model takes rank {len(spec.shape)}"
    for i, (want, got) in enumerate(zip(spec.shape, array.shape, strict=True)):
        if isinstance(want, int) and want != got:
            return f"size {got} on axis {i}, which is fixed at {want} (declare it with --dynamic to vary it)"
    expected = "float32" if spec.dtype == "bfloat16" else spec.dtype
    if str(array.dtype) != expected:
        return f"dtype {array.dtype}, the model takes {expected}"
    return None


def user_set(path: Path, signature: Signature) -> InputSet:
    """``--inputs FILE.npz``: real inputs by name, checked against the signature."""
    if not path.is_file():
        raise UsageError(f"--inputs {path}: no such file")
    arrays = read_npz(path)
    names = signature.input_names
    missing = [n for n in names if n not in arrays]
    extra = [k for k in arrays if k not in names]  # labels and the like: ignored, and said so
    if missing:
        raise UsageError(f"--inputs {path}: needs arrays named {names}; missing {missing}")
    for spec in signature.inputs:
        problem = _fits(spec, arrays[spec.name])
        if problem:
            raise UsageError(f"--inputs {path}: {spec.name!r} has {problem}")
    description = f"real inputs from {path.name}" + (f" (ignored: {', '.join(extra)})" if extra else "")
    return InputSet("inputs_file", "user", description, {n: arrays[n] for n in names})
