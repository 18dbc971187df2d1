"""An ONNX file's intermediate values, computed by onnxruntime in a temporary copy of the graph.

The copy lists the values as extra graph outputs and lives in memory only: it is loaded from bytes
with its external data read from the artifact's own folder, so nothing is written beside the
artifact. A module's own error comes from a second copy cut down to that module's nodes
(``onnx.utils.Extractor``), fed the reference's inputs to the module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import LoadError, one_line
from modelport.signature import Signature

if TYPE_CHECKING:
    import onnx

__all__ = ["ExposedGraph", "load_graph", "run_module_alone"]

# A copy cut to one module is built in memory; above protobuf's limit it cannot be serialised.
_MAX_BYTES = 1_800_000_000


def load_graph(path: Path) -> onnx.ModelProto:
    """The graph without its external data (checked, not read): the copies point at the artifact's data file."""
    from modelport.loaders import check_onnx_external_data, load_onnx

    check_onnx_external_data(path)
    try:
        return load_onnx(path, load_external_data=False)
    except Exception as e:
        raise LoadError(f"onnx could not read {path.name}: {one_line(e)}") from e


def _session(model: onnx.ModelProto, folder: Path) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # The copy is in memory: its external data is found in the artifact's folder.
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(folder))
    data = model.SerializeToString()
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


class ExposedGraph:
    """The artifact's graph with ``values`` added as outputs: the ONNX Runtime runner asked for extra outputs."""

    def __init__(self, path: Path, signature: Signature, values: Sequence[str], graph: onnx.ModelProto) -> None:
        from modelport.runtimes.ort_runner import OrtRunner

        self.signature = signature
        self.runner: OrtRunner | None = OrtRunner(path.name, path, signature, extra_outputs=values, graph=graph)
        self.values = self.runner.extra

    def run(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The graph's own outputs by signature name, and every value (exposed or output) by its name."""
        assert self.runner is not None, "closed"
        values = self.runner.infer_values(inputs)
        return {n: values[n] for n in self.signature.output_names}, values

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None


def run_module_alone(
    model: onnx.ModelProto, folder: Path, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]
) -> dict[str, np.ndarray]:
    """Run only the nodes between ``feeds`` (value names) and ``outputs``: one module fed chosen values."""
    import onnx.utils

    if model.ByteSize() > _MAX_BYTES:
        raise LoadError("the graph is above protobuf's 2 GB limit in memory: no copy of one module can be cut")
    typed = {v.name for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    if not set(feeds) | set(outputs) <= typed:
        # The legacy exporter records no intermediate types, which the Extractor needs for its new inputs.
        import onnx.shape_inference

        model = onnx.shape_inference.infer_shapes(model)
    extractor = onnx.utils.Extractor(model)
    sub = extractor.extract_model(list(feeds), list(outputs))
    kept = {i.name for i in sub.graph.input}
    missing = [v for v in feeds if v not in kept]
    if missing:
        raise LoadError(f"values {missing} are not inputs of the module's nodes")
    session = _session(sub, folder)
    got = session.run(list(outputs), {k: np.asarray(v, order="C") for k, v in feeds.items()})  # type: ignore[attr-defined]
    return dict(zip(outputs, (np.asarray(a) for a in got), strict=True))
