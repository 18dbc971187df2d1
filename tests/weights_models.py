"""Small models whose ONNX graphs do not keep their weights under their own names.

Used by ``test_verify_weights.py``: the dynamo exporter renames and transposes Linear weights
(``val_7``), the legacy exporter repacks LSTM/GRU weights (gates reordered, input and recurrent
weights split, biases concatenated), and BatchNorm's ``num_batches_tracked`` is in no graph.
Each function takes no arguments and returns ``(module, example_inputs)``; weights are random,
so the caller seeds first; example inputs come from their own generator.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["bert", "bn_mlp", "gru", "lstm", "unused_buffer"]


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


class BertLayer(nn.Module):
    """A BERT encoder layer with separate query, key and value projections (Hugging Face's layout)."""

    def __init__(self, d_model: int = 32, heads: int = 4, ff: int = 64) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.intermediate = nn.Linear(d_model, ff)
        self.out = nn.Linear(ff, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        hd = d // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / hd**0.5 + bias
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        x = self.norm1(x + self.output(context))
        return self.norm2(x + self.out(nn.functional.gelu(self.intermediate(x))))


class TinyBert(nn.Module):
    """Word + position + token-type embeddings -> 2 layers -> pooler (tanh) -> classifier."""

    def __init__(self, vocab: int = 60, d_model: int = 32, max_len: int = 32, classes: int = 3) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.token_type = nn.Embedding(2, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.layers = nn.ModuleList(BertLayer(d_model) for _ in range(2))
        self.pooler = nn.Linear(d_model, d_model)
        self.classifier = nn.Linear(d_model, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        types = torch.zeros_like(input_ids)
        x = self.norm(self.word(input_ids) + self.position(positions) + self.token_type(types))
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -1e4  # BERT's additive mask
        for layer in self.layers:
            x = layer(x, bias)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def bert() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Keyword inputs ``input_ids``/``attention_mask`` (2, 8); the second row padded; logits (2, 3)."""
    ids = torch.randint(0, 60, (2, 8), generator=_gen())
    mask = torch.ones(2, 8, dtype=torch.int64)
    mask[1, -3:] = 0
    return TinyBert().eval(), {"input_ids": ids, "attention_mask": mask}


class RnnClassifier(nn.Module):
    """Embedding -> one-layer LSTM or GRU (batch first) -> last hidden state -> Linear."""

    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU], vocab: int = 40, hidden: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 12)
        self.rnn = cell(12, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(x))
        return self.head(out[:, -1])


def lstm() -> tuple[nn.Module, torch.Tensor]:
    """Token ids (2, 10) -> logits (2, 4)."""
    return RnnClassifier(nn.LSTM).eval(), torch.randint(0, 40, (2, 10), generator=_gen())


def gru() -> tuple[nn.Module, torch.Tensor]:
    """Token ids (2, 10) -> logits (2, 4)."""
    return RnnClassifier(nn.GRU).eval(), torch.randint(0, 40, (2, 10), generator=_gen())


def bn_mlp() -> tuple[nn.Module, torch.Tensor]:
    """Linear -> BatchNorm1d (warmed, so its statistics are not 0/1) -> ReLU -> Linear, in eval mode."""
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    warmup = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 6, generator=warmup) * 1.5 + 0.3)
    return model.eval(), torch.randn(4, 6, generator=_gen())


class UnusedBuffer(nn.Module):
    """A Linear layer plus a persistent buffer that forward never reads (a leftover of training)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.register_buffer("step_count", torch.tensor([7.0, 11.0, 13.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def unused_buffer() -> tuple[nn.Module, torch.Tensor]:
    """Inputs (2, 6) -> (2, 3); ``step_count`` is in the state_dict but in no graph."""
    return UnusedBuffer().eval(), torch.randn(2, 6, generator=_gen())


class ScalarBuffer(nn.Module):
    """A Linear layer scaled by a 0-d buffer (a temperature, a step count)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.register_buffer("scale", torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale


def scalar_buffer() -> tuple[nn.Module, torch.Tensor]:
    """Inputs (2, 6) -> (2, 3); ``scale`` is a 0-d tensor."""
    return ScalarBuffer().eval(), torch.randn(2, 6, generator=_gen())


class _ThreeLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


def three_linear() -> tuple[nn.Module, torch.Tensor]:
    """Two layers of one shape: a checkpoint converter off by one copies one over the other."""
    return _ThreeLinear().eval(), torch.randn(2, 16, generator=_gen())
