"""A Runner over an ``onnxruntime.InferenceSession`` opened from the saved file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from modelport.errors import LoadError, one_line
from modelport.exporters.runtime import require
from modelport.loaders import check_onnx_external_data
from modelport.signature import Signature

__all__ = ["OrtRunner"]


class OrtRunner:
    """Runs an ONNX file on the CPU execution provider, by signature names."""

    def __init__(self, name: str, path: Path, signature: Signature) -> None:
        self.name = name
        self.signature = signature
        ort = require("onnxruntime")
        ort.set_default_logger_severity(3)  # errors only, also for what is logged before a session exists
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would interleave with our table
        # onnxruntime follows a hard-linked external-data file out of the folder: check references first.
        check_onnx_external_data(path)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise LoadError(f"onnxruntime could not open {path.name}: {one_line(e)}") from e
        graph_inputs = [i.name for i in self.session.get_inputs()]
        graph_outputs = [o.name for o in self.session.get_outputs()]
        if graph_inputs != signature.input_names or graph_outputs != signature.output_names:
            raise LoadError(
                f"{path.name} has inputs {graph_inputs} and outputs {graph_outputs}, the manifest's signature "
                f"says {signature.input_names} and {signature.output_names}; re-export the model"
            )

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {spec.name: np.asarray(inputs[spec.name], order="C") for spec in self.signature.inputs}
        outs = self.session.run(self.signature.output_names, feeds)
        return {name: np.asarray(o) for name, o in zip(self.signature.output_names, outs, strict=True)}

    def close(self) -> None:
        del self.session
