"""``modelport.verify``: prove an artifact folder still holds what its manifest says.

1. integrity: every listed file exists with its recorded size and sha256, no listed path
   leaves the folder;
2. parity: each artifact is loaded *from the folder* by its runtime and replays every
   golden input set against the golden outputs, at the tolerances the manifest records.
"""

from __future__ import annotations

import functools
from pathlib import Path, PurePosixPath

from modelport import exporters
from modelport.errors import UsageError
from modelport.fsutil import sha256_file
from modelport.models import resolve_model
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import DamagedManifest, read_manifest
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import Environment, IntegrityProblem, Report, VerifyReport
from modelport.validators.candidate import ReplaySet, check_candidate, not_run
from modelport.validators.records import CandidateResult

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


def verify(folder: str | Path) -> VerifyReport:
    """Check a folder written by ``modelport run``; ``verdict`` is "fail" on any integrity or parity problem.

    Nothing the manifest names is loaded unless it is listed with a hash, lies inside the
    folder and matches its hash.
    """
    root = Path(folder)
    try:
        manifest = read_manifest(root)
    except DamagedManifest as e:
        return VerifyReport(
            folder=str(root),
            environment=Environment.current(),
            files_checked=0,
            integrity=[IntegrityProblem(path=MANIFEST_NAME, problem=str(e))],
            candidates=[],
            verdict="fail",
        )
    problems = _consistency(manifest) + _integrity(root, manifest)
    broken = {p.path for p in problems}
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
    if not manifest.formats:
        notes.append("the manifest records no artifact to verify")
    source = None
    try:
        source = resolve_model(manifest.model.spec)
    except UsageError:
        notes.append(f"model {manifest.model.spec!r} is not available here: weights-only formats cannot be loaded")
    dtypes = {t.name: t.dtype for t in manifest.signature.outputs}
    candidates: list[CandidateResult] = []
    for name, record in manifest.formats.items():
        exporter = exporters.get(name)
        recorded = manifest.tolerances.get(name) or exporter.tolerance
        tol = recorded.model_copy(update={"source": "manifest"})
        damaged = [f for f in record.files if f in broken or f not in listed or _inside(root, f) is None]
        if damaged:
            reason = f"{', '.join(damaged)} failed the integrity check: not loaded"
            candidates.append(not_run(exporter.candidate, name, exporter.runtime, tol, "integrity", reason))
            continue
        if not replays:
            candidates.append(not_run(exporter.candidate, name, exporter.runtime, tol, "integrity", "no golden data"))
            continue
        factory = source.factory if source is not None else None
        candidates.append(
            check_candidate(
                exporter.candidate,
                name,
                exporter.runtime,
                functools.partial(exporter.load, root, record, manifest.signature, factory),
                replays,
                tol,
                dtypes,
            )
        )
    ok = (
        not problems
        and manifest.verdict == "pass"
        and bool(candidates)
        and all(c.verdict == "pass" for c in candidates)
    )
    return VerifyReport(
        folder=str(root),
        model=manifest.model,
        environment=Environment.current(),
        recorded_environment=manifest.environment,
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
