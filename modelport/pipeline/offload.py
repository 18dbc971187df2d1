"""The original's weights set aside while a big model's derived ONNX formats convert, and read back after.

onnxruntime's quantizer holds a float32 graph several times over; beside the original's own weights a
6.4 GB model's int8 conversion did not fit in 23 GB, even in its own process. By then the weights are
in the folder (the safetensors or state_dict export wrote them and proved them by value), so the run
lets its in-memory copy go for the conversions and reads the file back, mapped, before the original
runs again: the same values, bit for bit (a test compares every output).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import StageError

if TYPE_CHECKING:
    import torch

    from modelport.format_record import FormatRecord
    from modelport.pipeline.build import Built

__all__ = ["WEIGHTS_FILES", "Offloaded", "offload", "restore"]

WEIGHTS_FILES = ("safetensors", "state_dict")  # preferred first: safetensors maps without unpickling


def _named(built: Built) -> dict[str, torch.Tensor]:
    """Every parameter and persistent buffer by its state_dict name (a tied tensor once per name)."""
    model = built.model
    persistent = set(model.state_dict(keep_vars=True))
    named: dict[str, torch.Tensor] = dict(model.named_parameters(remove_duplicate=False))
    named.update((n, b) for n, b in model.named_buffers(remove_duplicate=False) if n in persistent)
    return named


@dataclass(frozen=True)
class Offloaded:
    fmt: str  # the weights format whose file gives them back
    shapes: dict[str, tuple[int, ...]]


def offload(built: Built, records: dict[str, FormatRecord]) -> Offloaded | None:
    """Let the original's weights go when a weights file of this run can give them back."""
    import torch

    fmt = next((f for f in WEIGHTS_FILES if f in records), None)
    if fmt is None:
        return None
    named = _named(built)
    shapes = {name: tuple(t.shape) for name, t in named.items()}
    for tensor in named.values():
        tensor.data = torch.empty(0, dtype=tensor.dtype)
    built.probe = None  # a torch.export program holding the same tensors: every graph export is done
    return Offloaded(fmt, shapes)


def restore(built: Built, folder: Path, done: Offloaded, record: FormatRecord) -> None:
    """Put the weights file's tensors back in place of the ones :func:`offload` let go."""
    from modelport import exporters
    from modelport.exporters.weights import WeightsExporter
    from modelport.runtimes.torch_eager import aligned

    exporter = exporters.get(done.fmt)
    assert isinstance(exporter, WeightsExporter)
    state = aligned(dict(exporter.read_state(folder / record.files[0])))
    for name, tensor in _named(built).items():
        value = state.get(name)
        if value is None or tuple(value.shape) != done.shapes[name]:
            raise StageError(f"{record.files[0]} cannot give back the original's {name}")
        tensor.data = value
