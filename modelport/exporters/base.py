"""The contracts every format implements: an Exporter writes files, a Runner runs them.

Adding a format is one module that defines an ``Exporter`` subclass and registers it
(see ``modelport.exporters``). ``export`` writes into the artifact folder and returns a
``FormatRecord``; ``load`` reads *the saved files* back and returns a ``Runner``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from modelport.exporters.targets import Target
from modelport.format_record import FormatRecord
from modelport.runtimes.base import Artifact, ArtifactKind
from modelport.signature import Signature
from modelport.validators.records import Tolerance

if TYPE_CHECKING:  # torch and numpy only in annotations: verify's ONNX replay imports this without them
    import numpy as np
    import torch

    from modelport.exporters.shapes import ShapeProbe

__all__ = ["ExportOptions", "ExportRequest", "Exporter", "FormatRecord", "ModelFactory", "Runner"]

ModelFactory = Callable[[], "torch.nn.Module"]


@dataclass(frozen=True)
class ExportOptions:
    onnx_exporter: Literal["dynamo", "legacy"] = "dynamo"
    opset: int | None = None
    torchscript_method: Literal["trace", "script"] = "trace"
    target: Target | None = None  # --target onnxruntime==X.Y: the ONNX files must load there

    @property
    def onnx_opset(self) -> int | None:
        """The opset to ask the exporter for: --opset, else the target's newest, else the exporter's default."""
        if self.opset is not None:
            return self.opset
        return self.target.max_opset if self.target is not None else None


@dataclass(frozen=True)
class ExportRequest:
    model: torch.nn.Module  # the user's module, in eval mode
    inputs: dict[str, torch.Tensor]  # the example inputs, in signature order
    signature: Signature
    folder: Path  # the artifact folder; exporters write files directly under it
    options: ExportOptions = field(default_factory=ExportOptions)
    flat: torch.nn.Module | None = None  # positional inputs -> flat tuple of outputs, when model is not already
    probe: ShapeProbe | None = None  # the shape probe's torch.export result, when it ran (reused by torch_export)

    @property
    def graph_module(self) -> torch.nn.Module:
        """What graph exporters (trace, torch.export, ONNX) capture: inputs and outputs in signature order."""
        return self.flat if self.flat is not None else self.model


class Runner(Protocol):
    """Runs a loaded artifact. Inputs and outputs are keyed by signature names."""

    name: str

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class Exporter(ABC):
    """One deployable format. Class attributes are its declarative contract."""

    name: ClassVar[str]  # the format name used by --formats
    main_file: ClassVar[str]  # the file a runtime opens, always this name in an artifact folder
    runtime: ClassVar[str]  # what runs it: "torch", "torchscript", "onnxruntime"
    kind: ClassVar[ArtifactKind]  # what its main file is, as runtimes see it (modelport.runtimes.base)
    role: ClassVar[str]  # "weights" (needs the architecture in code) or "model" (self-contained)
    tolerance: ClassVar[Tolerance]  # the documented default
    tolerance_why: ClassVar[str]  # one line: why this default
    derives_from: ClassVar[str | None] = None  # a format whose export this one starts from
    # Lossy by design (fp16, int8): judged on representative input sets; synthetic edge sets
    # (zeros, inputs x100) are reported and flagged, and gate only with --strict-edges.
    lossy: ClassVar[bool] = False
    # The main file is a program (TorchScript, .pt2): loading it runs code it carries, so it is
    # loaded only from a trusted folder (``modelport.loaders.trust``).
    code: ClassVar[bool] = False
    only_runtimes: ClassVar[frozenset[str] | None] = None  # the runtimes that may run it, when not every one
    # Its files' size as a share of the float32 weights (the pre-flight disk check): fp16 0.5, int8 0.25.
    disk_share: ClassVar[float] = 1.0

    @property
    def candidate(self) -> str:
        return f"{self.name}@{self.runtime}"

    def unsupported(self, request: ExportRequest) -> str | None:
        """Why this format cannot serve this model (it is then skipped with that reason), or None."""
        return None

    @abstractmethod
    def export(self, request: ExportRequest) -> FormatRecord:
        """Write the artifact's files under ``request.folder``."""

    def check_file(self, folder: Path, record: FormatRecord) -> None:  # noqa: B027 - most formats need none
        """The format's own check that its file is what it claims (an fp16 graph, an int8 graph), before any
        runtime opens it; raises ``LoadError``."""

    def load(
        self,
        folder: Path,
        record: FormatRecord,
        signature: Signature,
        factory: ModelFactory | None,
        runtime: str | None = None,
        timeout: float | None = None,
    ) -> Runner:
        """Open the saved files from ``folder`` in ``runtime`` (default: this format's own runtime);
        ``timeout`` bounds each program another runtime runs (default ``DEFAULT_TIMEOUT``)."""
        from modelport import runtimes
        from modelport.runtimes.process import DEFAULT_TIMEOUT

        self.check_file(folder, record)
        artifact = Artifact(
            format=self.name,
            kind=self.kind,
            folder=folder,
            files=tuple(record.files),
            signature=signature,
            factory=factory,
            details=dict(record.details),
        )
        limit = DEFAULT_TIMEOUT if timeout is None else timeout
        session: Runner = runtimes.get(runtime or self.runtime).open(artifact, timeout=limit)
        return session
