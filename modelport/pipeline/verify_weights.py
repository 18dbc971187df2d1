"""Verifying weights-only formats without the model's code.

A state_dict or safetensors file cannot run on its own: it needs the architecture, and
``verify`` never imports model code. Instead its tensors are found (``weights_match``) inside
self-contained artifacts of the folder that were themselves replayed against the golden
outputs: the ``.pt2`` program first (it holds every tensor by name), then the ONNX file.
Nothing failed but some tensor is in no verified artifact: the file is *unproven*, never a pass.
``run`` calls the same function on its own folder, to say beforehand what verify will prove.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import numpy as np

from modelport import exporters
from modelport.errors import StageError, one_line
from modelport.exporters.base import FormatRecord
from modelport.exporters.runtime import require
from modelport.exporters.weights import WeightsExporter, tensor_digest
from modelport.memory import let_go
from modelport.pipeline.weights_match import FOLD_RTOL, AnchorTensors, Match, match_tensors
from modelport.signature import torch_as_numpy
from modelport.validators.candidate import not_run, summarise
from modelport.validators.compare import compare_array
from modelport.validators.records import CandidateResult, OutputCheck, Tolerance

__all__ = [
    "PROGRAM_FIX",
    "REPLAYED",
    "Anchors",
    "check_weights",
    "program_digests",
    "program_fingerprints",
    "program_state",
    "read_weights",
    "stand_in_for_program",
    "weights_notes",
]

PROGRAM_FIX = "include torch_export in --formats: its program holds every tensor by name"
REPLAYED = "intact by sha256; replayed every golden set"
_LABELS = {"torch_export": "torch_export program", "onnx": "onnx file"}
SIGNED = "signed"  # a Match source: the tensor's sha256 as the signed manifest records it
_FOLD_TOL = Tolerance(atol=0.0, rtol=FOLD_RTOL, rtol_scope="tensor", source="BatchNorm fold")


def _from_pt2(path: Path) -> dict[str, np.ndarray]:
    from modelport.exporters.quiet import TORCH_EXPORT_LOGGERS, collect_warnings
    from modelport.loaders import load_exported_program

    with collect_warnings(None, loggers=TORCH_EXPORT_LOGGERS):
        program = load_exported_program(path)
    return {k: torch_as_numpy(v) for k, v in program.state_dict.items()}  # views: the arrays keep it alive


def _from_onnx(path: Path) -> dict[str, np.ndarray]:
    onnx = require("onnx")
    from modelport.loaders import load_onnx

    model = load_onnx(path)
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}


def _unprefixed(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Graph exports of wrapped models name their tensors "model.<name>".
    prefixed = bool(tensors) and all(k.startswith("model.") for k in tensors)
    return {k.removeprefix("model.") if prefixed else k: v for k, v in tensors.items()}


class Anchors:
    """The verified self-contained artifacts of a folder, read once and only when asked for."""

    def __init__(self, root: Path, formats: Mapping[str, FormatRecord], usable: Callable[[str], bool]) -> None:
        self._root, self._formats, self._usable = root, formats, usable
        self._cache: dict[str, AnchorTensors | None] = {}

    def get(self, fmt: str) -> AnchorTensors | None:
        if fmt not in self._cache:
            self._cache[fmt] = self._read(fmt)
        return self._cache[fmt]

    def _read(self, fmt: str) -> AnchorTensors | None:
        record = self._formats.get(fmt)
        if record is None or not record.files or not self._usable(fmt):
            return None
        read = _from_pt2 if fmt == "torch_export" else _from_onnx
        try:
            tensors = read(self._root / record.files[0])
        except Exception:
            return None  # it just passed its replay, so this is rare; the tensors stay unproven
        return AnchorTensors(fmt, _unprefixed(tensors), exact_names=fmt == "torch_export")


def program_state(selected: bool, recorded: bool, checked: CandidateResult | None, skipped: str | None) -> str:
    """Why there is no verified torch_export program to compare weights with, in words."""
    if not selected:
        return "torch_export was not selected"
    if skipped is not None:
        return f"torch_export was skipped: {skipped}"
    if not recorded:
        return "torch_export failed to export"
    if checked is None:
        return "torch_export was not checked (--runtimes)"
    if checked.status == "untrusted":
        return "torch_export was not loaded: the folder is not trusted (no valid signature, no --trust)"
    return "torch_export failed verification"


def _names(keys: list[str], limit: int = 5) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _labels(sources: set[str]) -> str:
    ordered = [_LABELS[s] for s in ("torch_export", "onnx") if s in sources]
    parts = ["the verified " + " and ".join(ordered) + "'s"] if ordered else []
    if SIGNED in sources:
        parts.append("the signed manifest's sha256")
    return " and ".join(parts) or "no verified artifact"


def _how(matches: list[Match]) -> str:
    counts = {
        h: sum(m.how == h for m in matches) for h in ("name", "value", "transposed", "blocks", "folded", "sha256")
    }
    parts = [f"{counts['name']} by name"] if counts["name"] else []
    if counts["sha256"]:
        parts.append(f"{counts['sha256']} by the signed sha256")
    by_value = counts["value"] + counts["transposed"] + counts["blocks"]
    if by_value:
        parts.append(f"{by_value} by value")
    if counts["transposed"]:
        parts.append(f"{counts['transposed']} transposed")
    if counts["blocks"]:
        parts.append(f"{counts['blocks']} as row blocks")
    if counts["folded"]:
        folds = sum(1 for m in matches if m.folds)
        parts.append(
            f"{counts['folded']} through {folds} BatchNorm fold{'s' if folds > 1 else ''}, "
            f"recomputed within {FOLD_RTOL:g} of the largest value"
        )
    return ", ".join(parts)


def _proof(matches: list[Match]) -> str:
    proven = [m for m in matches if m.how not in ("fail", "unproven")]
    sources = {m.source for m in proven if m.source}
    how = _how(proven)
    verb = "identical to" if not any(m.how == "folded" for m in proven) else "proven against"
    unproven = [m.name for m in matches if m.how == "unproven"]
    if not unproven:
        return f"intact by sha256; all {len(matches)} tensors {verb} {_labels(sources)} ({how})"
    text = (
        f"intact by sha256 only: {len(unproven)} of {len(matches)} tensors appear in no verified artifact "
        f"({_names(unproven)})"
    )
    if proven:
        text += f"; the other {len(proven)} are {verb} {_labels(sources)} ({how})"
    return text


def _checks(matches: list[Match], state: Mapping[str, np.ndarray], tol: Tolerance) -> list[OutputCheck]:
    checks = []
    for m in matches:
        where = f"weights vs {m.source}" if m.source else "weights"
        if m.how == "sha256":
            checks.append(OutputCheck(input_set=where, output=m.name, verdict="pass", bit_exact=True))
        elif m.how == "fail" and m.reference is None:  # only some of its blocks matched
            checks.append(
                OutputCheck(input_set=where, output=m.name, verdict="fail", category="accuracy", message=m.detail)
            )
        elif m.reference is not None:
            check = compare_array(m.reference, state[m.name], tol, input_set=where, output=m.name)
            if m.how == "fail" and check.verdict == "pass":  # a counterpart can be equal only in a shape's view
                check = check.model_copy(update={"verdict": "fail", "category": "accuracy"})
            if m.how == "fail":
                check = check.model_copy(update={"message": f"{m.detail}: {check.message or 'differs'}"})
            checks.append(check)
        for label, anchor, recomputed in m.folds:
            # Recomputed in float64 from the file's tensors; the graph holds the float32 result.
            fold = compare_array(
                recomputed, anchor, _FOLD_TOL, input_set=where, output=label, reference_dtype=str(anchor.dtype)
            )
            checks.append(fold)
    return [c.model_copy(update={"set_kind": "weights"}) for c in checks]


def _keys_problem(file: str, state: Mapping[str, object], program: AnchorTensors) -> str | None:
    """The program holds exactly the model's state: the names must match exactly."""
    extra = sorted(k for k in state if k not in program.tensors)
    if extra:
        return f"{file} holds tensors the torch_export program does not: {_names(extra)}"
    absent = sorted(k for k in program.tensors if k not in state)
    if absent:
        return f"{file} lacks tensors the torch_export program has: {_names(absent)}"
    return None


State = dict[str, np.ndarray]


def read_weights(exporter: WeightsExporter, root: Path, files: list[str], tol: Tolerance) -> State | CandidateResult:
    """The weights file's tensors as numpy arrays, or the failed candidate saying why it cannot be read."""
    fmt, cand, runtime = exporter.name, exporter.candidate, exporter.runtime
    try:
        raw = exporter.read_state(root / files[0])
        return {k: torch_as_numpy(v) for k, v in raw.items()}  # type: ignore[arg-type]  # views, read only
    except StageError as e:
        return not_run(cand, fmt, runtime, tol, "load", str(e))
    except Exception as e:
        return not_run(cand, fmt, runtime, tol, "load", f"{files[0]}: {one_line(e)}")


def _peers_problem(file: str, state: State, peers: Mapping[str, Collection[str]]) -> str | None:
    """Without a program, the folder's weights files must at least hold the same tensor names."""
    for other, theirs in peers.items():
        only_here, only_there = sorted(set(state) - set(theirs)), sorted(set(theirs) - set(state))
        if only_here or only_there:
            sides = [f"only {file} holds {_names(only_here)}"] if only_here else []
            sides += [f"only {other} holds {_names(only_there)}"] if only_there else []
            return f"{file} and {other} disagree on their tensor names: {'; '.join(sides)}"
    return None


def check_weights(
    exporter: WeightsExporter,
    root: Path,
    files: list[str],
    tol: Tolerance,
    anchors: Anchors,
    no_program: str,
    *,
    state: State | None = None,
    peers: Mapping[str, Collection[str]] | None = None,
    signed: Mapping[str, str] | None = None,
    stand_in: AnchorTensors | None = None,
) -> CandidateResult:
    """Prove each tensor of the weights file against the verified artifacts; ``no_program`` says why no .pt2.

    ``state`` is the file's tensors when already read; ``peers`` the other weights files' tensor names;
    ``signed`` the per-tensor sha256 the manifest records, given only under a valid signature: they
    prove what no artifact could. ``stand_in`` replaces the program's tensors (see :func:`stand_in_for_program`).
    """
    fmt, cand, runtime = exporter.name, exporter.candidate, exporter.runtime
    if state is None:
        read = read_weights(exporter, root, files, tol)
        if isinstance(read, CandidateResult):
            return read
        state = read
    program = stand_in if stand_in is not None else anchors.get("torch_export")
    if program is not None and (problem := _keys_problem(files[0], state, program)) is not None:
        return not_run(cand, fmt, runtime, tol, "missing", problem)
    if program is None and peers and (problem := _peers_problem(files[0], state, peers)) is not None:
        return not_run(cand, fmt, runtime, tol, "missing", problem)
    used = [program] if program is not None else []
    matches = list(match_tensors(state, used).values())
    if any(m.how in ("fail", "unproven") and m.source != "torch_export" for m in matches):
        onnx = anchors.get("onnx")  # try both before giving up on a tensor
        if onnx is not None:
            used.append(onnx)
            matches = list(match_tensors(state, used).values())
    if signed:
        matches = [_by_digest(m, state[m.name], signed) if m.how == "unproven" else m for m in matches]
    checks = _checks(matches, state, tol)
    if not state and program is not None:  # no tensor, like the verified program: its key check proved it
        proof = "intact by sha256; holds no tensor, like the verified torch_export program"
        return CandidateResult(
            candidate=cand, format=fmt, runtime=runtime, tolerance=tol, status="ok", verdict="pass", proof=proof
        )
    if not checks:  # nothing could be compared: unproven below, never a pass
        result = CandidateResult(
            candidate=cand, format=fmt, runtime=runtime, tolerance=tol, status="ok", verdict="pass"
        )
    else:
        result = summarise(cand, fmt, runtime, tol, checks)
    if result.verdict == "fail":
        bad = [m.name for m in matches if m.how == "fail"]
        return result.model_copy(update={"reason": f"{files[0]}: tampered tensors {_names(bad)}"})
    proof = _proof(matches)
    if any(m.how == "unproven" for m in matches) or not checks:
        why = f"{no_program}; {PROGRAM_FIX}" if program is None else "no verified artifact holds them"
        if not used:
            proof = (
                f"intact by sha256 only: no verified torch_export or onnx artifact to compare its {len(matches)} "
                f"tensors with"
            )
        return result.model_copy(update={"status": "unproven", "verdict": "unproven", "proof": proof, "reason": why})
    return result.model_copy(update={"proof": proof})


def _by_digest(match: Match, tensor: np.ndarray, signed: Mapping[str, str]) -> Match:
    """An unproven tensor, checked against the signed manifest's sha256 of the exported model's tensor."""
    recorded = signed.get(match.name)
    if recorded is None:
        return match
    if tensor_digest(tensor) == recorded:
        return Match(match.name, "sha256", source=SIGNED)
    return Match(match.name, "fail", source=SIGNED, detail="differs from the sha256 the signed manifest records")


Fingerprints = dict[str, tuple[str, tuple[int, ...]]]  # name -> (tensor_digest, shape)


def stand_in_for_program(state: State, program: Fingerprints | None) -> AnchorTensors | None:
    """The weights file's own tensors as the verified program's, when both hold the same names and every tensor's
    sha256 (dtype and bytes) and shape are the program's: the comparisons then give what the program's tensors
    would, and a big model's weights and program are never held together. None otherwise: compare with the
    program. The shape is compared apart: ``tensor_digest`` hashes a 0-d tensor as shape [1]."""
    if program is None or set(state) != set(program):
        return None
    for name, tensor in state.items():
        digest, shape = program[name]
        if tensor.shape != shape or tensor_digest(tensor) != digest:
            return None
    return AnchorTensors("torch_export", state, exact_names=True)


def program_fingerprints(root: Path, formats: Mapping[str, FormatRecord]) -> Fingerprints | None:
    """The .pt2 program's tensors by name: sha256 (as the manifest records a weights file's) and shape, read once
    and let go, so that a big model's weights file and program are never held together; None when unreadable
    (the full comparison then says what it finds)."""
    path = root / formats["torch_export"].files[0]
    try:
        tensors = _unprefixed(_from_pt2(path))
        return {k: (tensor_digest(v), tuple(v.shape)) for k, v in tensors.items()}
    except Exception:
        return None
    finally:
        tensors = {}  # the program's arrays are views of it: dropped before the collection below
        let_go(path.stat().st_size)  # its graph modules sit in cycles


def program_digests(root: Path, formats: Mapping[str, FormatRecord]) -> dict[str, str] | None:
    """:func:`program_fingerprints` without the shapes: the per-tensor sha256 a manifest records."""
    found = program_fingerprints(root, formats)
    return None if found is None else {k: digest for k, (digest, _) in found.items()}


def weights_notes(
    root: Path,
    formats: Mapping[str, FormatRecord],
    candidates: list[CandidateResult],
    selected: list[str],
    skipped: Mapping[str, str],
) -> list[str]:
    """For ``run``: what verify will be able to prove for each weights file of a user's model."""
    passed = {c.format for c in candidates if c.verdict == "pass" and c.status == "ok"}
    anchors = Anchors(root, formats, lambda f: f in passed)
    checked = next((c for c in candidates if c.format == "torch_export"), None)
    why = program_state("torch_export" in selected, "torch_export" in formats, checked, skipped.get("torch_export"))
    notes = []
    program = program_digests(root, formats) if "torch_export" in passed else None
    for name, record in formats.items():
        exporter = exporters.get(name)
        if not isinstance(exporter, WeightsExporter) or name not in passed:
            continue
        if program is not None and record.tensors and record.tensors == program:
            continue  # every tensor, by name, bit for bit in the verified program: verify proves it (no note)
        result = check_weights(exporter, root, record.files, exporter.tolerance, anchors, why)
        if result.verdict == "unproven":
            fix = PROGRAM_FIX if "torch_export" not in selected else f"{why}; fix it: its program holds every tensor"
            notes.append(
                f"verify will only be able to call {record.files[0]} unproven where this folder's signature is not "
                f"valid (a valid one proves its tensors by the manifest's sha256): {result.proof}; {fix}"
            )
        elif result.verdict == "fail":
            notes.append(
                f"verify will fail {record.files[0]}, which this run just checked: {result.reason} "
                f"(a false failure of modelport's weights matching: please report it); {PROGRAM_FIX}"
            )
    return notes
