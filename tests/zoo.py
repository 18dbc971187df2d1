"""Small test models for modelport: each exercises one thing an exporter can get wrong.

Every function takes no arguments and returns ``(module, example_inputs)`` (``no_example``
returns only the module). Pass one on the command line as ``tests/zoo.py:cnn``. Nothing here
seeds the global RNG: weights are random, so the caller seeds (``torch.manual_seed``) first.
Example inputs come from their own ``torch.Generator().manual_seed(0)`` and are always the same.
Example inputs are one tensor, a tuple of tensors (positional) or a dict (keyword arguments).

All models are built from standard ``torch.nn`` layers, have at most ~21k parameters,
and export with ``torch.jit.trace``, ``torch.export`` (dynamic batch axis 0; ``transformer``
also a dynamic sequence axis 1) and ``torch.onnx.export(dynamo=True)``, except
``data_dependent``, whose forward branches on the data on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "ZOO",
    "bfloat16",
    "cnn",
    "data_dependent",
    "double",
    "dropout_bn",
    "embedding_bag",
    "half",
    "multi_input",
    "no_example",
    "tied",
    "transformer",
]


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def cnn() -> tuple[nn.Module, torch.Tensor]:
    """Conv/BatchNorm/pool image classifier, returned in eval mode with non-trivial running stats."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    # A few training-mode passes on shifted, scaled data move running_mean/var away from 0/1.
    warmup = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, 16, 16, generator=warmup) * 2.0 + 0.5)
    return model.eval(), torch.randn(2, 3, 16, 16, generator=_gen())


class EncoderLayer(nn.Module):
    """Post-norm encoder layer, the same computation as ``nn.TransformerEncoderLayer(norm_first=False)``.

    Written out because the builtin layer (and ``nn.MultiheadAttention``) switch to a fused fast
    path in eval mode when autograd is off: a ``torch.jit.trace`` taken with grad enabled records
    the slow path, its sanity check reruns under ``no_grad`` and fails with "Graphs differed".
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int) -> None:
        super().__init__()
        self.nhead = nhead
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Linear(dim_feedforward, d_model))
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        # padding: bool (batch, seq), True = a padded key that no query may attend to.
        b, s, d = x.shape
        head_dim = d // self.nhead
        q, k, v = self.qkv(x).reshape(b, s, 3, self.nhead, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        scores = (q @ k.transpose(-2, -1)) * head_dim**-0.5
        scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, s, d)
        x = self.norm1(x + self.proj(attended))
        return self.norm2(x + self.ff(x))


class TinyEncoder(nn.Module):
    """Token + learned position embeddings -> 2 encoder layers -> LayerNorm -> masked mean -> Linear."""

    def __init__(self, vocab: int = 50, d_model: int = 32, max_len: int = 64, classes: int = 5) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList(EncoderLayer(d_model, nhead=4, dim_feedforward=64) for _ in range(2))
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        # attention_mask follows the Hugging Face convention: int64, 1 = keep, 0 = padding.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tokens(input_ids) + self.positions(positions).unsqueeze(0)
        padding = attention_mask == 0
        for layer in self.layers:
            x = layer(x, padding)
        hidden = self.norm(x)
        keep = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return {"logits": self.classifier(pooled), "hidden": hidden}


def transformer() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Tiny text encoder: keyword inputs ``input_ids``/``attention_mask``, dict output; row 2 padded."""
    input_ids = torch.randint(0, 50, (2, 8), generator=_gen())
    attention_mask = torch.ones(2, 8, dtype=torch.int64)
    attention_mask[1, -3:] = 0
    return TinyEncoder().eval(), {"input_ids": input_ids, "attention_mask": attention_mask}


class BagOfEmbeddings(nn.Module):
    """Embedding(100, 16) on int64 ids -> mean over tokens -> Linear(16, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids).mean(dim=1))


def embedding_bag() -> tuple[nn.Module, torch.Tensor]:
    """Integer (int64) input ids of shape (2, 6)."""
    return BagOfEmbeddings().eval(), torch.randint(0, 100, (2, 6), generator=_gen())


class TwoTower(nn.Module):
    """An image tower and a feature tower; the output is a dict holding a nested tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.image_tower = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 8)
        )
        self.feature_tower = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8))
        self.score = nn.Linear(8, 1)

    def forward(self, image: torch.Tensor, features: torch.Tensor) -> dict[str, Any]:
        a = self.image_tower(image)
        b = self.feature_tower(features)
        embedding = torch.tanh(a + b)
        return {"score": self.score(embedding), "embedding": embedding, "parts": (a, b)}


def multi_input() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """Two positional inputs, image (2, 1, 8, 8) and features (2, 12)."""
    g = _gen()
    return TwoTower().eval(), (torch.randn(2, 1, 8, 8, generator=g), torch.randn(2, 12, generator=g))


class TiedLM(nn.Module):
    """Embedding and output projection share one weight; normalisation buffers, one not persistent."""

    def __init__(self, vocab: int = 30, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied: one Parameter, two owners
        # Persistent (saved in the state_dict): a per-feature normalisation.
        self.register_buffer("mean", torch.linspace(-0.2, 0.2, dim))
        self.register_buffer("std", torch.linspace(0.5, 1.5, dim))
        # Not persistent (absent from the state_dict): rebuilt by __init__ only.
        self.register_buffer("logit_scale", torch.tensor(0.75), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = (self.embed(ids) - self.mean) / self.std
        return self.head(torch.tanh(self.mix(h))) * self.logit_scale


def tied() -> tuple[nn.Module, torch.Tensor]:
    """Integer ids (2, 5) -> logits (2, 5, 30) over the vocabulary."""
    return TiedLM().eval(), torch.randint(0, 30, (2, 5), generator=_gen())


def dropout_bn() -> tuple[nn.Module, torch.Tensor]:
    """Linear -> BatchNorm1d -> Dropout(0.5) -> ReLU -> Linear, returned in TRAINING mode on purpose."""
    model = nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.Dropout(0.5), nn.ReLU(), nn.Linear(32, 3))
    warmup = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial running stats; still in training mode afterwards
        for _ in range(4):
            model(torch.randn(16, 12, generator=warmup) * 1.5 - 0.3)
    assert model.training
    return model, torch.randn(4, 12, generator=_gen())


class Branchy(nn.Module):
    """Control flow that depends on the data: tracing keeps only the branch the example takes."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 4)
        self.b = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.a(x)
        return self.b(x) * -1


def data_dependent() -> tuple[nn.Module, torch.Tensor]:
    """The example input is non-negative, so ``x.sum() > 0`` and branch ``a`` is taken."""
    return Branchy().eval(), torch.randn(2, 8, generator=_gen()).abs()


def no_example() -> nn.Module:
    """Only a module, no example: the user passes ``--input x=3x20:float32``."""
    return nn.Sequential(nn.Linear(20, 5), nn.Tanh()).eval()


def double() -> tuple[nn.Module, torch.Tensor]:
    """A float64 model and float64 input (2, 6)."""
    return nn.Linear(6, 3).double().eval(), torch.randn(2, 6, generator=_gen(), dtype=torch.float64)


def half() -> tuple[nn.Module, torch.Tensor]:
    """A float16 MLP and float16 input (2, 8); runs on CPU."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).half().eval()
    return model, torch.randn(2, 8, generator=_gen()).half()


def bfloat16() -> tuple[nn.Module, torch.Tensor]:
    """A bfloat16 MLP and bfloat16 input (2, 8): torch runs it on CPU, onnxruntime's CPU provider cannot."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).to(torch.bfloat16).eval()
    return model, torch.randn(2, 8, generator=_gen()).to(torch.bfloat16)


ZOO: dict[str, Callable[[], Any]] = {
    "cnn": cnn,
    "transformer": transformer,
    "embedding_bag": embedding_bag,
    "multi_input": multi_input,
    "tied": tied,
    "dropout_bn": dropout_bn,
    "data_dependent": data_dependent,
    "no_example": no_example,
    "double": double,
    "half": half,
    "bfloat16": bfloat16,
}
