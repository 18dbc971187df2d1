"""Awkward models, each for one way a real model breaks naive export tooling (used by test_edge_models.py)."""

from __future__ import annotations

import sys
import threading
from collections import namedtuple

import torch
from torch import nn


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


class _FixedBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.reshape(1, 16))  # only works for the example's batch of 2


def fixed_batch() -> tuple[nn.Module, torch.Tensor]:
    return _FixedBatch().eval(), _x(2, 8)


class _FixedSeq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(6, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos  # a position table of exactly 6 rows


def fixed_seq() -> tuple[nn.Module, torch.Tensor]:
    return _FixedSeq().eval(), _x(2, 6, 4)


Pair = namedtuple("Pair", ["logits", "features"])


class _Named(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> Pair:
        h = self.lin(x)
        return Pair(h.softmax(-1), h)


def namedtuple_out() -> tuple[nn.Module, torch.Tensor]:
    return _Named().eval(), _x(2, 8)


class _Varargs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.lin(sum(xs))  # type: ignore[arg-type]


def varargs() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    return _Varargs().eval(), (_x(2, 8), _x(2, 8) * 2)


class _Scalars(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.lin(x) * scale
        return y, y.mean()  # a 0-d output next to a batched one


def scalars() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    return _Scalars().eval(), (_x(2, 8), torch.tensor(0.5))


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None, torch.Tensor, torch.Tensor]:
        logits = self.lin(x).masked_fill(x[:, :5] > 1.5, float("-inf"))  # -inf logits, as attention masks do
        return logits, None, logits.argmax(-1), logits.isfinite()  # int and bool outputs, and a None


def mixed_outputs() -> tuple[nn.Module, torch.Tensor]:
    return _Mixed().eval(), _x(2, 8)


class _Colliding(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"a b": x * 2, "a_b": x + 1}  # both clean to a_b


def colliding() -> tuple[nn.Module, torch.Tensor]:
    return _Colliding().eval(), _x(2, 3)


class _TwoTables(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.words = nn.Embedding(1000, 8)
        self.types = nn.Embedding(2, 8)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return (self.words(input_ids) + self.types(token_type_ids)).mean(1)


def two_tables() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (2, 7), generator=g)
    return _TwoTables().eval(), {"input_ids": ids, "token_type_ids": torch.zeros(2, 7, dtype=torch.int64)}


class _FloatMask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        w = attention_mask.unsqueeze(-1)
        return (self.lin(x) * w).sum(1) / w.sum(1)  # NaN if a row is all padding


def float_mask() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    return _FloatMask().eval(), {"x": _x(2, 4, 4), "attention_mask": mask}


class _Locked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 2)
        self.lock = threading.Lock()  # not deep-copyable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def locked() -> tuple[nn.Module, torch.Tensor]:
    return _Locked().eval(), _x(2, 8)


def batch_one() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).eval(), _x(1, 8)


def exits() -> nn.Module:
    sys.exit(0)  # a script's argparse or main() reached by mistake
