"""Models whose dynamic axes torch's exporters handle differently (used by test_dynamic_ranges.py)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


class RnnClassifier(nn.Module):
    """nn.LSTM / nn.GRU over (batch, seq, features), a Linear on the last step; optionally the RNN's own outputs too."""

    def __init__(self, kind: str = "lstm", full: bool = False) -> None:
        super().__init__()
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)
        self.full = full

    def forward(self, x: torch.Tensor) -> object:
        out, state = self.rnn(x)
        logits = self.head(out[:, -1])
        # The (output, (h, c)) tuple as nn.LSTM returns it: nested, so it goes through FlatModel.
        return (logits, (out, state)) if self.full else logits


def lstm() -> tuple[nn.Module, torch.Tensor]:
    return RnnClassifier("lstm").eval(), _x(2, 10, 8)


def lstm_full() -> tuple[nn.Module, torch.Tensor]:
    return RnnClassifier("lstm", full=True).eval(), _x(2, 10, 8)


def gru() -> tuple[nn.Module, torch.Tensor]:
    return RnnClassifier("gru").eval(), _x(2, 10, 8)


def gru_full() -> tuple[nn.Module, torch.Tensor]:
    return RnnClassifier("gru", full=True).eval(), _x(2, 10, 8)


class BertLike(nn.Module):
    """Token + learned position embeddings (a table of ``positions`` rows, sliced from a buffer), attention, a head."""

    def __init__(self, positions: int = 16, vocab: int = 50, width: int = 16) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(positions, width)
        self.register_buffer("position_ids", torch.arange(positions).unsqueeze(0), persistent=False)
        self.layer = nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        h = self.tokens(input_ids) + self.positions(self.position_ids[:, :seq])
        h = self.layer(h, src_key_padding_mask=attention_mask == 0)
        return self.head(h[:, 0])


def _tokens(seq: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(2, seq, dtype=torch.long)
    mask[1, seq // 2 :] = 0
    return {"input_ids": torch.randint(0, 50, (2, seq), generator=g), "attention_mask": mask}


def bert_like() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A 16-row position table, example length 10: torch.export suggests ``Dim('seq', max=16)``."""
    torch.manual_seed(0)
    return BertLike(16).eval(), _tokens(10)


def bert_full_table() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The example uses all 8 rows of the position table: a longer sequence fails, a shorter one works."""
    torch.manual_seed(0)
    return BertLike(8).eval(), _tokens(8)


class Capped(nn.Module):
    """Refuses sequences over 32, as models with a hard limit do."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 32:
            raise ValueError("at most 32 steps")
        return self.lin(x).mean(1)


def capped() -> tuple[nn.Module, torch.Tensor]:
    return Capped().eval(), _x(2, 6, 4)


class SizeBranch(nn.Module):
    """Runs at any length, but takes another path at the example's length: torch.export specialises it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x).mean(1)
        return y * 2 if x.shape[1] == 6 else y


def size_branch() -> tuple[nn.Module, torch.Tensor]:
    return SizeBranch().eval(), _x(2, 6, 4)


class DynamicCache:
    """Stands in for transformers' DynamicCache: indexable, not a tensor, not a sequence or a mapping."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.layers = layers

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)


class CachingDecoder(nn.Module):
    """Returns logits and a key/value cache object, as a Hugging Face decoder does with use_cache=True."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        h = self.lin(x)
        return {"logits": h, "past_key_values": DynamicCache([(h, h)])}


def caching_decoder() -> tuple[nn.Module, torch.Tensor]:
    return CachingDecoder().eval(), _x(2, 8)


class Labelled(nn.Module):
    """Returns a tensor and a Python object that is no tensor container (a label set)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, object]:
        return self.lin(x), {"labels": {"cat", "dog"}}


def labelled() -> tuple[nn.Module, torch.Tensor]:
    return Labelled().eval(), _x(2, 8)


# Hugging Face models built from configs (random weights, never downloaded), when transformers is installed.

_TORCHVISION_SCHEMAS: list[object] = []  # kept alive: a torch.library.Library unregisters when collected


def _transformers() -> Any:
    """transformers, importable beside the CUDA-only torchvision build: its two operator schemas defined first."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        torch.ops.torchvision.nms  # noqa: B018 - raises when the schema is not defined
    except (AttributeError, RuntimeError):
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS.append(lib)
    import transformers

    return transformers


def hf_bert() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    t = _transformers()
    torch.manual_seed(0)
    config = t.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
    )
    inputs = _tokens(10)
    return t.BertModel(config).eval(), inputs


def hf_gpt2() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """GPT-2 with its default cache: the output carries a DynamicCache."""
    t = _transformers()
    torch.manual_seed(0)
    config = t.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64, bos_token_id=0)
    config.eos_token_id = 0
    return t.GPT2LMHeadModel(config).eval(), {"input_ids": _tokens(10)["input_ids"]}
