"""``modelport.verify``: prove an artifact folder still holds what its manifest says.

1. integrity (``verify_manifest``): the files are the listed ones, regular, inside the
   folder, with their hashes; the manifest agrees with itself;
2. parity: each artifact is loaded *from the folder* by its runtime and replays every
   golden input set against the golden outputs, at the tolerances the manifest records.
   No model code is imported: each tensor of a user's weights-only files is found in the
   verified ``.pt2`` or ONNX file, or the file is unproven (``verify_weights``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelport import exporters
from modelport.errors import UsageError
from modelport.exporters.onnx_format import graph_facts
from modelport.exporters.runtime import require
from modelport.exporters.targets import Target, parse_target
from modelport.exporters.weights import WeightsExporter
from modelport.models.source import BUILTIN
from modelport.pipeline.ci_outputs import REQUIRED
from modelport.pipeline.drift import compare_golden, parse_max_drift
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import DamagedManifest, read_manifest
from modelport.pipeline.outdir import MANIFEST_NAME, reading
from modelport.pipeline.records import Environment, IntegrityProblem, Report, VerifyReport
from modelport.pipeline.verify_manifest import consistency, golden_set_problems, inside, integrity
from modelport.pipeline.verify_policy import observed_dtypes, verify_tolerances
from modelport.pipeline.verify_weights import REPLAYED, Anchors, check_weights, program_state, read_weights
from modelport.signing import load_trusted_keys, signature_status
from modelport.validators.candidate import ReplaySet, check_candidate, not_run, vacuous_notes
from modelport.validators.records import CandidateResult, OutputCheck, Tolerance

__all__ = ["verify"]


def _pb_matches(folder: Path, rel: str, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> str | None:
    """Why the ONNX test-data copy of a set differs from its .npz files, or None."""
    onnx = require("onnx")
    base = inside(folder, rel)
    if base is None:
        return "points outside the folder"
    for prefix, arrays in (("input", inputs), ("output", outputs)):
        for k, (name, array) in enumerate(arrays.items()):
            proto = onnx.TensorProto()
            try:
                proto.ParseFromString((base / f"{prefix}_{k}.pb").read_bytes())
            except Exception as e:
                return f"{prefix}_{k}.pb cannot be read ({e})"
            got = onnx.numpy_helper.to_array(proto)
            if proto.name != name or got.shape != array.shape or not np.array_equal(got, array, equal_nan=True):
                return f"{prefix}_{k}.pb is not the .npz set's {name!r}"
        if (base / f"{prefix}_{len(arrays)}.pb").exists():
            return f"holds more {prefix}s than the .npz set"
    return None


def _outputs64(
    folder: Path, rel: str | None, outputs: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """A set's float64 outputs, which must be float64 arrays shaped like the float outputs they re-run."""
    if rel is None:
        return None, None
    path = inside(folder, rel)
    if path is None:
        return None, "points outside the folder"
    try:
        arrays = read_npz(path)
    except UsageError as e:
        return None, str(e)
    for key, array in arrays.items():
        if key not in outputs or array.shape != outputs[key].shape or array.dtype != np.float64:
            return None, f"{key!r} is not a float64 re-run of a golden output"
    return arrays, None


def _replays(folder: Path, manifest: Report) -> tuple[list[ReplaySet], list[IntegrityProblem]]:
    golden = manifest.golden
    if golden is None:
        return [], [IntegrityProblem(path=MANIFEST_NAME, problem="records no golden data")]
    sets = [("example", "example", golden.inputs, golden.outputs, golden.onnx_test_data, golden.outputs64)]
    sets += [(s.name, s.kind, s.inputs, s.outputs, s.onnx_test_data, s.outputs64) for s in golden.sets]
    estimate = golden.float64_estimate or "copy"
    replays, problems = [], []
    for name, kind, inputs_rel, outputs_rel, pb_rel, rel64 in sets:
        in_path, out_path = inside(folder, inputs_rel), inside(folder, outputs_rel)
        if in_path is None or out_path is None:
            return [], [IntegrityProblem(path=inputs_rel, problem=f"golden set {name!r} points outside the folder")]
        try:
            inputs, outputs = read_npz(in_path), read_npz(out_path)
        except UsageError as e:
            return [], [IntegrityProblem(path=inputs_rel, problem=str(e))]
        if pb_rel is not None and (why := _pb_matches(folder, pb_rel, inputs, outputs)) is not None:
            problems.append(IntegrityProblem(path=pb_rel, problem=why))
        outputs64, why64 = _outputs64(folder, rel64, outputs)
        if why64 is not None:
            problems.append(IntegrityProblem(path=rel64 or outputs_rel, problem=why64))
        replays.append(ReplaySet(name, inputs, outputs, kind, outputs64, estimate))
    return replays, problems


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
    runtimes: str | Sequence[str] | None = None,
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
    """
    with reading(Path(folder)):  # no run swaps the folder while it is read
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
        )


def _verify(
    root: Path,
    *,
    runtimes: str | Sequence[str] | None,
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
) -> VerifyReport:
    wanted = exporters.parse_runtimes(runtimes)
    parsed_target = parse_target(target) if target is not None else None
    drift_tol = parse_max_drift(max_drift)
    if drift_tol is not None and against is None:
        raise UsageError("--max-drift needs --against OLD_DIR")
    current = Environment.current()
    required = require_signature or bool(trusted_keys)
    keys = load_trusted_keys(trusted_keys)
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
    gate_edges = strict_edges or bool(manifest.options.get("strict_edges"))
    if parsed_target is not None:  # still replayed here: they load in this onnxruntime, not in the target's
        problems += _target_problems(root, manifest, parsed_target)
    listed = {a.path for a in manifest.artifacts}
    notes: list[str] = []
    replays: list[ReplaySet] = []
    if not broken & _golden_paths(manifest):
        replays, golden_problems = _replays(root, manifest)
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
    dtypes = {t.name: t.dtype for t in manifest.signature.outputs}
    source = BUILTIN.get(manifest.model.spec)
    builtin = source.factory if source is not None else None
    results: dict[str, CandidateResult] = {}
    weights: list[str] = []
    for name, record in manifest.formats.items():
        if name not in exporters.names():
            continue  # reported by the consistency check
        exporter = exporters.get(name)
        if wanted is not None and exporter.runtime not in wanted:
            continue
        cand_tol = tolerances[name]
        damaged = [f for f in record.files if f in broken or f not in listed or inside(root, f) is None]
        if damaged or not record.files or record.files[0] != exporter.main_file:
            reason = f"{', '.join(damaged or record.files or ['its files'])} failed the integrity check: not loaded"
            results[name] = not_run(exporter.candidate, name, exporter.runtime, cand_tol, "integrity", reason)
        elif not replays:
            results[name] = not_run(exporter.candidate, name, exporter.runtime, cand_tol, "integrity", "no golden data")
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
                cand_tol,
                dtypes,
                gate_edges=gate_edges or not exporter.lossy,
            )
    _prove_weights(root, manifest, results, weights, tolerances)
    candidates = [results[name] for name in manifest.formats if name in results]
    notes += vacuous_notes(candidates)
    drift: list[OutputCheck] = []
    if against is not None:
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
        verdict="pass" if ok else "fail",
    )


def _prove_weights(
    root: Path,
    manifest: Report,
    results: dict[str, CandidateResult],
    weights: list[str],
    tolerances: dict[str, Tolerance],
) -> None:
    """Weights files of a user's model, proven against the artifacts that just passed; every passing file's proof."""
    for name, result in results.items():
        if result.verdict == "pass" and result.status == "ok":
            results[name] = result.model_copy(update={"proof": REPLAYED})
    if not weights:
        return
    passed = {n for n, r in results.items() if r.verdict == "pass" and r.status == "ok"}
    anchors = Anchors(root, manifest.formats, lambda fmt: fmt in passed)
    recorded = next((c for c in manifest.candidates if c.format == "torch_export"), None)
    no_program = program_state(
        "torch_export" in manifest.options.get("formats", []),
        "torch_export" in manifest.formats,
        results.get("torch_export"),
        recorded.reason if recorded is not None and recorded.status == "skipped" else None,
    )
    states = {}
    for name in weights:
        exporter = exporters.get(name)
        assert isinstance(exporter, WeightsExporter)
        tol = tolerances[name]
        read = read_weights(exporter, root, manifest.formats[name].files, tol)
        if isinstance(read, CandidateResult):
            results[name] = read
        else:
            states[name] = (exporter, tol, read)
    for name, (exporter, tol, state) in states.items():
        files = manifest.formats[name].files
        peers = {manifest.formats[n].files[0]: s for n, (_, _, s) in states.items() if n != name}
        results[name] = check_weights(exporter, root, files, tol, anchors, no_program, state=state, peers=peers)


def _golden_paths(manifest: Report) -> set[str]:
    g = manifest.golden
    if g is None:
        return set()
    return {g.inputs, g.outputs, *(s.inputs for s in g.sets), *(s.outputs for s in g.sets)}
