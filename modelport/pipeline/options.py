"""Everything ``run`` accepts, checked before any work or any write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelport import exporters
from modelport.errors import UsageError
from modelport.exporters import ExportOptions
from modelport.pipeline.build import BuildOptions
from modelport.specs import parse_dynamic, parse_input_decl
from modelport.validators.records import Tolerance
from modelport.validators.tolerance import parse_tol_list, resolve_tolerances

__all__ = ["DEFAULT_SAMPLES", "RunOptions"]

DEFAULT_SAMPLES = 3  # seeded random input sets with the example's shapes


def _strings(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class RunOptions:
    formats: list[str]
    seed: int
    tolerances: dict[str, Tolerance]
    export: ExportOptions
    build: BuildOptions
    samples: int
    inputs_file: Path | None

    @classmethod
    def create(
        cls,
        *,
        formats: str | Sequence[str] | None,
        seed: int,
        atol: float | None,
        rtol: float | None,
        tol: str | Sequence[str] | None,
        onnx_exporter: str,
        opset: int | None,
        torchscript_method: str,
        inputs: str | Sequence[str] | None,
        inputs_file: str | Path | None,
        weights: str | Path | None,
        dynamic: str | Sequence[str] | None,
        samples: int,
    ) -> RunOptions:
        selected = exporters.parse_formats(
            formats if formats is None or isinstance(formats, str) else ",".join(formats)
        )
        if onnx_exporter not in ("dynamo", "legacy"):
            raise UsageError(f"--onnx-exporter must be dynamo or legacy, got {onnx_exporter!r}")
        if torchscript_method not in ("trace", "script"):
            raise UsageError(f"--torchscript-method must be trace or script, got {torchscript_method!r}")
        if opset is not None:
            import onnx.defs

            newest = onnx.defs.onnx_opset_version()
            if not 7 <= opset <= newest:
                raise UsageError(f"--opset must be between 7 and {newest} (the newest this onnx knows), got {opset}")
        for name, value in (("--atol", atol), ("--rtol", rtol)):
            if value is not None and not (value >= 0 and value != float("inf")):
                raise UsageError(f"{name} must be a finite number >= 0, got {value}")
        if not isinstance(seed, int) or seed < 0:
            raise UsageError(f"--seed must be a whole number >= 0, got {seed!r}")
        if not isinstance(samples, int) or not 0 <= samples <= 1000:
            raise UsageError(f"--samples must be a whole number from 0 to 1000, got {samples!r}")
        per_format = parse_tol_list(_strings(tol), exporters.names())
        defaults = {name: exporters.get(name).tolerance for name in selected}
        decls = tuple(parse_input_decl(t) for t in _strings(inputs))
        names = [d.name for d in decls]
        if len(set(names)) != len(names):
            raise UsageError(f"--input names must be unique, got {names}")
        weights_path = Path(weights) if weights is not None else None
        if weights_path is not None and not weights_path.is_file():
            raise UsageError(f"--weights {weights_path}: no such file")
        inputs_path = Path(inputs_file) if inputs_file is not None else None
        if inputs_path is not None and not inputs_path.is_file():
            raise UsageError(f"--inputs {inputs_path}: no such file")
        method: Literal["trace", "script"] = "script" if torchscript_method == "script" else "trace"
        exporter: Literal["dynamo", "legacy"] = "legacy" if onnx_exporter == "legacy" else "dynamo"
        return cls(
            formats=selected,
            seed=seed,
            tolerances=resolve_tolerances(defaults, atol=atol, rtol=rtol, per_format=per_format),
            export=ExportOptions(onnx_exporter=exporter, opset=opset, torchscript_method=method),
            build=BuildOptions(inputs=decls, dynamic=parse_dynamic(_strings(dynamic)), weights=weights_path),
            samples=samples,
            inputs_file=inputs_path,
        )
