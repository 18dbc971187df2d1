"""Third-party models for the real-model zoo: torchvision and Hugging Face transformers, built from configs.

Every factory takes no arguments and returns ``(module, example_inputs)``, like ``tests/zoo.py``; pass one on
the command line as ``tests/thirdparty.py:bert``. Weights are random (the caller seeds ``torch.manual_seed``
first, as modelport does), sizes are tiny, nothing is downloaded: models are built from configs, never with
``from_pretrained``, and ``HF_HUB_OFFLINE=1`` is set before transformers is imported. Example inputs come from
their own ``torch.Generator().manual_seed(0)`` and are always the same.

torchvision and transformers are imported inside the factories, so this file imports without them
(``available()`` says whether they are there). The package index serves only a CUDA build of torchvision,
whose compiled ops fail to load beside the CPU torch; ``import_torchvision`` then defines the two operator
schemas its Python code registers fake kernels for and imports it again (its pure-Python models work). It
does so only after a plain import failed on them: defining them up front would clash with a build whose
compiled library loads and defines them itself.

Every Hugging Face model here uses its default attention implementation (``sdpa``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch
from torch import nn

__all__ = [
    "CASES",
    "THIRDPARTY",
    "Case",
    "available",
    "bert",
    "gpt2",
    "gru",
    "import_torchvision",
    "lstm",
    "mobilenet",
    "resnet18",
    "t5",
    "vit",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never reach the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The schemas torchvision's compiled library would define; its Python code registers fake kernels for them
# at import time and fails when the operator does not exist.
_TORCHVISION_SCHEMAS = {
    "nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
}


def _has_op(namespace: str, name: str) -> bool:
    try:
        getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        return False
    return True


def import_torchvision() -> ModuleType:
    """``import torchvision``; when its compiled ops fail to load, define ``torchvision::nms``/``qnms`` and retry.

    Done once, and only when needed: a torchvision whose compiled library loads defines them itself.
    transformers imports torchvision too (image processors), so its factories call this first.
    """
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    try:
        import torchvision
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]  # the half-imported package
        for name, schema in _TORCHVISION_SCHEMAS.items():
            if not _has_op("torchvision", name):
                torch.library.define(f"torchvision::{name}", schema)
        import torchvision
    return torchvision


def available() -> str | None:
    """Why the zoo cannot run here (a missing package), or None."""
    try:
        import_torchvision()
        import transformers  # noqa: F401
    except ImportError as e:
        return f"the real-model zoo needs transformers and torchvision (pip install -e '.[zoo]'): {e}"
    return None


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _warm_batchnorm(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """A few training-mode passes on shifted, scaled data, so running statistics are not the trivial 0/1.

    The statistics are plain averages over the passes (momentum None while warming): with the default
    momentum, three passes leave them close to 0/1, every BatchNorm in eval mode then stops normalising
    and a MobileNet's outputs shrink to 1e-5, where every tolerance check is vacuous.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = None
    warmup = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape, generator=warmup) * 2.0 + 0.5)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def resnet18() -> tuple[nn.Module, torch.Tensor]:
    """torchvision ResNet-18 (11.2M parameters), 10 classes, on 32x32 images (2, 3, 32, 32)."""
    tv = import_torchvision()
    model = _warm_batchnorm(tv.models.resnet18(num_classes=10), (8, 3, 32, 32))
    return model, torch.randn(2, 3, 32, 32, generator=_gen())


def mobilenet() -> tuple[nn.Module, torch.Tensor]:
    """torchvision MobileNetV3-Small (hardswish, squeeze-excitation), 10 classes, on (2, 3, 32, 32)."""
    tv = import_torchvision()
    model = _warm_batchnorm(tv.models.mobilenet_v3_small(num_classes=10), (8, 3, 32, 32))
    return model, torch.randn(2, 3, 32, 32, generator=_gen())


def _ids_and_mask(vocab: int, batch: int = 2, seq: int = 8) -> dict[str, torch.Tensor]:
    """Token ids (batch, seq) and an int64 padding mask (1 = keep) with the last row padded by 3."""
    input_ids = torch.randint(0, vocab, (batch, seq), generator=_gen())
    attention_mask = torch.ones(batch, seq, dtype=torch.int64)
    attention_mask[-1, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def bert() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """BERT encoder (hidden 32, 2 layers, 2 heads, vocab 100); outputs last_hidden_state and pooler_output."""
    import_torchvision()  # transformers imports it
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertModel(config).eval(), _ids_and_mask(100)


def gpt2() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """GPT-2 decoder with an LM head (n_embd 32, 2 layers, 2 heads, vocab 100), ``use_cache=False``: logits only.

    With the default cache the output holds a ``DynamicCache``, which is not a tensor.
    """
    import_torchvision()  # transformers imports it
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=2, use_cache=False, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config).eval(), _ids_and_mask(100)


def vit() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """ViT image classifier (32x32 images, 8x8 patches, hidden 32, 2 layers, 2 heads, 10 labels): logits."""
    import_torchvision()  # transformers imports it
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=10,
    )
    return ViTForImageClassification(config).eval(), {"pixel_values": torch.randn(2, 3, 32, 32, generator=_gen())}


def t5() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """T5 encoder-decoder with an LM head (d_model 32, 2+2 layers, 2 heads, vocab 100), ``use_cache=False``.

    Inputs: input_ids and attention_mask (2, 8), decoder_input_ids (2, 4). Outputs: logits and
    encoder_last_hidden_state. T5 normalises with an RMS norm (no mean, no bias).
    """
    import_torchvision()  # transformers imports it
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=100,
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        decoder_start_token_id=0,
        pad_token_id=0,
        use_cache=False,
    )
    inputs = _ids_and_mask(100)
    inputs["decoder_input_ids"] = torch.randint(0, 100, (2, 4), generator=torch.Generator().manual_seed(1))
    return T5ForConditionalGeneration(config).eval(), inputs


def t5_long() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """``t5`` with t5-small's own relative-position buckets (32, max distance 128) on 64 encoder tokens.

    Not in the zoo's matrix: the localisation test's float16 case. Key-query distances of 16 and 32 fall
    into the neighbouring logarithmic bucket when float16 rounds log(16): a float16 graph that is wrong
    only once two tokens are 16 or more apart (an input of 16 tokens or fewer passes).
    """
    import_torchvision()
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=100, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
        relative_attention_num_buckets=32, relative_attention_max_distance=128,
        decoder_start_token_id=0, pad_token_id=0, use_cache=False,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    mask = torch.ones(2, 64, dtype=torch.int64)
    mask[-1, -3:] = 0
    inputs = {"input_ids": torch.randint(0, 100, (2, 64), generator=gen), "attention_mask": mask}
    inputs["decoder_input_ids"] = torch.randint(0, 100, (2, 4), generator=torch.Generator().manual_seed(1))
    return T5ForConditionalGeneration(config).eval(), inputs


class RNNClassifier(nn.Module):
    """A batch-first LSTM or GRU over float features (batch, seq, 16), then a Linear on the last time step."""

    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU], features: int = 16, hidden: int = 32, classes: int = 5):
        super().__init__()
        self.rnn = cell(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def lstm() -> tuple[nn.Module, torch.Tensor]:
    """2-layer LSTM classifier on x (2, 10, 16); meant to run with ``--dynamic x:1=seq``."""
    return RNNClassifier(nn.LSTM).eval(), torch.randn(2, 10, 16, generator=_gen())


def gru() -> tuple[nn.Module, torch.Tensor]:
    """2-layer GRU classifier on x (2, 10, 16); meant to run with ``--dynamic x:1=seq``."""
    return RNNClassifier(nn.GRU).eval(), torch.randn(2, 10, 16, generator=_gen())


@dataclass(frozen=True)
class Case:
    """One zoo configuration: a factory of this file and the ``modelport.run`` options it runs with."""

    factory: str
    options: Mapping[str, Any] = field(default_factory=dict)  # besides formats ("all") and samples


SEQ = "input_ids:1=seq,attention_mask:1=seq"
# What the zoo runs (tests/test_thirdparty_zoo.py) and benchmarks/zoo_table.py tabulates: sequence models with
# their sequence axes dynamic, as issue 7 tried them; the legacy ONNX exporter where its findings need it.
CASES = {
    "resnet18": Case("resnet18"),
    "mobilenet": Case("mobilenet"),
    "bert": Case("bert", {"dynamic": SEQ}),
    "gpt2": Case("gpt2", {"dynamic": SEQ}),
    "vit": Case("vit"),
    "t5": Case("t5", {"dynamic": f"{SEQ},decoder_input_ids:1=dec"}),
    "t5_legacy": Case("t5", {"dynamic": f"{SEQ},decoder_input_ids:1=dec", "onnx_exporter": "legacy"}),
    "lstm": Case("lstm", {"dynamic": "x:1=seq"}),
    "lstm_legacy": Case("lstm", {"dynamic": "x:1=seq", "onnx_exporter": "legacy"}),
    "gru": Case("gru", {"dynamic": "x:1=seq"}),
}

THIRDPARTY: dict[str, Callable[[], Any]] = {
    "resnet18": resnet18,
    "mobilenet": mobilenet,
    "bert": bert,
    "gpt2": gpt2,
    "vit": vit,
    "t5": t5,
    "lstm": lstm,
    "gru": gru,
}
