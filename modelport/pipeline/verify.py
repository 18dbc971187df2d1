"""``modelport.verify``: prove an artifact folder still holds what its manifest says.

1. integrity (``verify_manifest``): the files are the listed ones, regular, inside the
   folder, with their hashes; the manifest agrees with itself;
2. parity: each artifact is loaded *from the folder* by its runtime and replays every
   golden input set against the golden outputs, at the tolerances the manifest records.
   No model code is imported: each tensor of a user's weights-only files is found in the
   verified ``.pt2`` or ONNX file, or the file is unproven (``verify_weights``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

from modelport import exporters
from modelport.errors import UsageError
from modelport.exporters.onnx_format import graph_facts
from modelport.exporters.targets import Target, parse_target
from modelport.exporters.weights import WeightsExporter
from modelport.loaders.trust import granted
from modelport.models.source import BUILTIN
from modelport.pipeline.candidates import check_pairing
from modelport.pipeline.ci_outputs import REQUIRED
from modelport.pipeline.drift import compare_golden, parse_max_drift
from modelport.pipeline.manifest import DamagedManifest, read_manifest
from modelport.pipeline.options import check_timeout
from modelport.pipeline.outdir import MANIFEST_NAME, reading
from modelport.pipeline.records import Environment, IntegrityProblem, Report, VerifyReport
from modelport.pipeline.stages import StageEvent, Steps
from modelport.pipeline.verify_golden import golden_paths, golden_replays
from modelport.pipeline.verify_manifest import consistency, golden_set_problems, inside, integrity
from modelport.pipeline.verify_policy import observed_dtypes, verify_tolerances
from modelport.pipeline.weights_proof import prove_weights
from modelport.runtimes.plan import Pairing, Selection, pairings, select
from modelport.signing import SignatureStatus, load_trusted_keys, signature_status
from modelport.validators.candidate import ReplaySet, not_run, vacuous_notes
from modelport.validators.records import CandidateResult, OutputCheck, Tolerance

__all__ = ["verify"]


_COMPARED_VERSIONS = ("torch", "onnx", "onnxruntime", "onnxscript", "safetensors", "numpy")


def _environment_drift(recorded: Environment, current: Environment) -> list[str]:
    """Runtime versions that differ from the ones the folder was made with: they explain a failure after an upgrade."""
    return [
        f"{name} {getattr(current, name)} here, {getattr(recorded, name)} when the folder was made"
        for name in _COMPARED_VERSIONS
        if getattr(recorded, name) != getattr(current, name)
    ]


def _release(version: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in (version or "").split(".")[:2])
    except ValueError:
        return None


def _target_problems(root: Path, manifest: Report, target: Target) -> list[IntegrityProblem]:
    """ONNX files the target onnxruntime release cannot load (IR version, opset, another release's fusions)."""
    problems = []
    for name, record in manifest.formats.items():
        if name not in exporters.names() or exporters.get(name).runtime != "onnxruntime" or not record.files:
            continue
        path = inside(root, record.files[0])
        if path is None or not path.is_file():
            continue
        try:
            facts = graph_facts(path)
        except Exception:
            continue  # a damaged file is reported by the integrity and parity checks
        problem = target.problem(facts["opset"], facts["ir_version"])
        made_by = manifest.environment.onnxruntime
        if problem is None and name == "onnx_optimized" and _release(made_by) != target.version:
            problem = f"onnxruntime {made_by}'s own optimized graph, not made for {target.label}"
        if problem:
            problems.append(IntegrityProblem(path=record.files[0], problem=f"{problem} (--target)", category="load"))
    return problems


def _damaged_report(root: Path, current: Environment, problem: str) -> VerifyReport:
    return VerifyReport(
        folder=str(root),
        environment=current,
        files_checked=0,
        integrity=[IntegrityProblem(path=MANIFEST_NAME, problem=problem)],
        candidates=[],
        verdict="fail",
    )


def verify(
    folder: str | Path,
    *,
    runtimes: str | Sequence[str] | Selection | None = None,
    target: str | None = None,
    against: str | Path | None = None,
    max_drift: str | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    tol: str | Sequence[str] | None = None,
    allow_loose: bool = False,
    strict_edges: bool = False,
    require_proof: bool = False,
    require_signature: bool = False,
    trusted_keys: Sequence[str | Path] = (),
    trust: bool = False,
    runtime_timeout: float | None = None,
    model: str | None = None,
    localize_all: bool = False,
    on_event: Callable[[StageEvent], None] | None = None,
) -> VerifyReport:
    """Check a folder written by ``modelport run``; ``verdict`` is "fail" on any integrity or parity problem.

    Nothing the manifest names is loaded unless it is listed with a hash, lies inside the
    folder and matches its hash. ``runtimes`` limits the check to those runtimes; ``target``
    also fails ONNX files that onnxruntime release cannot load; ``against`` reports how far
    the golden outputs moved from another folder's (failing beyond ``max_drift``).
    Tolerances follow the verifier's own policy (``verify_policy``): ``atol``/``rtol``/``tol``
    win; a recorded tolerance looser than the default fails unless ``allow_loose``.
    ``strict_edges`` makes lossy formats gate on the edge sets too.
    A weights file whose tensors no verified artifact holds is "unproven": a warning, not a
    pass; ``require_proof`` makes it a failure. ``signature`` reports ``manifest.sig``;
    ``require_signature`` (implied by ``trusted_keys``, Ed25519 public key files) fails anything but valid.
    TorchScript and ``.pt2`` files are programs: loaded only under a valid signature or ``trust``,
    else listed as not verified (a failure unless ``runtimes`` leaves them out).
    ``model`` (a SPEC: the model's code, never taken from the manifest) localises every failing candidate
    (``candidate.localization``: the first module whose output diverges); ``localize_all`` every one that
    ran (``modelport localize``: a clean one says no divergence).
    ``on_event`` sees its steps (integrity, golden, replay with one "checking FORMAT@RUNTIME" per candidate,
    drift) as stage events, like ``run``'s.
    """
    steps = Steps(on_event)
    with reading(Path(folder)), steps:  # no run swaps the folder while it is read; a step that raises ends failed
        return _verify(
            Path(folder),
            runtimes=runtimes,
            target=target,
            against=against,
            max_drift=max_drift,
            atol=atol,
            rtol=rtol,
            tol=tol,
            allow_loose=allow_loose,
            strict_edges=strict_edges,
            require_proof=require_proof,
            require_signature=require_signature,
            trusted_keys=trusted_keys,
            trust=trust,
            runtime_timeout=check_timeout(runtime_timeout),
            model=model,
            localize_all=localize_all,
            steps=steps,
        )


def _trust(root: Path, signed: SignatureStatus, trust: bool) -> str | None:
    """Why this folder's program files may be loaded, or None: they are not."""
    if trust:
        return "--trust: the user trusts whoever wrote the folder"
    if signed.status == "valid":
        return f"signature {signed.describe()}"
    return None


def _untrusted(
    pairing: Pairing, exporter: exporters.Exporter, tol: Tolerance, signed: SignatureStatus, formats: Sequence[str]
) -> CandidateResult:
    known = [exporters.get(n) for n in formats]
    safe = sorted({e.runtime for e in known if not e.code} - {e.runtime for e in known if e.code})
    narrow = f"--runtimes {','.join(safe)}" if safe else "--runtimes"
    reason = (
        f"not verified: {exporter.main_file} is a program (loading it runs code) and this folder is not trusted "
        f"(signature {signed.status}); sign it (modelport run --sign-with KEY) and pass --trusted-key KEY.pub, "
        f"or pass --trust if you trust whoever wrote it, or check only what needs no trust with {narrow}"
    )
    return not_run(pairing.candidate, pairing.format, pairing.runtime, tol, "trust", reason).model_copy(
        update={"status": "untrusted"}
    )


def _verify(
    root: Path,
    *,
    runtimes: str | Sequence[str] | Selection | None,
    target: str | None,
    against: str | Path | None,
    max_drift: str | None,
    atol: float | None,
    rtol: float | None,
    tol: str | Sequence[str] | None,
    allow_loose: bool,
    strict_edges: bool,
    require_proof: bool,
    require_signature: bool,
    trusted_keys: Sequence[str | Path],
    trust: bool,
    runtime_timeout: float | None,
    model: str | None,
    localize_all: bool,
    steps: Steps,
) -> VerifyReport:
    selection = select(runtimes)
    parsed_target = parse_target(target) if target is not None else None
    drift_tol = parse_max_drift(max_drift)
    if drift_tol is not None and against is None:
        raise UsageError("--max-drift needs --against OLD_DIR")
    current = Environment.current()
    required = require_signature or bool(trusted_keys)
    keys = load_trusted_keys(trusted_keys)
    steps.begin("integrity")
    try:
        manifest = read_manifest(root)
    except DamagedManifest as e:
        signed = signature_status(root, keys)
        report = _damaged_report(root, current, str(e))
        return report.model_copy(update={"signature": signed, "signature_required": required})
    signed = signature_status(root, keys)
    problems = consistency(manifest) + integrity(root, manifest)
    broken = {p.path for p in problems}
    model_dtypes = observed_dtypes(root, manifest, broken)
    tolerances, loose = verify_tolerances(
        manifest, dtypes=model_dtypes, atol=atol, rtol=rtol, tol=tol, allow_loose=allow_loose
    )
    problems += loose
    gate_edges = strict_edges or manifest.options.strict_edges
    if parsed_target is not None:  # still replayed here: they load in this onnxruntime, not in the target's
        problems += _target_problems(root, manifest, parsed_target)
    notes: list[str] = []
    replays: list[ReplaySet] = []
    if not broken & golden_paths(manifest):
        steps.begin("golden")
        replays, golden_problems = golden_replays(root, manifest)
        problems += golden_problems
        if replays:
            problems += golden_set_problems(manifest, {k: v.shape for k, v in replays[0].inputs.items()})
    if not replays:
        notes.append("golden data is missing or damaged: parity was not replayed")
    notes += [
        f"coverage lost when the folder was made: input set {s.name} ({s.kind}): {s.reason}"
        for s in manifest.lost_coverage
    ]
    if manifest.verdict == "fail":
        failed = [c.candidate for c in manifest.candidates if c.verdict == "fail"]
        notes.append(f"the run that wrote this folder failed ({', '.join(failed) or 'a stage failed'})")
    why_trusted = _trust(root, signed, trust)
    steps.begin("replay")
    with contextlib.ExitStack() as stack:
        if why_trusted is not None:
            stack.enter_context(granted(root, why_trusted))
        results = _check_formats(
            root,
            manifest,
            selection=selection,
            tolerances=tolerances,
            broken=broken,
            replays=replays,
            gate_edges=gate_edges,
            untrusted=None if why_trusted is not None else signed,
            signed=signed.status == "valid",
            timeout=runtime_timeout,
            steps=steps,
        )
        if model is not None:
            from modelport.localize.folder import localize_verified

            steps.begin("localize")
            results = localize_verified(
                root, manifest, model, results, replays, every=localize_all, progress=steps.progress
            )
    candidates = list(results.values())
    notes += vacuous_notes(candidates)
    drift: list[OutputCheck] = []
    if against is not None:
        steps.begin("drift")
        drift, drift_notes = compare_golden(root, manifest, Path(against), drift_tol)
        notes += drift_notes
    if not manifest.formats:
        notes.append("the manifest records no artifact to verify")
    if require_proof:
        notes += [f"{c.candidate}{REQUIRED}" for c in candidates if c.verdict == "unproven"]
    if required and signed.status != "valid":
        notes.append(f"signature required: {signed.describe()}")
    ok = (
        not (required and signed.status != "valid")
        and not problems
        and manifest.verdict == "pass"
        and bool(candidates)
        and all(c.verdict == "pass" or (c.verdict == "unproven" and not require_proof) for c in candidates)
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
        signature=signed,
        signature_required=required,
        trusted=why_trusted,
        verdict="pass" if ok else "fail",
    )


def _check_formats(
    root: Path,
    manifest: Report,
    *,
    selection: Selection,
    tolerances: dict[str, Tolerance],
    broken: set[str],
    replays: list[ReplaySet],
    gate_edges: bool,
    untrusted: SignatureStatus | None,
    signed: bool,
    timeout: float | None,
    steps: Steps,
) -> dict[str, CandidateResult]:
    """Each recorded format replayed from the folder in every selected runtime that runs it, by candidate name;
    program files only when ``untrusted`` is None."""
    source = BUILTIN.get(manifest.model.spec)
    builtin = source.factory if source is not None else None
    listed = {a.path for a in manifest.artifacts}
    results: dict[str, CandidateResult] = {}
    weights: list[str] = []
    known = [n for n in manifest.formats if n in exporters.names()]  # others: reported by the consistency check
    planned = pairings(known, selection)
    for pairing in planned:
        name, runtime, candidate = pairing.format, pairing.runtime, pairing.candidate
        record, exporter, cand_tol = manifest.formats[name], exporters.get(name), tolerances[name]
        damaged = [f for f in record.files if f in broken or f not in listed or inside(root, f) is None]
        if damaged or not record.files or record.files[0] != exporter.main_file:
            reason = f"{', '.join(damaged or record.files or ['its files'])} failed the integrity check: not loaded"
            results[candidate] = not_run(candidate, name, runtime, cand_tol, "integrity", reason)
        elif not replays:
            results[candidate] = not_run(candidate, name, runtime, cand_tol, "integrity", "no golden data")
        elif exporter.code and untrusted is not None:
            results[candidate] = _untrusted(pairing, exporter, cand_tol, untrusted, known)
        elif isinstance(exporter, WeightsExporter) and builtin is None:
            weights.append(name)
        else:
            # Only modelport's own built-in architectures are built here, never the user's code.
            steps.progress(f"checking {candidate}")
            results[candidate] = check_pairing(
                pairing,
                record,
                root,
                manifest.signature,
                builtin,
                replays,
                cand_tol,
                selection=selection,
                gate_edges=gate_edges or not exporter.lossy,
                timeout=timeout,
                progress=steps.progress,
            )
    if weights:
        steps.progress(f"proving {', '.join(weights)} against the artifacts that passed")
    prove_weights(root, manifest, results, weights, tolerances, signed=signed)
    return {p.candidate: results[p.candidate] for p in planned if p.candidate in results}
