"""``onnxruntime``: ONNX Runtime's CPU execution provider, in this process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelport.errors import LoadError
from modelport.runtimes.base import Artifact, Availability, Runtime, Session, python_module

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxRuntime"]


class _OrtSession(Session):
    def __init__(self, artifact: Artifact, name: str) -> None:
        from modelport.runtimes.ort_runner import OrtRunner

        if not artifact.path.is_file():
            raise LoadError(f"{artifact.files[0]} is missing from {artifact.folder}")
        self.name = name
        self._runner: OrtRunner | None = OrtRunner(name, artifact.path, artifact.signature)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._runner is None:
            raise LoadError(f"{self.name} was closed")
        return self._runner.infer(inputs)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    accepts = frozenset({"onnx"})
    default = True
    description = "ONNX Runtime, CPU execution provider, in this process"

    def available(self) -> Availability:
        return python_module("onnxruntime", "onnxruntime")

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        return _OrtSession(artifact, f"{artifact.format}@{self.name}")
