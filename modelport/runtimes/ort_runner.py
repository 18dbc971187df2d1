"""A Runner over an ``onnxruntime.InferenceSession`` opened from the saved file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import LoadError, one_line
from modelport.exporters.runtime import require
from modelport.loaders import check_onnx_external_data
from modelport.signature import Signature

if TYPE_CHECKING:
    import onnx

__all__ = ["OrtRunner"]


class OrtRunner:
    """Runs an ONNX file on the CPU execution provider, by signature names.

    ``extra_outputs`` (localisation) asks for intermediate values too: the graph is then opened as an
    in-memory copy listing them as outputs (its external data read from the file's own folder, nothing
    written beside it), and :meth:`infer_values` returns them with the outputs.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        signature: Signature,
        *,
        extra_outputs: Sequence[str] = (),
        graph: onnx.ModelProto | None = None,
    ) -> None:
        """``graph``: ``path``'s graph, already read (without its external data) and checked, not read again."""
        self.name = name
        self.signature = signature
        ort = require("onnxruntime")
        ort.set_default_logger_severity(3)  # errors only, also for what is logged before a session exists
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would interleave with our table
        # onnxruntime follows a hard-linked external-data file out of the folder: check references first.
        if graph is None:
            check_onnx_external_data(path)
        self.extra: list[str] = []
        try:
            if extra_outputs:
                source: str | bytes = self._with_outputs(path, extra_outputs, graph)
                options.add_session_config_entry(
                    "session.model_external_initializers_file_folder_path", str(path.parent)
                )
            else:
                source = str(path)
            self.session = ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise LoadError(f"onnxruntime could not open {path.name}: {one_line(e)}") from e
        graph_inputs = [i.name for i in self.session.get_inputs()]
        graph_outputs = [o.name for o in self.session.get_outputs()]
        if graph_inputs != signature.input_names or graph_outputs != [*signature.output_names, *self.extra]:
            raise LoadError(
                f"{path.name} has inputs {graph_inputs} and outputs {graph_outputs}, the manifest's signature "
                f"says {signature.input_names} and {signature.output_names}; re-export the model"
            )

    def _with_outputs(self, path: Path, values: Sequence[str], graph: onnx.ModelProto | None) -> bytes:
        """The graph (weights left in their data file) with ``values`` listed after its own outputs."""
        import onnx

        from modelport.loaders import load_onnx

        model = onnx.ModelProto()
        model.CopyFrom(graph if graph is not None else load_onnx(path, load_external_data=False))
        present = {o.name for o in model.graph.output}
        self.extra = [v for v in dict.fromkeys(values) if v not in present]
        model.graph.output.extend(onnx.ValueInfoProto(name=v) for v in self.extra)
        data: bytes = model.SerializeToString()
        return data

    def _feeds(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {spec.name: np.asarray(inputs[spec.name], order="C") for spec in self.signature.inputs}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self.signature.output_names, self._feeds(inputs))
        return {name: np.asarray(o) for name, o in zip(self.signature.output_names, outs, strict=True)}

    def infer_values(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs and every extra value, by graph value name (the outputs' are their signature names)."""
        names = [*self.signature.output_names, *self.extra]
        return {
            name: np.asarray(o) for name, o in zip(names, self.session.run(names, self._feeds(inputs)), strict=True)
        }

    def close(self) -> None:
        del self.session
