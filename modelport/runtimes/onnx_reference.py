"""``onnx_reference``: onnx's own ``ReferenceEvaluator``, an implementation that shares no kernel with onnxruntime.

A second opinion in Python: slow (numpy, one operator at a time) and without every operator or
onnxruntime's own contrib operators (``com.microsoft``), which are named when it cannot run a graph.
An error inside its kernels is a limit of this runtime too (``Unsupported``): a skip unless named;
the outputs it does compute are compared like any other runtime's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelport.errors import LoadError, one_line
from modelport.runtimes.base import Artifact, Availability, Runtime, Session, Unsupported, python_module

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxReferenceRuntime"]


def _lacks_operator(error: BaseException) -> bool:
    """onnx.reference's own "not implemented" errors (an operator, a type, an attribute it lacks)."""
    return isinstance(error, NotImplementedError) or type(error).__name__ == "RuntimeImplementationError"


class _ReferenceSession(Session):
    def __init__(self, name: str, evaluator: Any, artifact: Artifact) -> None:
        self.name, self._evaluator, self._signature = name, evaluator, artifact.signature

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        feeds = {spec.name: np.asarray(inputs[spec.name], order="C") for spec in self._signature.inputs}
        try:
            outs = self._evaluator.run(self._signature.output_names, feeds)
        except Exception as e:
            if _lacks_operator(e):
                raise Unsupported(f"the ONNX reference does not implement it: {one_line(e)}") from e
            # Its numpy kernels do not cover every case onnx allows (BERT's attention mask reshape raises
            # ValueError there): an error, not a number, so a limit of this runtime like a missing operator.
            raise Unsupported(f"the ONNX reference failed while running it ({type(e).__name__}: {one_line(e)})") from e
        return {name: np.asarray(o) for name, o in zip(self._signature.output_names, outs, strict=True)}

    def close(self) -> None:
        self._evaluator = None


class OnnxReferenceRuntime(Runtime):
    name = "onnx_reference"
    accepts = frozenset({"onnx"})
    partial = True
    description = "onnx.reference.ReferenceEvaluator: onnx's reference implementation, in Python"

    def available(self) -> Availability:
        return python_module("onnx.reference", "onnx")

    def unsupported(self, artifact: Artifact) -> str | None:
        from modelport.loaders import load_onnx

        try:
            model = load_onnx(artifact.path, load_external_data=False)
        except Exception:
            return None  # open() reports a file it cannot read
        foreign = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
        if foreign:
            return f"the ONNX reference implements no {', '.join(foreign)} (onnxruntime's own operators)"
        return None

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        from onnx.reference import ReferenceEvaluator

        from modelport.loaders import load_onnx

        try:
            evaluator = ReferenceEvaluator(load_onnx(artifact.path))
        except Exception as e:
            if _lacks_operator(e):
                raise Unsupported(f"the ONNX reference does not implement it: {one_line(e)}") from e
            raise LoadError(f"the ONNX reference could not load {artifact.files[0]}: {one_line(e)}") from e
        return _ReferenceSession(f"{artifact.format}@{self.name}", evaluator, artifact)
