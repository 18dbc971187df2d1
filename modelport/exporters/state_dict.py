"""``state_dict``: ``torch.save(model.state_dict())``, reloaded into a fresh instance with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch

from modelport.errors import LoadError
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord, ModelFactory, Runner
from modelport.exporters.torch_runner import TorchRunner
from modelport.exporters.weights import load_weights_strict
from modelport.fsutil import atomic_write
from modelport.signature import Signature
from modelport.validators.records import Tolerance

__all__ = ["StateDictExporter"]

FILE = "state_dict.pt"


class StateDictExporter(Exporter):
    name = "state_dict"
    runtime = "torch"
    role = "weights"
    tolerance = Tolerance(atol=0.0, rtol=0.0)
    tolerance_why = "the same weights in the same eager kernels: bit-identical by design"

    def export(self, request: ExportRequest) -> FormatRecord:
        # Through a handle: torch.save names the archive's inner folder after a path's
        # file name, so saving by handle keeps the bytes independent of temporary names.
        with atomic_write(request.folder / FILE) as fh:
            torch.save(request.model.state_dict(), fh)
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            details={"tensors": len(request.model.state_dict())},
            notes=["load with torch.load(path, weights_only=True) into a fresh instance of the architecture"],
        )

    def load(self, folder: Path, record: FormatRecord, signature: Signature, factory: ModelFactory | None) -> Runner:
        if factory is None:
            raise LoadError("state_dict weights need the model's architecture in code to load into")
        path = folder / record.files[0]
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as e:
            raise LoadError(f"torch.load(weights_only=True) refused {record.files[0]}: {e}") from e
        clone = factory()
        load_weights_strict(clone, state, record.files[0])
        clone.eval()
        return TorchRunner(f"{self.name}@{self.runtime}", clone, signature)
