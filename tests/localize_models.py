"""Small models for the localisation tests (``tests/test_localize.py``), passed as ``--model`` specs.

``chapter_mlp``: the chapter's ``Sequential(Linear(20, 256), ReLU(), Linear(256, 10))``, whose
activation is a module ("1"). ``tiny_transformer``: two pre-norm blocks with explicit attention and
MLP submodules (``blocks.1.mlp.fc2``), so every layer has a dotted path. ``branchy``: a gate whose
Python branch on the data is baked in by TorchScript's trace: the real way a traced artifact diverges.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def chapter_mlp() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10)), torch.randn(2, 20)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    def __init__(self, width: int = 32, heads: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def tiny_transformer() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return TinyTransformer(), {"x": torch.randn(2, 6, 8)}


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[0, 0] > 0:  # data-dependent: torch.jit.trace keeps only the branch the example took
            return x * 2
        return x - 1


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(20, 16)
        self.gate = Gate()
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gate(self.fc(x)))


def branchy() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return Branchy(), {"x": torch.randn(2, 20)}


def deep_mlp(layers: int = 100, width: int = 512) -> tuple[nn.Module, torch.Tensor]:
    """A 100-layer MLP (``benchmarks/bench_localize.py``): localising must stay one pass, not one per layer."""
    stack: list[nn.Module] = []
    for _ in range(layers):
        stack += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*stack), torch.randn(2, width)


class DictOut(nn.Module):
    """Dict outputs: the exporters see it inside the FlatModel wrapper (artifact paths under ``model.``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.fc2(torch.relu(self.fc1(x))))
        return {"logits": self.head(h), "hidden": h}


def dict_out() -> tuple[nn.Module, torch.Tensor]:
    return DictOut(), torch.randn(2, 16)


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x)) * scale)


class KeywordWrapper(nn.Module):
    """Called by keyword, with its own submodule named ``model`` (as Hugging Face's *ForCausalLM are)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = Inner()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.fc(self.model(x, scale))


def keyword_model() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return KeywordWrapper(), {"x": torch.randn(2, 16), "scale": torch.rand(2, 32) + 0.5}


class Shared(nn.Module):
    """One Linear called twice (shared weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 32)
        self.fc = nn.Linear(32, 32)
        self.mid = nn.LayerNorm(32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.fc(torch.relu(self.inp(x))))
        return self.head(self.fc(h))


def shared() -> tuple[nn.Module, torch.Tensor]:
    return Shared(), torch.randn(2, 16)


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(32)
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x += self.fc(self.ln(x))  # changes its own input in place
        return x


class InplaceRes(nn.Module):
    """Root-level operations between modules, then blocks with an in-place residual."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 32)
        self.blocks = nn.ModuleList(ResBlock() for _ in range(2))
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.sigmoid(self.embed(x)) * 3.0
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def inplace_res() -> tuple[nn.Module, torch.Tensor]:
    return InplaceRes(), torch.randn(2, 16)
