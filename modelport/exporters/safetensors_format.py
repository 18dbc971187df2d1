"""``safetensors``: weights without pickle, reloaded into a fresh instance of the architecture."""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_model

from modelport.errors import LoadError
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord, ModelFactory, Runner
from modelport.exporters.torch_runner import TorchRunner
from modelport.exporters.weights import load_weights_strict
from modelport.fsutil import atomic_path
from modelport.signature import Signature
from modelport.validators.records import Tolerance

__all__ = ["SafetensorsExporter"]

FILE = "model.safetensors"


class SafetensorsExporter(Exporter):
    name = "safetensors"
    runtime = "torch"
    role = "weights"
    tolerance = Tolerance(atol=0.0, rtol=0.0)
    tolerance_why = "the same weights in the same eager kernels: bit-identical by design"

    def export(self, request: ExportRequest) -> FormatRecord:
        # save_model drops tied (shared) duplicates and records them in the metadata as
        # removed-name -> kept-name, which load() uses to restore them.
        with atomic_path(request.folder / FILE) as tmp:
            save_model(request.model, str(tmp))
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            notes=["load with safetensors.torch.load_file into a fresh instance of the architecture"],
        )

    def load(self, folder: Path, record: FormatRecord, signature: Signature, factory: ModelFactory | None) -> Runner:
        if factory is None:
            raise LoadError("safetensors weights need the model's architecture in code to load into")
        path = folder / record.files[0]
        try:
            state = load_file(str(path), device="cpu")
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
        except Exception as e:
            raise LoadError(f"safetensors could not read {record.files[0]}: {e}") from e
        for removed, kept in metadata.items():
            if removed not in state and kept in state:
                state[removed] = state[kept]
        clone = factory()
        load_weights_strict(clone, state, record.files[0])
        clone.eval()
        return TorchRunner(f"{self.name}@{self.runtime}", clone, signature)
