"""``torchscript``: ``torch.jit.trace`` (or ``script``), saved, reloaded with ``torch.jit.load``.

TorchScript is deprecated upstream: every ``torch.jit`` call in torch 2.13 raises a
DeprecationWarning. We call it on purpose, so those warnings are caught and turned into
one note in the report instead of noise in the user's output. Tracer warnings are kept
as notes too: they are the first clue when a trace specialised on the example input.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from modelport.errors import ExportError, one_line
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord
from modelport.exporters.quiet import collect_warnings
from modelport.fsutil import atomic_write
from modelport.runtimes.torch_runner import TorchRunner
from modelport.validators.records import Tolerance

if TYPE_CHECKING:  # torch only when exporting or running: verify's ONNX replay imports this without it
    import numpy as np
    import torch

__all__ = ["DEPRECATION_NOTE", "TorchScriptExporter", "quiet_jit", "strip_debug_records"]

FILE = "model.torchscript.pt"
_CHUNK = 1 << 24
DEPRECATION_NOTE = "TorchScript is deprecated upstream (torch.jit.* warns on every call); prefer onnx for deployment"


def _is_jit_deprecation(w: warnings.WarningMessage) -> bool:
    return issubclass(w.category, DeprecationWarning) and "torch.jit" in str(w.message).replace("`", "")


def quiet_jit(notes: list[str] | None = None) -> contextlib.AbstractContextManager[None]:
    """Silence torch.jit's deprecation warnings; keep every other warning (tracer warnings) as a note."""
    return collect_warnings(notes, drop=_is_jit_deprecation)


def strip_debug_records(archive: IO[bytes], out: IO[bytes]) -> None:
    """Copy the TorchScript archive to ``out`` without its ``*.debug_pkl`` records, with a content-derived
    serialization id.

    The debug records hold the builder's absolute source paths (the model's file, modelport's,
    torch's in site-packages); ``torch.jit.load`` does not need them. The serialization id is
    random per save; here it is a digest of the other records, so it changes only with them.
    Records are streamed in chunks: a 3 GB model's weights are never held in memory again.
    """
    source = zipfile.ZipFile(archive)
    kept = [i for i in source.infolist() if not i.filename.endswith(".debug_pkl")]
    digest = hashlib.sha256()
    for info in kept:
        if not info.filename.endswith("serialization_id"):
            digest.update(info.filename.encode())
            with source.open(info) as record:
                while chunk := record.read(_CHUNK):
                    digest.update(chunk)
    with zipfile.ZipFile(out, "w") as target:
        for info in kept:
            clean = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            clean.compress_type = info.compress_type
            if info.filename.endswith(".data/serialization_id"):
                target.writestr(clean, digest.hexdigest()[: info.file_size].encode())
                continue
            clean.file_size = info.file_size  # known up front, as writestr would set it: the same bytes
            with source.open(info) as record, target.open(clean, "w") as dest:
                shutil.copyfileobj(record, dest, _CHUNK)


class TorchScriptExporter(Exporter):
    name = "torchscript"
    kind = "torchscript"
    main_file = FILE
    runtime = "torchscript"
    code = True  # torch.jit.load runs the module's own code
    role = "model"
    tolerance = Tolerance(atol=1e-6, rtol=1e-5)
    tolerance_why = "a re-executed graph may reorder float ops; measured 0 on the MLP, 10x under 1e-6"

    def export(self, request: ExportRequest) -> FormatRecord:
        import torch

        method = request.options.torchscript_method
        notes: list[str] = [DEPRECATION_NOTE]
        args = tuple(request.inputs.values())
        try:
            with quiet_jit(notes):
                if method == "script":
                    module = torch.jit.script(request.model)
                else:
                    # Under no_grad: some layers (TransformerEncoderLayer) take a fused path
                    # only without autograd, and the trace check would see two graphs.
                    with torch.no_grad():
                        module = torch.jit.trace(request.graph_module, args)  # type: ignore[no-untyped-call]
                # Saved by path (to a handle, torch.jit.save serializes the whole archive in memory first), as
                # "archive": the archive's inner folder is named after the file, and a buffer's is "archive",
                # so the bytes are those of a save to memory. Then copied without its debug records.
                with tempfile.TemporaryDirectory(dir=request.folder, prefix=".torchscript-") as scratch:
                    saved = Path(scratch) / "archive"
                    module.save(str(saved))  # type: ignore[no-untyped-call]
                    with saved.open("rb") as archive, atomic_write(request.folder / FILE) as fh:
                        strip_debug_records(archive, fh)
        except Exception as e:
            other = "script" if method == "trace" else "trace"
            raise ExportError(
                f"torch.jit.{method} failed: {one_line(e)}; try --torchscript-method {other}, or leave "
                "torchscript out of --formats"
            ) from e
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            details={"method": method},
            notes=notes,
        )


class QuietRunner(TorchRunner):
    """Calling a loaded TorchScript module may warn too; keep the user's output clean."""

    def infer_torch(self, args: list[torch.Tensor]) -> dict[str, np.ndarray]:
        with quiet_jit():
            return super().infer_torch(args)
