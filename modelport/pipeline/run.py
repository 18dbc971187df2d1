"""``modelport.run``: build, tensor I/O, one stage per format, validate, manifest (last)."""

from __future__ import annotations

import datetime as dt
import functools
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelport import exporters
from modelport.errors import UsageError, WriteError, one_line, resource_error
from modelport.exporters import ExportRequest, FormatRecord
from modelport.exporters.onnx_format import graph_facts
from modelport.loaders.trust import granted
from modelport.models import ModelSource, resolve_model
from modelport.models.source import BUILTIN
from modelport.pipeline.build import Built, build_model, probe_built, widen_for_export
from modelport.pipeline.candidates import check_pairing
from modelport.pipeline.determinism import ALLOWED_TO_DIFFER
from modelport.pipeline.determinism import check_determinism as compare_with_second_export
from modelport.pipeline.golden import write_golden
from modelport.pipeline.inputs import user_set
from modelport.pipeline.manifest import REPORT_NAME, list_artifacts, write_manifest
from modelport.pipeline.options import DEFAULT_SAMPLES, RunOptions
from modelport.pipeline.outdir import SET_ASIDE, OutputFolder
from modelport.pipeline.preflight import disk_needed
from modelport.pipeline.records import Determinism, Environment, Golden, LostSet, Report, StageRecord
from modelport.pipeline.report import render_markdown
from modelport.pipeline.stages import StageLog
from modelport.pipeline.tensor_io import tensor_round_trips
from modelport.pipeline.validate import input_sets, reference_replays, specialisation_hint
from modelport.pipeline.verify_weights import weights_notes
from modelport.runtimes.plan import pairings
from modelport.signature import torch_to_numpy
from modelport.signing import Signer
from modelport.specs import format_dynamic
from modelport.validators.candidate import not_run, vacuous_notes
from modelport.validators.records import CandidateResult

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
    runtimes: str | Sequence[str] | None = None,
    check_determinism: bool = False,
    target: str | None = None,
    strict_edges: bool = False,
    force: bool = False,
    sign_with: str | Path | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
) -> Report:
    """Run the whole pipeline and write the artifact folder; returns the report (also ``manifest.json``).

    ``model`` is a ``--model`` SPEC, or from Python an ``nn.Module`` (used with its current
    weights, with ``example_inputs``) or a callable. ``inputs`` are ``--input NAME=SHAPE[:DTYPE]``
    declarations, ``inputs_file`` is ``--inputs``, ``dynamic`` is ``--dynamic NAME:AXIS=label,...``.
    Raises UsageError for bad arguments
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
        target=target,
        strict_edges=strict_edges,
    )
    source = resolve_model(model, example_inputs)
    if check_determinism and not isinstance(model, str):
        raise UsageError("--check-determinism re-runs the export in a new process: pass the model as a SPEC string")
    # What a second, independent export needs to repeat this one exactly.
    repeat = {
        "model": source.spec,
        "formats": options.formats,
        "seed": options.seed,
        "atol": options.atol,
        "rtol": options.rtol,
        "tol": [f"{k}={a},{r}" if r is not None else f"{k}={a}" for k, (a, r) in options.per_format.items()],
        "onnx_exporter": options.export.onnx_exporter,
        "opset": options.export.opset,
        "torchscript_method": options.export.torchscript_method,
        "inputs": [f"{d.name}={'x'.join(map(str, d.shape))}:{d.dtype}" for d in options.build.inputs],
        "inputs_file": str(Path(options.inputs_file).resolve()) if options.inputs_file else None,
        "weights": str(Path(options.build.weights).resolve()) if options.build.weights else None,
        "dynamic": format_dynamic(options.build.dynamic, options.build.bounds),
        "samples": options.samples,
        "target": target,
        "strict_edges": options.strict_edges,
    }
    signer = Signer.create(sign_with)  # a bad key fails here, before any work
    reads = [Path(p) for p in (_model_file(model), options.build.weights, options.inputs_file) if p is not None]
    out_dir = Path(out) if out is not None else Path("artifacts") / source.name
    folder = OutputFolder(out_dir, force=force, protect=reads)
    try:
        with granted(folder.staging, "written by this run"):  # the only programs run loads are its own
            report = _run_stages(source, folder, options, on_stage, repeat if check_determinism else None)
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


def _check_target(request: ExportRequest, exporter: exporters.Exporter, fmt: FormatRecord) -> None:
    """Every ONNX file, derived ones included, must load in the --target release."""
    target = request.options.target
    if target is None or exporter.runtime != "onnxruntime":
        return
    facts = graph_facts(request.folder / fmt.files[0])
    problem = target.problem(facts["opset"], facts["ir_version"])
    if problem:
        raise RuntimeError(f"{fmt.files[0]} has {problem}; choose a newer --target")
    fmt.details["target"] = target.label


def _export_stage(
    exporter: exporters.Exporter, request: ExportRequest, built: Built
) -> Callable[[StageRecord], FormatRecord]:
    folder = request.folder

    def export(record: StageRecord) -> FormatRecord:
        before = {p for p in folder.rglob("*") if p.is_file()}
        try:
            fmt = exporter.export(request)
            _check_target(request, exporter, fmt)
            # Prove the saved file loads and runs before the full comparison.
            runner = exporter.load(folder, fmt, built.signature, built.source.factory)
            try:
                runner.infer({k: torch_to_numpy(v) for k, v in built.inputs.items()})
            finally:
                runner.close()
        except Exception:
            # A rejected artifact must not ship in the folder.
            for path in {p for p in folder.rglob("*") if p.is_file()} - before:
                path.unlink()
            raise
        if exporter.role == "model":  # the ranges every graph was exported with
            fmt.details.setdefault("dynamic_dims", built.signature.dims_text())
        record.details.update(fmt.details)
        record.notes.extend(fmt.notes)
        return fmt

    return export


def _needs(base: str, record: StageRecord) -> None:
    raise RuntimeError(f"needs the {base} export, which failed")


def _run_stages(
    source: ModelSource,
    out: OutputFolder,
    options: RunOptions,
    on_stage: Callable[[StageRecord], None] | None,
    repeat: dict[str, Any] | None = None,
) -> Report:
    log = StageLog(on_stage)
    spec = source.spec
    folder = out.staging

    def build(record: StageRecord) -> Built:
        built = build_model(source, options.seed, options.build)
        # Now the size is known, before any export: enough disk for every selected format?
        module = built.model
        weights = sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
        out.check_disk(disk_needed(weights, len(options.formats)))
        probe_built(built, options.formats, options.build.bounds)  # final dims for every exporter
        record.notes.extend(built.notes)
        record.details["parameters"] = built.info.parameters
        return built

    built = log.run("build", build)
    if built is None:
        raise UsageError(f"could not build model {spec!r}: {log.records[-1].reason}")

    def tensors(record: StageRecord) -> None:
        with tempfile.TemporaryDirectory(prefix="modelport-tensors-") as scratch:
            record.details.update(tensor_round_trips(Path(scratch)))

    # Real inputs are checked against the signature now, before minutes of exporting.
    user = user_set(options.inputs_file, built.signature) if options.inputs_file else None
    if user is not None:
        try:
            built.runner().infer(user.inputs)
        except Exception as e:
            raise UsageError(f"--inputs: the original model fails on them: {type(e).__name__}: {one_line(e)}") from e
    log.run("tensors", tensors)
    tolerances = options.tolerances(built.info.dtypes)

    records: dict[str, FormatRecord] = {}
    skipped: dict[str, str] = {}
    flat = built.flat if built.flat is not built.model else None
    export_inputs = widen_for_export(built.inputs, built.signature)
    for name in exporters.names():
        if name not in options.formats:
            log.skip(name, "not selected (--formats, --runtimes)")
            continue
        exporter = exporters.get(name)
        request = ExportRequest(built.model, export_inputs, built.signature, folder, options.export, flat, built.probe)
        reason = exporter.unsupported(request)
        if reason is not None:
            skipped[name] = reason
            log.skip(name, reason)
            continue
        base = exporter.derives_from
        if base is not None and base in options.formats and base not in records:
            # Its base export just failed: report that instead of failing the same way again.
            log.run(name, functools.partial(_needs, base))
            continue
        fmt = log.run(name, _export_stage(exporter, request, built))
        if fmt is not None:
            records[name] = fmt

    golden: Golden | None = None
    candidates: list[CandidateResult] = []
    lost: list[LostSet] = []

    def validate(record: StageRecord) -> None:
        nonlocal golden
        all_sets = input_sets(built, options.seed, options.samples, user)
        sets, replays, dropped = reference_replays(built, all_sets, record.notes)
        lost.extend(dropped)
        golden = write_golden(folder, sets, replays)
        record.details["input_sets"] = [s.name for s in sets]
        for pairing in pairings(options.formats, options.runtimes):
            name, runtime = pairing.format, pairing.runtime
            exporter = exporters.get(name)
            tol = tolerances[name]
            if name in skipped:
                candidates.append(not_run(pairing.candidate, name, runtime, tol, "export", skipped[name], skipped=True))
                continue
            if name not in records:
                stage = log.get(name)
                reason = stage.reason if stage and stage.reason else "export failed"
                candidates.append(not_run(pairing.candidate, name, runtime, tol, "export", reason))
                continue
            fmt = records[name]
            result = check_pairing(
                pairing,
                fmt,
                folder,
                built.signature,
                built.source.factory,
                replays,
                tol,
                selection=options.runtimes,
                gate_edges=options.strict_edges or not exporter.lossy,
            )
            hint = specialisation_hint(result, fmt)
            candidates.append(result.model_copy(update={"reason": hint}) if hint else result)
        if BUILTIN.get(spec) is None:  # verify cannot run a user's weights file: say now what it will prove
            record.notes.extend(weights_notes(folder, records, candidates, options.formats, skipped))
        record.notes.extend(vacuous_notes(candidates))
        failed = [f"{c.candidate} ({c.category or 'parity'})" for c in candidates if c.verdict == "fail"]
        if failed:
            raise RuntimeError(f"failed: {', '.join(failed)}")

    log.run("validate", validate)

    determinism: Determinism | None = None

    def second_export(record: StageRecord) -> None:
        nonlocal determinism
        assert repeat is not None
        allowed = {f for name in ALLOWED_TO_DIFFER if name in records for f in records[name].files}
        determinism = compare_with_second_export(folder, repeat, allowed)
        record.details.update(identical=len(determinism.identical), differs=determinism.differs)
        if determinism.allowed_to_differ:
            record.notes.append(f"allowed to differ (TorchScript): {', '.join(determinism.allowed_to_differ)}")
        if determinism.differs:
            differs = ", ".join(determinism.differs)
            raise RuntimeError(f"a second export in a new process gave other bytes for {differs}")

    if repeat is None:
        log.skip("determinism", "not requested (--check-determinism)")
    else:
        log.run("determinism", second_export)

    ok = all(r.status != "failed" for r in log.records) and all(c.verdict == "pass" for c in candidates)
    report = Report(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        environment=Environment.current(),
        model=built.info,
        signature=built.signature,
        options={
            "model": spec,
            "formats": options.formats,
            "seed": options.seed,
            "samples": options.samples,
            "onnx_exporter": options.export.onnx_exporter,
            "opset": options.export.opset,
            "torchscript_method": options.export.torchscript_method,
            "inputs": [f"{d.name}={'x'.join(map(str, d.shape))}:{d.dtype}" for d in options.build.inputs],
            "inputs_file": str(options.inputs_file) if options.inputs_file else None,
            "dynamic": {k: {str(a): v for a, v in axes.items()} for k, axes in options.build.dynamic.items()},
            "dynamic_ranges": {k: b.text(k) for k, b in options.build.bounds.items()},
            "target": options.export.target.label if options.export.target else None,
            # What the tolerances were resolved from, so that verify can resolve them again.
            "atol": options.atol,
            "rtol": options.rtol,
            "tol": [f"{k}={a},{r}" if r is not None else f"{k}={a}" for k, (a, r) in options.per_format.items()],
            "strict_edges": options.strict_edges,
            "runtimes": list(options.runtimes.names),
        },
        tolerances=tolerances,
        formats=records,
        artifacts=[],
        golden=golden,
        stages=log.records,
        candidates=candidates,
        determinism=determinism,
        lost_coverage=lost,
        verdict="pass" if ok else "fail",
    )

    def manifest(record: StageRecord) -> Report:
        # report.md is listed in the manifest, so it is written first; the manifest itself last.
        (folder / REPORT_NAME).write_text(render_markdown(report), encoding="utf-8")
        artifacts = list_artifacts(folder, records, golden)
        record.details["files"] = len(artifacts)
        return report.model_copy(update={"artifacts": artifacts})

    final = log.run("manifest", manifest)
    if final is None:
        raise RuntimeError(f"writing the manifest failed: {log.records[-1].reason}")
    final = final.model_copy(update={"stages": log.records})
    write_manifest(folder, final)
    return final
