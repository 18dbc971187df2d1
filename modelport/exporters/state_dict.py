"""``state_dict``: ``torch.save(model.state_dict())``, reloaded with ``weights_only=True``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modelport.errors import LoadError
from modelport.exporters.base import ExportRequest, FormatRecord
from modelport.exporters.weights import WeightsExporter, digests_while
from modelport.fsutil import atomic_write
from modelport.loaders import load_torch

__all__ = ["StateDictExporter"]

FILE = "state_dict.pt"


class StateDictExporter(WeightsExporter):
    name = "state_dict"
    main_file = FILE

    def export(self, request: ExportRequest) -> FormatRecord:
        # Through a handle: torch.save names the archive's inner folder after a path's
        # file name, so saving by handle keeps the bytes independent of temporary names.
        import torch

        def write() -> None:
            with atomic_write(request.folder / FILE) as fh:
                torch.save(request.model.state_dict(), fh)

        digests = digests_while(request.model, write)
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            details={"tensors": len(request.model.state_dict())},
            tensors=digests,
            notes=["load with torch.load(path, weights_only=True) into a fresh instance of the architecture"],
        )

    def read_state(self, path: Path) -> Mapping[str, object]:
        try:
            state: Mapping[str, object] = load_torch(path, mmap=True)  # pages read as used, not copied
        except Exception as e:
            raise LoadError(f"torch.load(weights_only=True) refused {path.name}: {e}") from e
        return state
