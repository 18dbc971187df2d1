"""What ``verify`` checks before it loads anything: the folder's files, and the manifest against itself.

A manifest is not signed, so it is held to everything ``run`` would have written: each
format's file has its fixed name, each listed file has the role its format or golden set
gives it, the golden sets are the ones the recorded checks ran on, and every tolerance is
what the recorded options resolve to. An edit that shrinks what verify checks shows up here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from modelport import exporters
from modelport.errors import UsageError
from modelport.fsutil import sha256_file
from modelport.pipeline.golden import ONNX_TEST_DATA
from modelport.pipeline.manifest import expected_roles
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import IntegrityProblem, Report
from modelport.signing import SIGNATURE_NAME
from modelport.validators.tolerance import resolve_tolerances

__all__ = ["consistency", "golden_set_problems", "inside", "integrity", "required_sets"]


def inside(folder: Path, rel: str) -> Path | None:
    """The listed path under ``folder``, or None when it is not a plain relative path that stays inside."""
    pure = PurePosixPath(rel)
    if (
        not rel
        or pure.is_absolute()
        or "\\" in rel
        or pure.as_posix() != rel
        or any(p in ("", ".", "..") for p in pure.parts)
    ):
        return None
    path = folder.joinpath(*pure.parts)
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError, RuntimeError):  # outside, or a symlink loop
        return None
    return path


def _problem(path: str, text: str) -> IntegrityProblem:
    return IntegrityProblem(path=path, problem=text)


def integrity(folder: Path, manifest: Report) -> list[IntegrityProblem]:
    """Each listed file: a regular file inside the folder, one link, the recorded size and sha256; nothing extra."""
    problems: list[IntegrityProblem] = []
    if (folder / MANIFEST_NAME).is_symlink():
        problems.append(_problem(MANIFEST_NAME, "is a symbolic link; an artifact folder holds regular files"))
    for entry in manifest.artifacts:
        path = inside(folder, entry.path)
        if path is None:
            problems.append(_problem(entry.path, "path leaves the artifact folder (or is not a plain relative path)"))
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            problems.append(_problem(entry.path, "listed in the manifest but missing"))
            continue
        if stat.S_ISLNK(info.st_mode):
            problems.append(_problem(entry.path, "is a symbolic link; an artifact folder holds regular files"))
        elif not stat.S_ISREG(info.st_mode):
            problems.append(_problem(entry.path, "is not a regular file"))
        elif info.st_nlink > 1:
            # A hard link can make the bytes read here those of a file outside the folder.
            problems.append(_problem(entry.path, f"has {info.st_nlink} hard links; copy it instead"))
        elif info.st_size != entry.bytes:
            problems.append(_problem(entry.path, f"size {info.st_size} != recorded {entry.bytes}"))
        elif sha256_file(path) != entry.sha256:
            problems.append(_problem(entry.path, "sha256 differs from the manifest"))
    # manifest.sig signs the manifest, so the manifest cannot list it: the one exempt name (checked by verify).
    listed = {entry.path for entry in manifest.artifacts} | {MANIFEST_NAME, SIGNATURE_NAME}
    for top, dirs, files in os.walk(folder):  # does not follow symlinked folders: they are reported
        for name in sorted([*files, *(d for d in dirs if (Path(top) / d).is_symlink())]):
            rel = (Path(top) / name).relative_to(folder).as_posix()
            if rel not in listed:
                problems.append(_problem(rel, "present but not listed in the manifest"))
    return problems


def _tolerance_problems(manifest: Report) -> list[IntegrityProblem]:
    """Every recorded tolerance must be what the recorded options resolve to (a source label proves nothing)."""
    options = manifest.options
    names = list(manifest.tolerances)
    known = [n for n in names if n in exporters.names()]
    try:
        unknown = [k for k in options.tol if k not in exporters.names()]
        if unknown:
            raise ValueError(f"tol names unknown formats {', '.join(unknown)}")
        per_format = {k: (v.atol, v.rtol) for k, v in options.tol.items()}
        defaults = {n: exporters.default_tolerance(n, manifest.model.dtypes) for n in known}
        expected = resolve_tolerances(defaults, atol=options.atol, rtol=options.rtol, per_format=per_format)
    except (UsageError, TypeError, ValueError) as e:
        return [_problem(MANIFEST_NAME, f"its recorded tolerance options cannot be read: {e}")]
    problems = []
    for name in manifest.formats:
        tol = manifest.tolerances.get(name)
        if tol is None:
            problems.append(_problem(MANIFEST_NAME, f"no tolerance recorded for {name}"))
        elif name in expected and tol != expected[name]:
            problems.append(
                _problem(
                    MANIFEST_NAME,
                    f"{name}'s tolerance is recorded as {tol.describe()} ({tol.source}), but the recorded options "
                    f"give {expected[name].describe()} ({expected[name].source})",
                )
            )
    return problems


def consistency(manifest: Report) -> list[IntegrityProblem]:
    problems: list[IntegrityProblem] = []
    paths = [os.path.normpath(a.path) for a in manifest.artifacts]
    for dup in sorted({p for p in paths if paths.count(p) > 1}):
        problems.append(_problem(dup, "listed more than once in the manifest"))
    listed = {a.path for a in manifest.artifacts}
    for name, record in manifest.formats.items():
        if name not in exporters.names():
            problems.append(_problem(MANIFEST_NAME, f"names a format this modelport does not know: {name}"))
            continue
        main = exporters.get(name).main_file
        if not record.files or record.files[0] != main or record.format != name:
            problems.append(
                _problem(MANIFEST_NAME, f"format {name} must open {main}, the manifest says {record.files}")
            )
        for rel in record.files:
            if rel not in listed:
                problems.append(_problem(rel, "used by the manifest but not listed with a hash"))
    roles = expected_roles({k: v for k, v in manifest.formats.items() if k in exporters.names()}, manifest.golden)
    for entry in manifest.artifacts:
        want = roles.get(entry.path)
        if entry.path.startswith(f"{ONNX_TEST_DATA}/"):
            continue  # checked against the .npz sets when they are replayed
        if want is None and entry.role in ("model", "weights", "external-data", "extra"):
            problems.append(_problem(entry.path, f"a {entry.role} file that belongs to no recorded format"))
        elif want is not None and (entry.format, entry.role) != want:
            problems.append(_problem(entry.path, f"recorded as {entry.format}/{entry.role}, it is {want[0]}/{want[1]}"))
    for rel in sorted(set(roles) - listed):
        problems.append(_problem(rel, "used by the manifest but not listed with a hash"))
    ran = {c.format for c in manifest.candidates if c.status == "ok"}
    for name in sorted(ran - set(manifest.formats)):
        problems.append(_problem(MANIFEST_NAME, f"format {name} was checked by the run but is missing from formats"))
    for name in manifest.options.formats:
        if name not in manifest.formats and name not in {c.format for c in manifest.candidates}:
            problems.append(_problem(MANIFEST_NAME, f"format {name} was selected but has neither files nor a result"))
    golden = manifest.golden
    if golden is not None:
        if manifest.verdict == "pass":
            for cand in manifest.candidates:
                if cand.status == "ok" and not cand.checks:
                    problems.append(_problem(MANIFEST_NAME, f"{cand.candidate} passed with no recorded check"))
        recorded_sets = {c.input_set for cand in manifest.candidates for c in cand.checks if c.set_kind != "weights"}
        golden_sets = {"example", *(s.name for s in golden.sets)}
        if recorded_sets and recorded_sets != golden_sets:
            problems.append(
                _problem(
                    MANIFEST_NAME,
                    f"its golden sets {sorted(golden_sets)} are not the ones the run checked {sorted(recorded_sets)}",
                )
            )
        if golden.onnx_test_data is None or any(s.onnx_test_data is None for s in golden.sets):
            problems.append(_problem(MANIFEST_NAME, "a golden set has no ONNX test-data folder"))
    return problems + _tolerance_problems(manifest)


_FLOATS = ("float32", "float64", "float16", "bfloat16")


def required_sets(manifest: Report, example_shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """name -> kind of every golden set the recorded options and signature call for (as ``run`` makes them)."""
    from modelport.pipeline.sweep import sweep_sizes

    options = manifest.options
    samples = options.samples
    sets = {"example": "example"}
    sets.update({f"random_{i}": "random" for i in range(1, samples + 1)} if isinstance(samples, int) else {})
    sets.update({f"{label}_{size}": "sweep" for label, size in sweep_sizes(manifest.signature, example_shapes)})
    if options.inputs_file:
        sets["inputs_file"] = "user"
    # Edge sets exist when an input takes float values; a float input named *mask* may be a 0/1 mask.
    if any(t.dtype in _FLOATS and "mask" not in t.name.lower() for t in manifest.signature.inputs):
        sets.update({"zeros": "edge", "large": "edge"})
    return sets


def golden_set_problems(manifest: Report, example_shapes: Mapping[str, Sequence[int]]) -> list[IntegrityProblem]:
    """Golden sets the options call for but the folder lacks, and sets whose recorded kind is not their kind.

    A set the original model failed on is recorded as lost coverage and is not required; the
    kind decides whether a lossy format's miss gates, so it is never taken from the manifest.
    """
    golden = manifest.golden
    if golden is None:
        return []
    try:
        required = required_sets(manifest, example_shapes)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        return [_problem(MANIFEST_NAME, f"its signature does not fit its example inputs ({e})")]
    lost = {s.name for s in manifest.lost_coverage}
    present = {"example": "example", **{s.name: s.kind for s in golden.sets}}
    problems = [
        _problem(MANIFEST_NAME, f"golden set {name!r}, which the recorded options call for, is missing")
        for name in required
        if name not in present and name not in lost
    ]
    problems += [
        _problem(MANIFEST_NAME, f"golden set {name!r} is recorded as kind {kind!r}; it is {required[name]!r}")
        for name, kind in present.items()
        if name in required and kind != required[name]
    ]
    return problems
