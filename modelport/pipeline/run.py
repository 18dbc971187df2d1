"""``modelport.run``: build, tensor I/O, one stage per format, validate, manifest (last)."""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from modelport import exporters
from modelport.errors import UsageError
from modelport.exporters import ExportOptions, ExportRequest, FormatRecord
from modelport.models import resolve_model
from modelport.pipeline.build import Built, build_model
from modelport.pipeline.golden import write_npz
from modelport.pipeline.inputs import InputSet, sweep_sets
from modelport.pipeline.manifest import REPORT_NAME, list_artifacts, write_manifest
from modelport.pipeline.outdir import OutputFolder
from modelport.pipeline.records import Environment, Golden, GoldenSet, Report, StageRecord
from modelport.pipeline.report import render_markdown
from modelport.pipeline.stages import StageLog
from modelport.pipeline.tensor_io import tensor_round_trips
from modelport.validators.candidate import ReplaySet, check_candidate, not_run
from modelport.validators.records import CandidateResult, Tolerance
from modelport.validators.tolerance import parse_tol_list, resolve_tolerances

__all__ = ["run"]


def _check_opset(opset: int | None) -> None:
    if opset is None:
        return
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise UsageError(f"--opset must be between 7 and {newest} (the newest this onnx knows), got {opset}")


def run(
    model: str = "mlp",
    *,
    out: str | Path | None = None,
    formats: str | Sequence[str] | None = None,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
    tol: str | Sequence[str] | None = None,
    onnx_exporter: Literal["dynamo", "legacy"] = "dynamo",
    opset: int | None = None,
    force: bool = False,
    on_stage: Callable[[StageRecord], None] | None = None,
) -> Report:
    """Run the whole pipeline and write the artifact folder; returns the report (also ``manifest.json``).

    Raises UsageError for bad arguments before anything is written. A failing stage or
    parity check does not raise: it makes ``report.verdict == "fail"``.
    """
    # Everything the user passed is checked before any work or any write.
    selected = exporters.parse_formats(formats if formats is None or isinstance(formats, str) else ",".join(formats))
    if onnx_exporter not in ("dynamo", "legacy"):
        raise UsageError(f"--onnx-exporter must be dynamo or legacy, got {onnx_exporter!r}")
    _check_opset(opset)
    for name, value in (("--atol", atol), ("--rtol", rtol)):
        if value is not None and not value >= 0:
            raise UsageError(f"{name} must be a number >= 0, got {value}")
    per_format = parse_tol_list([tol] if isinstance(tol, str) else (tol or []), exporters.names())
    defaults = {name: exporters.get(name).tolerance for name in selected}
    tolerances = resolve_tolerances(defaults, atol=atol, rtol=rtol, per_format=per_format)
    source = resolve_model(model)
    folder = OutputFolder(Path(out) if out is not None else Path("artifacts") / source.name, force=force)

    try:
        report = _run_stages(
            source_spec=model,
            folder=folder.staging,
            selected=selected,
            seed=seed,
            tolerances=tolerances,
            options=ExportOptions(onnx_exporter=onnx_exporter, opset=opset),
            on_stage=on_stage,
        )
        final = folder.commit()
    except BaseException:
        folder.abort()
        raise
    return report.model_copy(update={"output_dir": str(final)})


def _run_stages(
    *,
    source_spec: str,
    folder: Path,
    selected: list[str],
    seed: int,
    tolerances: dict[str, Tolerance],
    options: ExportOptions,
    on_stage: Callable[[StageRecord], None] | None,
) -> Report:
    log = StageLog(on_stage)
    source = resolve_model(source_spec)

    def build(record: StageRecord) -> Built:
        built = build_model(source, seed)
        record.notes.extend(built.notes)
        record.details["parameters"] = built.info.parameters
        return built

    built = log.run("build", build)
    if built is None:
        raise UsageError(f"could not build model {source_spec!r}: {log.records[-1].reason}")

    def tensors(record: StageRecord) -> None:
        with tempfile.TemporaryDirectory(prefix="modelport-tensors-") as scratch:
            record.details.update(tensor_round_trips(Path(scratch)))

    log.run("tensors", tensors)

    records: dict[str, FormatRecord] = {}
    for name in exporters.names():
        if name not in selected:
            log.skip(name, "not selected (--formats)")
            continue
        exporter = exporters.get(name)
        request = ExportRequest(built.model, built.inputs, built.signature, folder, options)

        def export(
            record: StageRecord, exporter: exporters.Exporter = exporter, request: ExportRequest = request
        ) -> FormatRecord:
            before = {p for p in folder.rglob("*") if p.is_file()}
            try:
                fmt = exporter.export(request)
                # Prove the saved file loads and runs before the full comparison.
                runner = exporter.load(folder, fmt, built.signature, built.source.factory)
                try:
                    runner.infer({k: v.numpy() for k, v in built.inputs.items()})
                finally:
                    runner.close()
            except Exception:
                # A rejected artifact must not ship in the folder.
                for path in {p for p in folder.rglob("*") if p.is_file()} - before:
                    path.unlink()
                raise
            record.details.update(fmt.details)
            record.notes.extend(fmt.notes)
            return fmt

        fmt = log.run(name, export)
        if fmt is not None:
            records[name] = fmt

    golden: Golden | None = None
    candidates: list[CandidateResult] = []

    def validate(record: StageRecord) -> None:
        nonlocal golden
        sets = [InputSet("example", "the example input X", {k: v.numpy() for k, v in built.inputs.items()})]
        sets += sweep_sets(built.signature, built.inputs, seed)
        reference_runner = built.runner()
        replays = [ReplaySet("example", sets[0].inputs, built.reference)]
        replays += [ReplaySet(s.name, s.inputs, reference_runner.infer(s.inputs)) for s in sets[1:]]
        golden = _write_golden(folder, sets, replays)
        record.details["input_sets"] = [s.name for s in sets]
        dtypes = {t.name: t.dtype for t in built.signature.outputs}
        for name in selected:
            exporter = exporters.get(name)
            tol = tolerances[name]
            if name not in records:
                stage = log.get(name)
                reason = stage.reason if stage and stage.reason else "export failed"
                candidates.append(not_run(exporter.candidate, name, exporter.runtime, tol, "export", reason))
                continue
            fmt = records[name]
            candidates.append(
                check_candidate(
                    exporter.candidate,
                    name,
                    exporter.runtime,
                    functools.partial(exporter.load, folder, fmt, built.signature, built.source.factory),
                    replays,
                    tol,
                    dtypes,
                )
            )
        failed = [f"{c.candidate} ({c.category or 'parity'})" for c in candidates if c.verdict == "fail"]
        if failed:
            raise RuntimeError(f"failed: {', '.join(failed)}")

    log.run("validate", validate)

    ok = all(r.status != "failed" for r in log.records) and all(c.verdict == "pass" for c in candidates)
    report = Report(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        environment=Environment.current(),
        model=built.info,
        signature=built.signature,
        options={
            "model": source_spec,
            "formats": selected,
            "seed": seed,
            "onnx_exporter": options.onnx_exporter,
            "opset": options.opset,
            "torchscript_method": options.torchscript_method,
        },
        tolerances=tolerances,
        formats=records,
        artifacts=[],
        golden=golden,
        stages=log.records,
        candidates=candidates,
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


def _write_golden(folder: Path, sets: list[InputSet], replays: list[ReplaySet]) -> Golden:
    write_npz(folder / "golden" / "inputs.npz", sets[0].inputs)
    write_npz(folder / "golden" / "outputs.npz", replays[0].reference)
    golden_sets = []
    for s, replay in zip(sets[1:], replays[1:], strict=True):
        base = f"golden/sets/{s.name}"
        write_npz(folder / base / "inputs.npz", s.inputs)
        write_npz(folder / base / "outputs.npz", replay.reference)
        golden_sets.append(
            GoldenSet(
                name=s.name,
                description=s.description,
                inputs=f"{base}/inputs.npz",
                outputs=f"{base}/outputs.npz",
            )
        )
    return Golden(inputs="golden/inputs.npz", outputs="golden/outputs.npz", sets=golden_sets)
