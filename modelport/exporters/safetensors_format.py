"""``safetensors``: weights without pickle, reloaded into a fresh instance of the architecture."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modelport.errors import LoadError
from modelport.exporters.base import ExportRequest, FormatRecord
from modelport.exporters.weights import WeightsExporter, digests_while
from modelport.fsutil import atomic_path
from modelport.loaders import UnsafeFile, load_safetensors

__all__ = ["SafetensorsExporter"]

FILE = "model.safetensors"


class SafetensorsExporter(WeightsExporter):
    name = "safetensors"
    main_file = FILE

    def export(self, request: ExportRequest) -> FormatRecord:
        # save_model drops tied (shared) duplicates and records them in the metadata as
        # removed-name -> kept-name, which read_state uses to restore them.
        from safetensors.torch import save_model  # imports torch: only when exporting

        def write() -> None:
            with atomic_path(request.folder / FILE) as tmp:
                save_model(request.model, str(tmp))

        digests = digests_while(request.model, write)
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            tensors=digests,
            notes=["load with safetensors.torch.load_file into a fresh instance of the architecture"],
        )

    def read_state(self, path: Path) -> Mapping[str, object]:
        try:
            state, metadata = load_safetensors(path)
        except UnsafeFile as e:
            raise LoadError(f"safetensors file {path.name} refused: {e}") from e
        except Exception as e:
            raise LoadError(f"safetensors could not read {path.name}: {e}") from e
        for removed, kept in metadata.items():
            if removed not in state and kept in state:
                state[removed] = state[kept]
        return state
