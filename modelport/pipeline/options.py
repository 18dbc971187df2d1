"""Everything ``run`` accepts, checked before any work or any write (the CLI and the API alike)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modelport import exporters
from modelport.errors import UsageError
from modelport.exporters import ExportOptions
from modelport.exporters.targets import Target, parse_target
from modelport.runtimes import DEFAULT as DEFAULT_RUNTIMES
from modelport.runtimes.plan import Selection, runs, select
from modelport.specs import parse_dynamic_spec, parse_input_decl
from modelport.validators.records import Tolerance
from modelport.validators.tolerance import parse_tol_list, resolve_tolerances

if TYPE_CHECKING:  # build imports torch; verify needs only check_timeout from here
    from modelport.pipeline.build import BuildOptions

__all__ = ["DEFAULT_SAMPLES", "MAX_SEED", "RunOptions", "string_list"]

DEFAULT_SAMPLES = 3  # seeded random input sets with the example's shapes
MAX_SEED = 2**62  # input set k is drawn from seed + k, which must stay a valid 64-bit seed


def string_list(value: object, flag: str) -> list[str]:
    """A flag that takes a string or a list of strings (the CLI's repeatable flags, the API's lists)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UsageError(f"{flag} takes a string or a list of strings, got {type(value).__name__}")


def _tolerance_value(value: object, flag: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{flag} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} must be a finite number >= 0, got {value!r}")
    return float(value)


def _whole(value: object, flag: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{flag} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _path(value: object, flag: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise UsageError(f"{flag} takes a path, got {type(value).__name__}")
    path = Path(value)
    try:
        exists = path.is_file()
    except OSError as e:
        raise UsageError(f"{flag} {path}: {e.strerror or e}") from e
    if not exists:
        raise UsageError(f"{flag} {path}: no such file")
    return path


def check_timeout(value: object) -> float | None:
    """``--runtime-timeout``: seconds, finite and positive."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"--runtime-timeout must be a number of seconds above 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RunOptions:
    formats: list[str]
    seed: int
    atol: float | None
    rtol: float | None
    per_format: dict[str, tuple[float, float | None]]
    export: ExportOptions
    build: BuildOptions
    samples: int
    inputs_file: Path | None
    strict_edges: bool = False  # lossy formats gate on synthetic edge sets too
    runtimes: Selection = field(default_factory=lambda: Selection(DEFAULT_RUNTIMES))  # --runtimes
    runtime_timeout: float | None = None  # --runtime-timeout: seconds per runtime program
    profile: tuple[int, ...] | None = None  # --profile: the batch sizes to time every passing candidate at
    localize: bool = True  # a failing candidate: find the first diverging module (--no-localize: off)

    def tolerances(self, dtypes: Iterable[str]) -> dict[str, Tolerance]:
        """Per selected format; the defaults depend on the model's parameter dtypes (float16 rounds coarser)."""
        dtypes = list(dtypes)
        defaults = {name: exporters.default_tolerance(name, dtypes) for name in self.formats}
        return resolve_tolerances(defaults, atol=self.atol, rtol=self.rtol, per_format=self.per_format)

    @classmethod
    def create(
        cls,
        *,
        formats: object,
        seed: object,
        atol: object,
        rtol: object,
        tol: object,
        onnx_exporter: object,
        opset: object,
        torchscript_method: object,
        inputs: object,
        inputs_file: object,
        weights: object,
        dynamic: object,
        samples: object,
        runtimes: object = None,
        runtime_timeout: object = None,
        target: object = None,
        strict_edges: object = False,
        profile: object = False,
        batch_sizes: object = None,
        localize: object = True,
    ) -> RunOptions:
        from modelport.pipeline.build import BuildOptions

        selected = exporters.parse_formats(",".join(string_list(formats, "--formats")) if formats is not None else None)
        chosen = (
            runtimes
            if isinstance(runtimes, Selection)
            else select(string_list(runtimes, "--runtimes") if runtimes is not None else None)
        )
        # A format no selected runtime runs is not exported (nothing could check it).
        selected = [f for f in selected if any(runs(f, r) for r in chosen.names)]
        if not selected:
            raise UsageError(f"no selected format runs on {chosen.describe()}; widen --formats or --runtimes")
        if onnx_exporter not in ("dynamo", "legacy"):
            raise UsageError(f"--onnx-exporter must be dynamo or legacy, got {onnx_exporter!r}")
        if torchscript_method not in ("trace", "script"):
            raise UsageError(f"--torchscript-method must be trace or script, got {torchscript_method!r}")
        if opset is not None:
            import onnx.defs

            opset = _whole(opset, "--opset", 7, onnx.defs.onnx_opset_version())
        decls = tuple(parse_input_decl(t) for t in string_list(inputs, "--input"))
        dynamic_spec = parse_dynamic_spec(string_list(dynamic, "--dynamic"))
        names = [d.name for d in decls]
        if len(set(names)) != len(names):
            raise UsageError(f"--input names must be unique, got {names}")
        return cls(
            formats=selected,
            seed=_whole(seed, "--seed", 0, MAX_SEED),
            atol=_tolerance_value(atol, "--atol"),
            rtol=_tolerance_value(rtol, "--rtol"),
            per_format=parse_tol_list(string_list(tol, "--tol"), exporters.names()),
            export=ExportOptions(
                onnx_exporter="legacy" if onnx_exporter == "legacy" else "dynamo",
                opset=opset,
                torchscript_method=_method(torchscript_method),
                target=_target(target),
            ),
            build=BuildOptions(
                inputs=decls,
                dynamic=dynamic_spec.axes,
                bounds=dynamic_spec.bounds,
                weights=_path(weights, "--weights"),
            ),
            samples=_whole(samples, "--samples", 0, 1000),
            inputs_file=_path(inputs_file, "--inputs"),
            strict_edges=bool(strict_edges),
            runtimes=chosen,
            runtime_timeout=check_timeout(runtime_timeout),
            profile=_profile(profile, batch_sizes),
            localize=bool(localize),
        )


def _profile(profile: object, batch_sizes: object) -> tuple[int, ...] | None:
    from modelport.profiling.figures import parse_batch_sizes

    if batch_sizes is not None and not profile:
        raise UsageError("--batch-sizes sets the sizes --profile times; add --profile")
    if not profile:
        return None
    if batch_sizes is not None and not isinstance(batch_sizes, str | list | tuple):
        raise UsageError(f"--batch-sizes takes sizes such as 1,8,64, got {type(batch_sizes).__name__}")
    return parse_batch_sizes(batch_sizes)


def _target(value: object) -> Target | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"--target takes a string such as onnxruntime==1.17, got {type(value).__name__}")
    return parse_target(value)


def _method(value: object) -> Literal["trace", "script"]:
    return "script" if value == "script" else "trace"
