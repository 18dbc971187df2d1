"""``RunSettings``: what a run was asked for, one typed record, stored as such in the manifest.

The same record feeds the manifest (``Report.options``), the tolerance and golden-set checks
``verify`` makes from it, and the second export of ``--check-determinism`` (``run_kwargs``), so
no option is written down twice or parsed back from text. Manifests of schema 1 (modelport 0.1.0)
wrote a looser dict (``tol`` as ``FORMAT=ATOL,RTOL`` strings, ``dynamic`` as a mapping); they are
read into the same record.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FormatTol", "RunSettings"]


class FormatTol(BaseModel):
    """``--tol FORMAT=ATOL[,RTOL]``: an rtol of None keeps the format's default rtol."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    atol: float = Field(ge=0, allow_inf_nan=False)
    rtol: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str  # the --model SPEC, or a description of a Python object
    formats: list[str]
    seed: int
    samples: int
    atol: float | None = None
    rtol: float | None = None
    tol: dict[str, FormatTol] = {}
    onnx_exporter: Literal["dynamo", "legacy"] = "dynamo"
    opset: int | None = None
    torchscript_method: Literal["trace", "script"] = "trace"
    inputs: list[str] = []  # --input NAME=SHAPE:DTYPE declarations
    inputs_file: str | None = None
    weights: str | None = None
    dynamic: list[str] = []  # --dynamic NAME:AXIS=label[range] values, as they parse back
    target: str | None = None  # --target onnxruntime==X.Y
    strict_edges: bool = False
    runtimes: list[str] = ["torch", "torchscript", "onnxruntime"]
    profile: bool = False  # --profile: latency of every candidate that passed
    batch_sizes: list[int] = []  # --batch-sizes for --profile
    localize: bool = True  # --no-localize: False

    @model_validator(mode="before")
    @classmethod
    def _from_schema_1(cls, data: Any) -> Any:
        """Schema 1's dict: tol as strings, dynamic as {input: {axis: label}} beside dynamic_ranges."""
        if not isinstance(data, dict) or not isinstance(data.get("tol"), list):
            return data
        data = dict(data)
        tol: dict[str, dict[str, float | None]] = {}
        for item in data["tol"]:
            name, _, values = str(item).partition("=")
            parts = values.split(",")
            try:  # ValueError: pydantic reports it as a damaged manifest, in one line
                tol[name] = {"atol": float(parts[0]), "rtol": float(parts[1]) if len(parts) > 1 else None}
            except (ValueError, IndexError):
                raise ValueError(f"tol entry {str(item)[:40]!r} is not FORMAT=ATOL[,RTOL]") from None
        data["tol"] = tol
        ranges = data.pop("dynamic_ranges", None) or {}
        dynamic = data.get("dynamic")
        if not isinstance(ranges, dict) or not all(isinstance(v, str) for v in ranges.values()):
            raise ValueError("dynamic_ranges is not a mapping of label -> range")
        if isinstance(dynamic, dict):
            specs = []
            for name, axes in dynamic.items():
                if not isinstance(axes, dict) or not all(isinstance(v, str) for v in axes.values()):
                    raise ValueError(f"dynamic[{str(name)[:40]!r}] is not a mapping of axis -> label")
                labels = ",".join(f"{axis}={ranges.get(label, label)}" for axis, label in axes.items())
                specs.append(f"{name}:{labels}")
            data["dynamic"] = specs
        return data

    def tol_strings(self) -> list[str]:
        return [f"{k}={v.atol},{v.rtol}" if v.rtol is not None else f"{k}={v.atol}" for k, v in self.tol.items()]

    def run_kwargs(self) -> dict[str, Any]:
        """The ``modelport.run`` arguments that repeat this run (the second export of --check-determinism)."""
        return {
            "model": self.model,
            "formats": self.formats,
            "seed": self.seed,
            "atol": self.atol,
            "rtol": self.rtol,
            "tol": self.tol_strings(),
            "onnx_exporter": self.onnx_exporter,
            "opset": self.opset,
            "torchscript_method": self.torchscript_method,
            "inputs": self.inputs,
            "inputs_file": self.inputs_file,
            "weights": self.weights,
            "dynamic": self.dynamic,
            "samples": self.samples,
            "target": self.target,
            "strict_edges": self.strict_edges,
        }
