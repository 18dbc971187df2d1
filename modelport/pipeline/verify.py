"""``modelport.verify``: prove an artifact folder still holds what its manifest says.

1. integrity: every listed file exists with its recorded size and sha256, no listed path
   leaves the folder;
2. parity: each artifact is loaded *from the folder* by its runtime and replays every
   golden input set against the golden outputs, at the tolerances the manifest records.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from modelport import exporters
from modelport.errors import UsageError
from modelport.exporters.onnx_format import graph_facts
from modelport.exporters.targets import Target, parse_target
from modelport.exporters.weights import WeightsExporter
from modelport.fsutil import sha256_file
from modelport.models.source import BUILTIN
from modelport.pipeline.drift import compare_golden, parse_max_drift
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import DamagedManifest, read_manifest
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import Environment, IntegrityProblem, Report, VerifyReport
from modelport.pipeline.verify_weights import check_weights, find_anchor
from modelport.validators.candidate import ReplaySet, check_candidate, not_run
from modelport.validators.records import CandidateResult, OutputCheck

__all__ = ["verify"]


def _inside(folder: Path, rel: str) -> Path | None:
    """The listed path under ``folder``, or None when it would leave the folder."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return None
    path = folder.joinpath(*pure.parts)
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return path


def _integrity(folder: Path, manifest: Report) -> list[IntegrityProblem]:
    problems: list[IntegrityProblem] = []
    for entry in manifest.artifacts:
        path = _inside(folder, entry.path)
        if path is None:
            problems.append(IntegrityProblem(path=entry.path, problem="path leaves the artifact folder"))
        elif not path.is_file():
            problems.append(IntegrityProblem(path=entry.path, problem="listed in the manifest but missing"))
        elif path.stat().st_nlink > 1:
            # A hard link can make the bytes read here those of a file outside the folder.
            links = path.stat().st_nlink
            problems.append(IntegrityProblem(path=entry.path, problem=f"has {links} hard links; copy it instead"))
        elif path.stat().st_size != entry.bytes:
            problems.append(
                IntegrityProblem(path=entry.path, problem=f"size {path.stat().st_size} != recorded {entry.bytes}")
            )
        elif sha256_file(path) != entry.sha256:
            problems.append(IntegrityProblem(path=entry.path, problem="sha256 differs from the manifest"))
    listed = {entry.path for entry in manifest.artifacts} | {MANIFEST_NAME}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if (path.is_file() or path.is_symlink()) and rel not in listed:
            problems.append(IntegrityProblem(path=rel, problem="present but not listed in the manifest"))
    return problems


def _consistency(manifest: Report) -> list[IntegrityProblem]:
    """The manifest must agree with itself: what it loads is what it hashes, tolerances are the recorded ones."""
    problems: list[IntegrityProblem] = []
    paths = [a.path for a in manifest.artifacts]
    for dup in sorted({p for p in paths if paths.count(p) > 1}):
        problems.append(IntegrityProblem(path=dup, problem="listed more than once in the manifest"))
    listed = set(paths)
    referenced = [f for record in manifest.formats.values() for f in record.files] + sorted(_golden_paths(manifest))
    for rel in referenced:
        if rel not in listed:
            problems.append(IntegrityProblem(path=rel, problem="used by the manifest but not listed with a hash"))
    for name in manifest.formats:
        tol = manifest.tolerances.get(name)
        if tol is None:
            problems.append(IntegrityProblem(path=MANIFEST_NAME, problem=f"no tolerance recorded for {name}"))
        elif tol.source.startswith("default"):
            expected = exporters.default_tolerance(name, manifest.model.dtypes)
            recorded = (tol.atol, tol.rtol, tol.rtol_scope, tol.min_cosine)
            if recorded != (expected.atol, expected.rtol, expected.rtol_scope, expected.min_cosine):
                problems.append(
                    IntegrityProblem(
                        path=MANIFEST_NAME,
                        problem=f"{name}'s tolerance is marked default but is {tol.describe()}, "
                        f"not {expected.describe()}",
                    )
                )
    return problems


def _replays(folder: Path, manifest: Report) -> tuple[list[ReplaySet], list[IntegrityProblem]]:
    golden = manifest.golden
    if golden is None:
        return [], [IntegrityProblem(path=MANIFEST_NAME, problem="records no golden data")]
    sets = [("example", "example", golden.inputs, golden.outputs)]
    sets += [(s.name, s.kind, s.inputs, s.outputs) for s in golden.sets]
    replays = []
    for name, kind, inputs, outputs in sets:
        in_path, out_path = _inside(folder, inputs), _inside(folder, outputs)
        if in_path is None or out_path is None:
            return [], [IntegrityProblem(path=inputs, problem=f"golden set {name!r} points outside the folder")]
        try:
            replays.append(ReplaySet(name, read_npz(in_path), read_npz(out_path), kind=kind))
        except UsageError as e:
            return [], [IntegrityProblem(path=inputs, problem=str(e))]
    return replays, []


_COMPARED_VERSIONS = ("torch", "onnx", "onnxruntime", "onnxscript", "safetensors", "numpy")


def _environment_drift(recorded: Environment, current: Environment) -> list[str]:
    """Runtime versions that differ from the ones the folder was made with: they explain a failure after an upgrade."""
    return [
        f"{name} {getattr(current, name)} here, {getattr(recorded, name)} when the folder was made"
        for name in _COMPARED_VERSIONS
        if getattr(recorded, name) != getattr(current, name)
    ]


def _target_problems(root: Path, manifest: Report, target: Target) -> list[IntegrityProblem]:
    """ONNX files the target onnxruntime release cannot load (IR version, opset, another release's fusions)."""
    problems = []
    for name, record in manifest.formats.items():
        if exporters.get(name).runtime != "onnxruntime":
            continue
        path = _inside(root, record.files[0])
        if path is None or not path.is_file():
            continue
        facts = graph_facts(path)
        problem = target.problem(facts["opset"], facts["ir_version"])
        made_by = manifest.environment.onnxruntime or ""
        if problem is None and name == "onnx_optimized" and tuple(map(int, made_by.split(".")[:2])) != target.version:
            problem = f"onnxruntime {made_by}'s own optimized graph, not made for {target.label}"
        if problem:
            problems.append(IntegrityProblem(path=record.files[0], problem=f"{problem} (--target)", category="load"))
    return problems


def verify(
    folder: str | Path,
    *,
    runtimes: str | Sequence[str] | None = None,
    target: str | None = None,
    against: str | Path | None = None,
    max_drift: str | None = None,
) -> VerifyReport:
    """Check a folder written by ``modelport run``; ``verdict`` is "fail" on any integrity or parity problem.

    Nothing the manifest names is loaded unless it is listed with a hash, lies inside the
    folder and matches its hash. Model code is never imported: self-contained artifacts
    replay the golden data, weights-only files are compared tensor by tensor with a
    self-contained artifact that passed. ``runtimes`` limits the check to those runtimes.
    """
    root = Path(folder)
    wanted = exporters.parse_runtimes(runtimes)
    parsed_target = parse_target(target) if target is not None else None
    drift_tol = parse_max_drift(max_drift)
    if drift_tol is not None and against is None:
        raise UsageError("--max-drift needs --against OLD_DIR")
    current = Environment.current()
    try:
        manifest = read_manifest(root)
    except DamagedManifest as e:
        return VerifyReport(
            folder=str(root),
            environment=current,
            files_checked=0,
            integrity=[IntegrityProblem(path=MANIFEST_NAME, problem=str(e))],
            candidates=[],
            verdict="fail",
        )
    problems = _consistency(manifest) + _integrity(root, manifest)
    broken = {p.path for p in problems}
    if parsed_target is not None:  # still replayed here: they load in this onnxruntime, not in the target's
        problems += _target_problems(root, manifest, parsed_target)
    listed = {a.path for a in manifest.artifacts}
    notes: list[str] = []
    replays: list[ReplaySet] = []
    if not broken & _golden_paths(manifest):
        replays, golden_problems = _replays(root, manifest)
        problems += golden_problems
    if not replays:
        notes.append("golden data is missing or damaged: parity was not replayed")
    if manifest.verdict == "fail":
        failed = [c.candidate for c in manifest.candidates if c.verdict == "fail"]
        notes.append(f"the run that wrote this folder failed ({', '.join(failed) or 'a stage failed'})")
    dtypes = {t.name: t.dtype for t in manifest.signature.outputs}
    source = BUILTIN.get(manifest.model.spec)
    builtin = source.factory if source is not None else None
    results: dict[str, CandidateResult] = {}
    weights: list[str] = []
    for name, record in manifest.formats.items():
        exporter = exporters.get(name)
        if wanted is not None and exporter.runtime not in wanted:
            continue
        recorded = manifest.tolerances.get(name) or exporter.tolerance
        tol = recorded.model_copy(update={"source": "manifest"})
        damaged = [f for f in record.files if f in broken or f not in listed or _inside(root, f) is None]
        if damaged:
            reason = f"{', '.join(damaged)} failed the integrity check: not loaded"
            results[name] = not_run(exporter.candidate, name, exporter.runtime, tol, "integrity", reason)
        elif not replays:
            results[name] = not_run(exporter.candidate, name, exporter.runtime, tol, "integrity", "no golden data")
        elif isinstance(exporter, WeightsExporter) and builtin is None:
            weights.append(name)
        else:
            results[name] = check_candidate(
                exporter.candidate,
                name,
                exporter.runtime,
                # Only modelport's own built-in architectures are built here, never the user's code.
                functools.partial(exporter.load, root, record, manifest.signature, builtin),
                replays,
                tol,
                dtypes,
            )
    if weights:
        passed = {n for n, r in results.items() if r.verdict == "pass" and r.status == "ok"}
        anchor = find_anchor(root, manifest, lambda fmt: fmt in passed)
        for name in weights:
            exporter = exporters.get(name)
            assert isinstance(exporter, WeightsExporter)
            tol = (manifest.tolerances.get(name) or exporter.tolerance).model_copy(update={"source": "manifest"})
            results[name] = check_weights(exporter, root, manifest.formats[name].files, tol, anchor)
    candidates = [results[name] for name in manifest.formats if name in results]
    drift: list[OutputCheck] = []
    if against is not None:
        drift, drift_notes = compare_golden(root, manifest, Path(against), drift_tol)
        notes += drift_notes
    if not manifest.formats:
        notes.append("the manifest records no artifact to verify")
    ok = (
        not problems
        and manifest.verdict == "pass"
        and bool(candidates)
        and all(c.verdict == "pass" for c in candidates)
        and all(c.verdict == "pass" for c in drift)
    )
    return VerifyReport(
        folder=str(root),
        model=manifest.model,
        environment=current,
        recorded_environment=manifest.environment,
        environment_drift=_environment_drift(manifest.environment, current),
        against=str(against) if against is not None else None,
        drift=drift,
        files_checked=len(manifest.artifacts),
        integrity=problems,
        candidates=candidates,
        notes=notes,
        verdict="pass" if ok else "fail",
    )


def _golden_paths(manifest: Report) -> set[str]:
    g = manifest.golden
    if g is None:
        return set()
    return {g.inputs, g.outputs, *(s.inputs for s in g.sets), *(s.outputs for s in g.sets)}
