"""``torchscript``: ``torch.jit.load`` in this process. TorchScript is code: trusted folders only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelport.errors import LoadError, one_line
from modelport.runtimes.base import Artifact, Availability, Runtime, Session, python_module

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TorchScriptRuntime"]


class _ModuleSession(Session):
    """Calls a loaded module (TorchScript, a torch.export module, a clone) through a TorchRunner."""

    def __init__(self, name: str, runner: Any) -> None:
        self.name, self._runner = name, runner

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs: dict[str, np.ndarray] = self._runner.infer(inputs)
        return outputs

    def close(self) -> None:
        self._runner.close()


class TorchScriptRuntime(Runtime):
    name = "torchscript"
    accepts = frozenset({"torchscript"})
    default = True
    description = "torch.jit.load in this process"

    def available(self) -> Availability:
        return _torch_available()

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        from modelport.exporters.torchscript import QuietRunner, quiet_jit
        from modelport.loaders import UnsafeFile, load_torchscript

        name = f"{artifact.format}@{self.name}"
        try:
            with quiet_jit():
                module = load_torchscript(artifact.path)
        except UnsafeFile:
            raise
        except Exception as e:
            raise LoadError(f"torch.jit.load could not load {artifact.files[0]}: {one_line(e)}") from e
        module.eval()
        return _ModuleSession(name, QuietRunner(name, module, artifact.signature, keyword=_keyword(artifact)))


def _keyword(artifact: Artifact) -> bool:
    """A traced module takes the flat positional form; a scripted one is the user's own module."""
    return artifact.signature.call == "keyword" and artifact.details.get("method") == "script"


def _torch_available() -> Availability:
    return python_module("torch", "torch")
