"""``torch_export``: a ``.pt2`` ExportedProgram (``torch.export.save`` / ``torch.export.load``) with the dynamic axes.

The archive is written without pickled parts (no example inputs) and read only after
``modelport.loaders.check_pt2``; a ``.pt2`` is still a program: load one only from a folder you trust.
"""

from __future__ import annotations

from modelport.errors import ExportError, one_line
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord
from modelport.exporters.dims import request_probe
from modelport.exporters.shapes import ShapeProbe
from modelport.fsutil import atomic_write
from modelport.loaders import check_pt2
from modelport.validators.records import Tolerance

__all__ = ["TorchExportExporter", "failure_message"]

FILE = "model.pt2"


def failure_message(probe: ShapeProbe) -> str:
    """Why torch.export could not export, torch's own words (and suggested fix) kept."""
    if probe.specialised:
        labels = ", ".join(probe.specialised)
        fixes = "; ".join(f.text for f in probe.specialised.values())
        return (
            f"torch.export fixes {labels} to the example's size ({fixes}) although the eager model runs at other "
            "sizes: the model's code takes a size-dependent path while traced (a Python branch or int() on a size); "
            f"drop {labels} from --dynamic or leave torch_export out of --formats. torch: {probe.error}"
        )
    return f"torch.export failed: {probe.error} (data-dependent Python control flow needs torch.cond)"


class TorchExportExporter(Exporter):
    name = "torch_export"
    kind = "pt2"
    main_file = FILE
    runtime = "torch"
    code = True  # torch.export.load resolves the graph's targets and expressions: a program
    role = "model"
    tolerance = Tolerance(atol=1e-6, rtol=1e-5)
    tolerance_why = "the exported graph runs the same aten kernels; measured 0 on the MLP"

    def export(self, request: ExportRequest) -> FormatRecord:
        import torch  # only when exporting: verify's ONNX replay imports this module without it

        probe = request_probe(request)
        if probe.program is None:
            raise ExportError(failure_message(probe))
        program = probe.program
        notes = list(probe.warnings)
        # Stack traces hold the builder's absolute paths; the archive must not depend on them.
        for node in program.graph.nodes:
            node.meta.pop("stack_trace", None)
        try:
            # Through a handle, so the archive does not carry a temporary file's name.
            # No example inputs: torch stores them as a pickle, which a reader must never unpickle.
            saved_inputs = program.example_inputs
            program.example_inputs = None
            try:
                with atomic_write(request.folder / FILE) as fh:
                    torch.export.save(program, fh)
            finally:
                program.example_inputs = saved_inputs
            check_pt2(request.folder / FILE)  # what we write must pass the checks every reader applies
        except Exception as e:
            raise ExportError(f"torch.export.save failed: {one_line(e)}") from e
        ranges = {str(k): str(v) for k, v in program.range_constraints.items()}
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            details={
                "range_constraints": "; ".join(f"{k}: {v}" for k, v in ranges.items()) or None,
                "dynamic_dims": probe.signature.dims_text(),
            },
            notes=[*notes, "a .pt2 is a program: load it only from folders you trust"],
        )
