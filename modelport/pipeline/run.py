"""``modelport.run``: check the options and the output folder, run the stages (``run_stages``), sign, commit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from modelport.errors import UsageError, WriteError, resource_error
from modelport.loaders.trust import granted
from modelport.models import resolve_model
from modelport.pipeline.context import RunContext
from modelport.pipeline.options import DEFAULT_SAMPLES, RunOptions
from modelport.pipeline.outdir import SET_ASIDE, OutputFolder
from modelport.pipeline.records import Report, StageRecord
from modelport.pipeline.run_stages import run_stages
from modelport.pipeline.settings import FormatTol, RunSettings
from modelport.pipeline.stages import StageEvent, StageRunner
from modelport.runtimes.plan import Selection
from modelport.signing import Signer
from modelport.specs import format_dynamic

__all__ = ["run"]


def run(
    model: str | object = "mlp",
    *,
    out: str | Path | None = None,
    formats: str | Sequence[str] | None = None,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
    tol: str | Sequence[str] | None = None,
    onnx_exporter: str = "dynamo",
    opset: int | None = None,
    torchscript_method: str = "trace",
    inputs: str | Sequence[str] | None = None,
    inputs_file: str | Path | None = None,
    weights: str | Path | None = None,
    dynamic: str | Sequence[str] | None = None,
    samples: int = DEFAULT_SAMPLES,
    example_inputs: object = None,
    runtimes: str | Sequence[str] | Selection | None = None,
    runtime_timeout: float | None = None,
    check_determinism: bool = False,
    target: str | None = None,
    strict_edges: bool = False,
    profile: bool = False,
    batch_sizes: str | Sequence[int] | None = None,
    localize: bool = True,
    force: bool = False,
    sign_with: str | Path | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
    on_event: Callable[[StageEvent], None] | None = None,
) -> Report:
    """Run the whole pipeline and write the artifact folder; returns the report (also ``manifest.json``).

    ``model`` is a ``--model`` SPEC, or from Python an ``nn.Module`` (used with its current
    weights, with ``example_inputs``) or a callable. ``inputs`` are ``--input NAME=SHAPE[:DTYPE]``
    declarations, ``inputs_file`` is ``--inputs``, ``dynamic`` is ``--dynamic NAME:AXIS=label,...``.
    ``profile`` times every candidate that passed at ``batch_sizes`` (default 1, 8, 64) into
    ``report.profile``. ``localize`` (default on) finds, for every candidate that fails parity, the
    first module whose output diverges (``candidate.localization``). Raises UsageError for bad arguments
    before anything is written. A failing stage or parity check does not raise: it makes
    ``report.verdict == "fail"``.
    """
    options = RunOptions.create(
        formats=formats,
        seed=seed,
        atol=atol,
        rtol=rtol,
        tol=tol,
        onnx_exporter=onnx_exporter,
        opset=opset,
        torchscript_method=torchscript_method,
        inputs=inputs,
        inputs_file=inputs_file,
        weights=weights,
        dynamic=dynamic,
        samples=samples,
        runtimes=runtimes,
        runtime_timeout=runtime_timeout,
        target=target,
        strict_edges=strict_edges,
        profile=profile,
        batch_sizes=batch_sizes,
        localize=localize,
    )
    source = resolve_model(model, example_inputs)
    if check_determinism and not isinstance(model, str):
        raise UsageError("--check-determinism re-runs the export in a new process: pass the model as a SPEC string")
    settings = _settings(options, source.spec, target)
    signer = Signer.create(sign_with)  # a bad key fails here, before any work
    reads = [Path(p) for p in (_model_file(model), options.build.weights, options.inputs_file) if p is not None]
    out_dir = Path(out) if out is not None else Path("artifacts") / source.name
    folder = OutputFolder(out_dir, force=force, protect=reads)
    try:
        stages: StageRunner[RunContext] = StageRunner(_events(on_stage, on_event))
        ctx = RunContext(source, folder, options, settings, stages, check_determinism=check_determinism)
        with granted(folder.staging, "written by this run"):  # the only programs run loads are its own
            report = run_stages(ctx)
        signer.sign(folder.staging)
        final = folder.commit()
        aside = folder.aside
    except BaseException as e:
        folder.abort()
        if (cause := resource_error(e)) is not None:  # disk full, size limit, read-only: not the model's fault
            where = cause.filename or folder.target
            raise WriteError(
                f"cannot write {where}: {cause.strerror}; the run stopped and {folder.target} is as it was"
            ) from e
        raise
    finally:
        folder.release()
    notes = [*report.notes, f"{SET_ASIDE}: {aside}"] if aside is not None else report.notes
    return report.model_copy(update={"output_dir": str(final), "notes": notes})


def _model_file(model: object) -> Path | None:
    """The file a ``--model`` SPEC imports (the --force policy never replaces a folder holding it)."""
    if not isinstance(model, str) or ":" not in model:
        return None
    target = model.rpartition(":")[0]
    if target.endswith(".py") or "/" in target or "\\" in target:
        return Path(target)
    file = getattr(sys.modules.get(target), "__file__", None)
    return Path(file) if isinstance(file, str) else None


def _settings(options: RunOptions, spec: str, target: str | None) -> RunSettings:
    """What this run was asked for, as the manifest records it and a second export repeats it."""
    return RunSettings(
        model=spec,
        formats=options.formats,
        seed=options.seed,
        samples=options.samples,
        atol=options.atol,
        rtol=options.rtol,
        tol={k: FormatTol(atol=a, rtol=r) for k, (a, r) in options.per_format.items()},
        onnx_exporter=options.export.onnx_exporter,
        opset=options.export.opset,
        torchscript_method=options.export.torchscript_method,
        inputs=[f"{d.name}={'x'.join(map(str, d.shape))}:{d.dtype}" for d in options.build.inputs],
        inputs_file=str(Path(options.inputs_file).resolve()) if options.inputs_file else None,
        weights=str(Path(options.build.weights).resolve()) if options.build.weights else None,
        dynamic=format_dynamic(options.build.dynamic, options.build.bounds),
        target=target,
        strict_edges=options.strict_edges,
        runtimes=list(options.runtimes.names),
        profile=options.profile is not None,
        batch_sizes=list(options.profile or ()),
        localize=options.localize,
    )


def _events(
    on_stage: Callable[[StageRecord], None] | None, on_event: Callable[[StageEvent], None] | None
) -> Callable[[StageEvent], None] | None:
    """Every stage event to ``on_event``; each stage's record, when it ends, to ``on_stage``."""
    if on_stage is None and on_event is None:
        return None

    def emit(event: StageEvent) -> None:
        if on_event is not None:
            on_event(event)
        if on_stage is not None and event.kind == "end" and event.record is not None:
            on_stage(event.record)

    return emit
