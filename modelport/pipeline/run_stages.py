"""The stages of ``modelport run``, in order: build, tensors, one per format, validate, determinism, manifest.

Each is a ``Stage`` over the ``RunContext`` (``modelport/pipeline/context.py``) with its inputs and
outputs there; ``run_stages`` runs them and assembles the report.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from modelport import exporters
from modelport.errors import ExportError, NotReproducible, ParityFailure, StageError, UsageError, one_line
from modelport.exporters import ExportRequest, FormatRecord
from modelport.exporters.onnx_format import graph_facts
from modelport.memory import let_go, module_bytes
from modelport.models.source import BUILTIN
from modelport.pipeline.build import build_model, probe_built, release_weights, widen_for_export
from modelport.pipeline.candidates import check_pairing
from modelport.pipeline.context import RunContext
from modelport.pipeline.determinism import ALLOWED_TO_DIFFER
from modelport.pipeline.determinism import check_determinism as compare_with_second_export
from modelport.pipeline.golden import write_golden
from modelport.pipeline.inputs import user_set
from modelport.pipeline.manifest import HTML_REPORT_NAME, REPORT_NAME, list_artifacts, write_manifest
from modelport.pipeline.offload import offload, restore
from modelport.pipeline.preflight import check_memory, disk_needed
from modelport.pipeline.records import Environment, Report, StageRecord
from modelport.pipeline.report import render_markdown
from modelport.pipeline.stages import Stage
from modelport.pipeline.tensor_io import tensor_round_trips
from modelport.pipeline.validate import input_sets, reference_replays, specialisation_hint
from modelport.pipeline.verify_weights import weights_notes
from modelport.profiling.stage import ProfileStage
from modelport.reports.html_report import render_html
from modelport.runtimes.plan import pairings
from modelport.signature import torch_to_numpy
from modelport.validators.candidate import not_run, vacuous_notes

__all__ = ["run_stages"]


class BuildStage(Stage[RunContext]):
    """The model, its example inputs, signature and reference; the disk check; the shape probe."""

    name = "build"

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        options = ctx.options
        built = build_model(ctx.source, options.seed, options.build)
        # Now the size is known, before any export: enough disk for every selected format?
        module = built.model
        weights = module_bytes(module)
        ctx.out.check_disk(disk_needed(weights, options.formats))
        check_memory(weights)
        ctx.weight_bytes = weights
        ctx.stages.progress("probing shapes")
        probe_built(built, options.formats, options.build.bounds)  # final dims for every exporter
        record.notes.extend(built.notes)
        record.details["parameters"] = built.info.parameters
        ctx.built = built
        ctx.tolerances = options.tolerances(built.info.dtypes)


class TensorsStage(Stage[RunContext]):
    """The chapter's tensor I/O: a tensor, a list and a dict saved and loaded back exactly (scratch files)."""

    name = "tensors"

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        with tempfile.TemporaryDirectory(prefix="modelport-tensors-") as scratch:
            record.details.update(tensor_round_trips(Path(scratch)))


# Above this many bytes of weights an export is loaded back by the validate stage only, where the
# original's weights are already freed: loading it here would hold the weights twice.
LOAD_BACK_LIMIT = 1 << 30


class ExportStage(Stage[RunContext]):
    """One format: export, check the target, load the saved file back and run it once; a rejected file is removed."""

    def __init__(self, fmt: str) -> None:
        self.name = fmt
        self.exporter = exporters.get(fmt)

    def _request(self, ctx: RunContext) -> ExportRequest:
        built = ctx.model
        flat = built.flat if built.flat is not built.model else None
        inputs = widen_for_export(built.inputs, built.signature)
        return ExportRequest(built.model, inputs, built.signature, ctx.folder, ctx.options.export, flat, built.probe)

    def skip_reason(self, ctx: RunContext) -> str | None:
        if self.name not in ctx.options.formats:
            return "not selected (--formats, --runtimes)"
        reason = self.exporter.unsupported(self._request(ctx))
        if reason is not None:
            ctx.skipped[self.name] = reason
        return reason

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        base = self.exporter.derives_from
        if base is not None and base in ctx.options.formats and base not in ctx.records:
            # Its base export just failed: report that instead of failing the same way again.
            raise ExportError(f"needs the {base} export, which failed")
        folder, built = ctx.folder, ctx.model
        before = set(folder.rglob("*"))
        try:
            fmt = self._export(ctx, record)
            _check_target(ctx, self.exporter, fmt)
            if ctx.weight_bytes <= LOAD_BACK_LIMIT:
                self._load_back(ctx, fmt)
            else:
                record.notes.append(
                    f"loaded back by the validate stage, after the original's weights are freed: "
                    f"{ctx.weight_bytes / (1 << 30):.1f} GiB of weights are held once at a time, not twice"
                )
        except Exception:
            # A rejected artifact must not ship in the folder, nor the scratch folder of an export process
            # that was killed: new files first, then new folders, deepest first.
            new = set(folder.rglob("*")) - before
            for path in sorted(new, key=lambda p: len(p.parts), reverse=True):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise
        let_go(ctx.weight_bytes)  # the exporter's graphs (torch.fx, ONNX IR) sit in reference cycles
        if self.exporter.role == "model":  # the ranges every graph was exported with
            fmt.details.setdefault("dynamic_dims", built.signature.dims_text())
        record.details.update(fmt.details)
        record.notes.extend(fmt.notes)
        ctx.records[self.name] = fmt

    def _export(self, ctx: RunContext, record: StageRecord) -> FormatRecord:
        from modelport.exporters import derived_worker

        main = self.exporter.main_file
        big = ctx.weight_bytes >= derived_worker.CHILD_EXPORT_LIMIT
        if self.name in derived_worker.DERIVED and big and (ctx.folder / exporters.get("onnx").main_file).is_file():
            if ctx.offloaded is None and (done := offload(ctx.model, ctx.records)) is not None:
                ctx.offloaded = done
                record.notes.append(
                    f"the original's weights set aside while the derived graphs convert; {done.fmt} gives them back"
                )
            ctx.stages.progress(f"writing {main} in its own process (its memory ends with it)")
            signature = ctx.model.signature.model_dump_json()
            record.notes.append(f"converted in its own process: {ctx.weight_bytes / (1 << 30):.1f} GiB of weights")
            return derived_worker.export_in_child(self.name, ctx.folder, ctx.options.export, signature)
        ctx.stages.progress(f"writing {main}")  # the long, silent part for a big model
        return self.exporter.export(self._request(ctx))

    def _load_back(self, ctx: RunContext, fmt: FormatRecord) -> None:
        built = ctx.model
        ctx.stages.progress(f"loading {fmt.files[0]} back")
        runner = self.exporter.load(ctx.folder, fmt, built.signature, built.source.factory)
        try:
            runner.infer({k: torch_to_numpy(v) for k, v in built.inputs.items()})
        finally:
            runner.close()


def _check_target(ctx: RunContext, exporter: exporters.Exporter, fmt: FormatRecord) -> None:
    """Every ONNX file, derived ones included, must load in the --target release."""
    target = ctx.options.export.target
    if target is None or exporter.kind != "onnx":
        return
    facts = graph_facts(ctx.folder / fmt.files[0])
    problem = target.problem(facts["opset"], facts["ir_version"])
    if problem:
        raise ExportError(f"{fmt.files[0]} has {problem}; choose a newer --target")
    fmt.details["target"] = target.label


class ValidateStage(Stage[RunContext]):
    """The golden data, then every planned candidate (FORMAT@RUNTIME) on every input set."""

    name = "validate"

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        built, options = ctx.model, ctx.options
        if ctx.offloaded is not None:  # the original runs again: its weights back from the file, bit for bit
            ctx.stages.progress(f"reading the original's weights back from {ctx.offloaded.fmt}")
            restore(built, ctx.folder, ctx.offloaded, ctx.records[ctx.offloaded.fmt])
            ctx.offloaded = None
        planned = input_sets(built, options.seed, options.samples, ctx.user)
        ctx.stages.progress(f"the original's outputs on {len(planned)} input sets")
        sets, replays, dropped = reference_replays(built, planned, record.notes)
        ctx.replays = replays
        ctx.lost.extend(dropped)
        # Every reference output is computed: the original's weights go before the candidates load theirs.
        release_weights(built)
        ctx.stages.progress(f"writing the golden data ({len(sets)} sets)")
        ctx.golden = write_golden(ctx.folder, sets, replays)
        record.details["input_sets"] = [s.name for s in sets]
        for pairing in pairings(options.formats, options.runtimes):
            name, runtime, tol = pairing.format, pairing.runtime, ctx.tolerances[pairing.format]
            if name in ctx.skipped:
                ctx.candidates.append(
                    not_run(pairing.candidate, name, runtime, tol, "export", ctx.skipped[name], skipped=True)
                )
                continue
            if name not in ctx.records:
                stage = ctx.stages.get(name)
                reason = stage.reason if stage and stage.reason else "export failed"
                ctx.candidates.append(not_run(pairing.candidate, name, runtime, tol, "export", reason))
                continue
            ctx.stages.progress(f"checking {pairing.candidate}")
            fmt = ctx.records[name]
            result = check_pairing(
                pairing, fmt, ctx.folder, built.signature, built.source.factory, replays, tol,
                selection=options.runtimes, gate_edges=options.strict_edges or not exporters.get(name).lossy,
                timeout=options.runtime_timeout, progress=ctx.stages.progress,
            )  # fmt: skip
            hint = specialisation_hint(result, fmt)
            ctx.candidates.append(result.model_copy(update={"reason": hint}) if hint else result)
        if BUILTIN.get(ctx.source.spec) is None:  # verify cannot run a user's weights file: say now what it proves
            record.notes.extend(weights_notes(ctx.folder, ctx.records, ctx.candidates, options.formats, ctx.skipped))
        record.notes.extend(vacuous_notes(ctx.candidates))
        failed = [f"{c.candidate} ({c.category or 'parity'})" for c in ctx.candidates if c.verdict == "fail"]
        if failed:
            raise ParityFailure(f"failed: {', '.join(failed)}")


class LocalizeStage(Stage[RunContext]):
    """Each candidate that failed parity: the first module, by path, whose output left its tolerance."""

    name = "localize"

    def skip_reason(self, ctx: RunContext) -> str | None:
        from modelport.localize.api import localizable

        if not ctx.options.localize:
            return "not requested (--no-localize)"
        return None if any(localizable(c) for c in ctx.candidates) else "no candidate failed parity"

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        from modelport.localize.folder import localize_results

        ctx.stages.progress("building the original again (its weights were let go after its outputs)")
        again = build_model(ctx.source, ctx.options.seed, ctx.options.build)
        ctx.candidates = localize_results(
            again.model, ctx.model.signature, ctx.folder, ctx.records, ctx.candidates, ctx.replays,
            again.source.factory, progress=ctx.stages.progress,
        )  # fmt: skip
        found = [c.localization for c in ctx.candidates if c.localization is not None]
        record.notes.extend(f"{loc.candidate}: {loc.summary}" for loc in found)
        record.details["localized"] = {loc.candidate: loc.first for loc in found}


class DeterminismStage(Stage[RunContext]):
    """--check-determinism: the same run again in a new process; every file's sha256 must match."""

    name = "determinism"

    def skip_reason(self, ctx: RunContext) -> str | None:
        return None if ctx.check_determinism else "not requested (--check-determinism)"

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        allowed = {f for name in ALLOWED_TO_DIFFER if name in ctx.records for f in ctx.records[name].files}
        ctx.stages.progress("exporting again in a new process")
        found = compare_with_second_export(ctx.folder, ctx.settings.run_kwargs(), allowed)
        ctx.determinism = found
        record.details.update(identical=len(found.identical), differs=found.differs)
        if found.allowed_to_differ:
            record.notes.append(f"allowed to differ (TorchScript): {', '.join(found.allowed_to_differ)}")
        if found.differs:
            raise NotReproducible(f"a second export in a new process gave other bytes for {', '.join(found.differs)}")


class ManifestStage(Stage[RunContext]):
    """report.md and report.html (listed in the manifest), then the file list; the manifest itself is written last."""

    name = "manifest"

    def __init__(self, report: Report) -> None:
        self.report = report
        self.result: Report | None = None

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        (ctx.folder / REPORT_NAME).write_text(render_markdown(self.report), encoding="utf-8")
        (ctx.folder / HTML_REPORT_NAME).write_text(render_html(self.report), encoding="utf-8")
        artifacts = list_artifacts(ctx.folder, ctx.records, ctx.golden)
        record.details["files"] = len(artifacts)
        self.result = self.report.model_copy(update={"artifacts": artifacts})


def _check_user_inputs(ctx: RunContext) -> None:
    """Real inputs are checked against the signature now, before minutes of exporting."""
    if ctx.options.inputs_file is None:
        return
    ctx.user = user_set(ctx.options.inputs_file, ctx.model.signature)
    try:
        ctx.model.runner().infer(ctx.user.inputs)
    except Exception as e:
        raise UsageError(f"--inputs: the original model fails on them: {type(e).__name__}: {one_line(e)}") from e


def run_stages(ctx: RunContext) -> Report:
    """Every stage over ``ctx``; the report, written as the staging folder's manifest."""
    runner = ctx.stages
    if runner.run(BuildStage(), ctx).status != "ok":
        raise UsageError(f"could not build model {ctx.source.spec!r}: {runner.records[-1].reason}")
    _check_user_inputs(ctx)
    runner.run(TensorsStage(), ctx)
    for name in exporters.names():
        runner.run(ExportStage(name), ctx)
    runner.run(ValidateStage(), ctx)
    runner.run(LocalizeStage(), ctx)
    runner.run(DeterminismStage(), ctx)
    runner.run(ProfileStage(), ctx)
    ok = all(r.status != "failed" for r in runner.records) and all(c.verdict == "pass" for c in ctx.candidates)
    built = ctx.model
    report = Report(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        environment=Environment.current(),
        model=built.info,
        signature=built.signature,
        options=ctx.settings,
        tolerances=ctx.tolerances,
        formats=ctx.records,
        artifacts=[],
        golden=ctx.golden,
        stages=runner.records,
        candidates=ctx.candidates,
        determinism=ctx.determinism,
        profile=ctx.profile,
        lost_coverage=ctx.lost,
        verdict="pass" if ok else "fail",
    )
    manifest = ManifestStage(report)
    runner.run(manifest, ctx)
    if manifest.result is None:
        raise StageError(f"writing the manifest failed: {runner.records[-1].reason}")
    final = manifest.result.model_copy(update={"stages": list(runner.records)})
    write_manifest(ctx.folder, final)
    return final
