"""``torch``: eager PyTorch in this process, for weights loaded into the architecture and ``.pt2`` programs.

Weights need the architecture in code (``Artifact.factory``): modelport's built-in models in
``verify``, the user's model in ``run``. A ``.pt2`` is a program: trusted folders only.
"""

from __future__ import annotations

from typing import Any

from modelport.errors import LoadError, one_line
from modelport.runtimes.base import Artifact, Availability, Runtime, Session
from modelport.runtimes.torchscript import _ModuleSession, _torch_available

__all__ = ["TorchRuntime"]


class TorchRuntime(Runtime):
    name = "torch"
    accepts = frozenset({"weights", "pt2"})
    default = True
    description = "eager PyTorch in this process: weights loaded into the model's code, torch.export programs"

    def available(self) -> Availability:
        return _torch_available()

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        from modelport.runtimes.torch_runner import TorchRunner

        name = f"{artifact.format}@{self.name}"
        if artifact.kind == "pt2":
            return _ModuleSession(name, TorchRunner(name, _program(artifact), artifact.signature, keyword=False))
        return _ModuleSession(name, TorchRunner(name, weights_clone(artifact), artifact.signature))


def _program(artifact: Artifact) -> Any:
    from modelport.exporters.quiet import TORCH_EXPORT_LOGGERS, collect_warnings
    from modelport.loaders import UnsafeFile, load_exported_program

    try:
        # Loading logs a line per symbol the program no longer uses (a while_loop's counter).
        with collect_warnings(None, loggers=TORCH_EXPORT_LOGGERS):
            return load_exported_program(artifact.path).module()
    except UnsafeFile:
        raise
    except Exception as e:
        raise LoadError(f"torch.export.load could not load {artifact.files[0]}: {one_line(e)}") from e


def weights_clone(artifact: Artifact) -> Any:
    from modelport import exporters
    from modelport.exporters.weights import WeightsExporter, load_weights_strict

    if artifact.factory is None:
        raise LoadError(f"{artifact.format} weights need the model's architecture in code to load into")
    exporter = exporters.get(artifact.format)
    assert isinstance(exporter, WeightsExporter)
    state = exporter.read_state(artifact.path)
    clone = _on_meta(artifact.factory)
    if clone is not None:
        # Built without memory for its weights, the clone takes the file's tensors as they are (assign=True):
        # one copy of the weights, not two (a fresh model's own plus the file's) while both are held.
        state = aligned(state)
        load_weights_strict(clone, state, artifact.files[0], assign=True)
        if any(t.is_meta for t in [*clone.parameters(), *clone.buffers()]):
            clone = None  # a buffer outside the state_dict (persistent=False) needs the model's own init
    if clone is None:
        clone = artifact.factory()
        load_weights_strict(clone, state, artifact.files[0])
    clone.eval()
    return clone


# torch allocates CPU tensors at 64-byte boundaries, and its kernels may take another path (another
# summation order) for memory that is not: safetensors places tensors at 8-byte offsets, and a clone
# computing on them was found off by 2e-8 on a batch of one. Tensors not at such a boundary are copied.
_ALIGNMENT = 64


def aligned(state: Any) -> Any:
    import torch

    if not isinstance(state, dict):
        return state  # load_weights_strict names what is wrong with it
    copies: dict[int, Any] = {}  # tied tensors (one object under two names) stay tied
    result = {}
    for key in list(state):
        value = state.pop(key)  # the file's tensor goes as soon as its copy is made: one tensor twice, not all
        if isinstance(value, torch.Tensor) and value.data_ptr() % _ALIGNMENT:
            value = copies.setdefault(id(value), value.clone())
        result[key] = value
    return result


def _on_meta(factory: Any) -> Any:
    """A fresh instance built on the meta device (no memory for weights), or None where the code refuses that."""
    import torch

    try:
        with torch.device("meta"):
            model = factory()
    except Exception:
        return None  # its __init__ computes with values (a table, a check): built normally instead
    return model if isinstance(model, torch.nn.Module) else None
