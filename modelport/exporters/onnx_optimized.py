"""``onnx_optimized``: onnxruntime's own optimized graph, saved as a file and checked like the rest.

Saved at the "extended" level: fusions that onnxruntime's CPU provider runs. The file
is meant for onnxruntime (it may hold ``com.microsoft`` operators), not for other runtimes.
"""

from __future__ import annotations

from modelport.errors import ExportError, one_line
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord
from modelport.exporters.onnx_check import check_onnx_file
from modelport.exporters.onnx_derived import base_onnx, count_ops, op_types
from modelport.exporters.onnx_format import no_bfloat16
from modelport.exporters.onnx_save import data_file, file_roles, onnx_output
from modelport.exporters.runtime import require
from modelport.validators.records import Tolerance

__all__ = ["OnnxOptimizedExporter"]

FILE = "model.optimized.onnx"


class OnnxOptimizedExporter(Exporter):
    name = "onnx_optimized"
    main_file = FILE
    runtime = "onnxruntime"
    kind = "onnx"
    # Fusions of the onnxruntime release that wrote it (com.microsoft operators): no other runtime runs it.
    only_runtimes = frozenset({"onnxruntime"})
    role = "model"
    derives_from = "onnx"
    tolerance = Tolerance(atol=1e-5, rtol=1e-5)
    tolerance_why = "fused kernels reorder float ops like the plain graph does; measured as the onnx format"

    def unsupported(self, request: ExportRequest) -> str | None:
        target = request.options.target
        if target is not None:
            from importlib.metadata import version

            installed = tuple(int(p) for p in version("onnxruntime").split(".")[:2])
            if installed != target.version:
                return (
                    f"the optimized graph is onnxruntime {installed[0]}.{installed[1]}'s own, with its fusions; "
                    f"it is not made for {target.label} (optimize it there, or leave out --target)"
                )
        return no_bfloat16(request)

    def export(self, request: ExportRequest) -> FormatRecord:
        ort = require("onnxruntime")
        with base_onnx(request) as source:
            before = op_types(source)
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            # This session only writes the optimized graph and never runs: packing weights for its kernels
            # would hold another copy of them (the saved file is the same without it).
            options.add_session_config_entry("session.disable_prepacking", "1")
            path = request.folder / FILE
            try:
                with onnx_output(path) as target:
                    options.optimized_model_filepath = str(target)
                    if data_file(source).exists():
                        # Its own data file: without it, the graph would point at model.onnx.data (and need it).
                        options.add_session_config_entry(
                            "session.optimized_model_external_initializers_file_name", data_file(target).name
                        )
                        options.add_session_config_entry(
                            "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
                        )
                    session = ort.InferenceSession(
                        str(source), sess_options=options, providers=["CPUExecutionProvider"]
                    )
                    del session  # its copy of the weights goes before the next stage
            except Exception as e:
                raise ExportError(f"onnxruntime could not optimize the graph: {one_line(e)}") from e
        after = count_ops(check_onnx_file(path))
        files, roles = file_roles(path)
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=files,
            roles=roles,
            details={
                "level": "extended",
                "nodes_before": sum(before.values()),
                "nodes_after": sum(after.values()),
                "ops": ", ".join(f"{k}x{v}" for k, v in sorted(after.items())),
            },
            notes=["optimized for onnxruntime's CPU provider: load it with onnxruntime"],
        )
