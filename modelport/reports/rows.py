"""The table rows every report shows, as plain strings: one builder per table, shared by every renderer.

The latency rows are the profiler's own builder (``profiling/table.py``), named here with the others.

A row is a list of cells in the order of its ``*_COLUMNS``; the last cell of the summary and parity rows
is the verdict text, which renderers colour by (``FAIL`` red, ``unproven`` yellow).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelport.pipeline.records import Report, StageRecord, VerifyReport
from modelport.profiling.table import PROFILE_COLUMNS as LATENCY_COLUMNS
from modelport.profiling.table import profile_rows as latency_rows
from modelport.profiling.table import skip_lines as latency_skip_lines
from modelport.validators.records import CandidateResult, OutputCheck

__all__ = [
    "CI_SUMMARY_COLUMNS",
    "DRIFT_COLUMNS",
    "FORMAT_COLUMNS",
    "LATENCY_COLUMNS",
    "PARITY_COLUMNS",
    "ROUNDING_COLUMNS",
    "RUNTIME_COLUMNS",
    "STAGE_COLUMNS",
    "SUMMARY_COLUMNS",
    "TOLERANCE_COLUMNS",
    "all_notes",
    "check_verdict",
    "ci_summary_rows",
    "drift_rows",
    "failing_rows",
    "format_rows",
    "latency_rows",
    "latency_skip_lines",
    "lost_coverage_lines",
    "num",
    "parity_rows",
    "rounding_rows",
    "runtime_rows",
    "stage_rows",
    "summary_rows",
    "tolerance_rows",
]

PARITY_COLUMNS = [
    "candidate",
    "input set",
    "output",
    "shape",
    "max abs err",
    "max rel err",
    "outside tol",
    "bit-exact",
    "tolerance",
    "verdict",
]
SUMMARY_COLUMNS = [
    "candidate",
    "checks passed",
    "edge cases passed",
    "max abs err",
    "min passing atol",
    "tol used",
    "min cosine",
    "min top-1",
    "bit-exact",
    "tolerance",
    "verdict",
]
RUNTIME_COLUMNS = ["candidate", "runtime version", "load s", "median infer ms", "sets"]
STAGE_COLUMNS = ["stage", "status", "seconds", "reason"]
TOLERANCE_COLUMNS = ["format", "atol", "rtol", "rtol scales with", "min cosine", "source"]
FORMAT_COLUMNS = ["format", "runtime", "files", "details"]
ROUNDING_COLUMNS = ["candidate", "original vs float64 (max)", "candidate vs float64 (max)"]
DRIFT_COLUMNS = ["input set", "output", "max abs drift", "max rel drift", "cosine", "identical", "verdict"]
CI_SUMMARY_COLUMNS = ["candidate", "checks passed", "edge cases passed", "max abs err", "tol used", "verdict"]


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _ratio(checks: Sequence[OutputCheck]) -> str:
    if not checks:
        return "-"
    flagged = sum(c.verdict == "fail" and not c.gates for c in checks)
    return f"{sum(c.verdict == 'pass' for c in checks)}/{len(checks)}" + (f" ({flagged} flagged)" if flagged else "")


def check_verdict(c: OutputCheck) -> str:
    """A check's verdict cell: pass (and which bound decided), FAIL, or flagged (reported, not gating)."""
    if c.verdict == "pass":
        return "pass (float64 rounding)" if (c.decided_by or "").startswith("float64") else "pass"
    if not c.gates:
        return f"flagged, not gating ({c.category}): {c.message}"
    return f"FAIL ({c.category}): {c.message}"


def lost_coverage_lines(report: Report) -> list[str]:
    """Generated input sets the original itself fails on: coverage this run could not have."""
    return [f"coverage lost: input set {s.name} ({s.kind}): {s.reason}" for s in report.lost_coverage]


def _verdict(cand: CandidateResult) -> str:
    if cand.verdict == "unproven":  # never a pass: what is missing, and how to prove it
        return f"unproven: {cand.proof}" + (f" ({cand.reason})" if cand.reason else "")
    return "pass" if cand.verdict == "pass" else "FAIL" + (f": {cand.reason}" if cand.reason else "")


def _unchecked_verdict(cand: CandidateResult) -> str:
    """The verdict of a candidate with no check: skipped, unproven, not verified, or why it could not run."""
    if cand.status == "skipped":
        return f"skipped: {cand.reason}"
    if cand.verdict == "unproven":
        return _verdict(cand)
    if cand.status == "untrusted":
        return f"NOT VERIFIED: {(cand.reason or '').removeprefix('not verified: ')}"
    return f"FAIL ({cand.category}): {cand.reason}"


def _bit_exact(checks: Sequence[OutputCheck]) -> str:
    return "all" if all(c.bit_exact for c in checks) else ("some" if any(c.bit_exact for c in checks) else "no")


def summary_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    """One row per candidate: how many checks passed, the worst error, the tolerance that would have passed."""
    rows = []
    for cand in candidates:
        tol = cand.tolerance.describe()
        if not cand.checks:
            rows.append([cand.candidate, "-", "-", "-", "-", "-", "-", "-", "-", tol, _unchecked_verdict(cand)])
            continue
        regular = [c for c in cand.checks if c.set_kind != "edge"]
        edge = [c for c in cand.checks if c.set_kind == "edge"]
        rows.append(
            [
                cand.candidate,
                _ratio(regular),
                _ratio(edge),
                num(cand.max_abs_err),
                num(cand.min_passing_atol),
                "-" if cand.tolerance_used is None else f"{cand.tolerance_used:.0%}",
                "-" if cand.min_cosine is None else f"{cand.min_cosine:.6f}",
                num(cand.min_top1_agreement),
                _bit_exact(cand.checks),
                tol,
                _verdict(cand),
            ]
        )
    return rows


def parity_rows(
    candidates: Sequence[CandidateResult], *, only_failures: bool = False, edge: bool | None = None
) -> list[list[str]]:
    """One row per candidate x input set x output; ``edge`` selects edge-case sets (True), others (False) or all."""
    rows: list[list[str]] = []
    for cand in candidates:
        tol = cand.tolerance.describe()
        for c in cand.checks:
            if (only_failures and c.verdict == "pass") or (edge is not None and (c.set_kind == "edge") != edge):
                continue
            shape = "x".join(map(str, c.shape)) if c.shape is not None else "-"
            outside = "-" if c.mismatches is None else f"{c.mismatches}/{c.elements}"
            exact = "-" if c.bit_exact is None else ("yes" if c.bit_exact else "no")
            rows.append(
                [
                    cand.candidate,
                    c.input_set,
                    c.output,
                    shape,
                    num(c.max_abs_err),
                    num(c.max_rel_err),
                    outside,
                    exact,
                    tol,
                    check_verdict(c),
                ]
            )
    return rows


def runtime_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    """Which runtime ran each candidate, and how long it took to open the artifact and to run one input set."""
    rows = []
    for cand in candidates:
        if cand.runtime_version is None and cand.load_seconds is None:
            continue
        times = sorted(cand.infer_seconds.values())
        median = f"{times[len(times) // 2] * 1000:.3g}" if times else "-"
        load = "-" if cand.load_seconds is None else f"{cand.load_seconds:.3g}"
        rows.append([cand.candidate, cand.runtime_version or "-", load, median, str(len(times))])
    return rows


def stage_rows(stages: Sequence[StageRecord]) -> list[list[str]]:
    return [[s.name, s.status, f"{s.seconds:.3f}", s.reason or ""] for s in stages]


def tolerance_rows(report: Report) -> list[list[str]]:
    return [
        [
            f,
            f"{t.atol:g}",
            f"{t.rtol:g}",
            "each |ref|" if t.rtol_scope == "element" else "max |ref| of the output",
            "-" if t.min_cosine is None else f"{t.min_cosine:g}",
            t.source,
        ]
        for f, t in report.tolerances.items()
    ]


def format_rows(report: Report) -> list[list[str]]:
    return [
        [r.format, r.runtime, ", ".join(r.files), ", ".join(f"{k}={v}" for k, v in r.details.items())]
        for r in report.formats.values()
    ]


def rounding_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    """The original's own float32 error against float64 next to the candidate's, where both are known."""
    rows = []
    for cand in candidates:
        own = [c.reference_rounding_err for c in cand.checks if c.reference_rounding_err is not None]
        theirs = [c.max_abs_err_vs_fp64 for c in cand.checks if c.max_abs_err_vs_fp64 is not None]
        if own and theirs:
            rows.append([cand.candidate, f"{max(own):.3g}", f"{max(theirs):.3g}"])
    return rows


def drift_rows(report: VerifyReport) -> list[list[str]]:
    return [
        [
            c.input_set,
            c.output,
            num(c.max_abs_err),
            num(c.max_rel_err),
            "-" if c.cosine is None else f"{c.cosine:.6f}",
            "yes" if c.bit_exact else "no",
            "pass" if c.verdict == "pass" else f"FAIL: {c.message}",
        ]
        for c in report.drift
    ]


def all_notes(report: Report) -> list[str]:
    """The run's notes, then every stage's, prefixed with the stage."""
    return [*report.notes, *(f"{s.name}: {n}" for s in report.stages for n in s.notes)]


def ci_summary_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    """The compact per-candidate row of a CI job summary; a failure says its category and its first cause."""
    rows = []
    for cand in candidates:
        regular = [c for c in cand.checks if c.set_kind != "edge"]
        edge = [c for c in cand.checks if c.set_kind == "edge"]
        passed = f"{sum(c.verdict == 'pass' for c in regular)}/{len(regular)}" if regular else "-"
        edge_passed = f"{sum(c.verdict == 'pass' for c in edge)}/{len(edge)}" if edge else "-"
        if cand.flagged():
            edge_passed += f" ({len(cand.flagged())} flagged)"
        used = "-" if cand.tolerance_used is None else f"{cand.tolerance_used:.0%}"
        verdict: str = cand.verdict if cand.status != "skipped" else "skipped"
        if cand.verdict == "unproven":
            verdict = f"unproven: {cand.proof} ({cand.reason})"
        if cand.verdict == "fail":
            first = cand.failures()[0] if cand.failures() else None
            why = cand.reason or (f"{first.input_set}/{first.output}: {first.message}" if first else "")
            category = cand.category or (first.category if first else None) or "accuracy"
            verdict = f"fail ({category}): {why}"
        rows.append([cand.candidate, passed, edge_passed, num(cand.max_abs_err), used, verdict])
    return rows


def failing_rows(report: Report | VerifyReport) -> list[list[str]]:
    """Every gating failed check (and, for verify, failed drift check): where, its category, its message."""
    failing = [(c.candidate, f) for c in report.candidates for f in c.failures()]
    if isinstance(report, VerifyReport):
        failing += [(f"drift vs {report.against}", c) for c in report.drift if c.verdict == "fail"]
    return [[f"{name} {c.input_set} {c.output}", str(c.category), c.message or ""] for name, c in failing]


LOCALIZE_COLUMNS = ["candidate", "set", "module", "class", "chained error", "own error", "verdict"]


def _value(check: object) -> str:
    from modelport.localize.records import ValueCheck

    if not isinstance(check, ValueCheck):
        return "-"
    used = "" if check.tolerance_used is None else f" ({check.tolerance_used:.3g}x tol)"
    return f"{check.verdict} {num(check.max_abs_err)}{used}"


def localization_lines(candidates: Sequence[CandidateResult]) -> list[str]:
    """One line per localised candidate: where it first diverged, or why no module is named."""
    return [
        f"{c.candidate} ({c.localization.input_set}): {c.localization.summary}"
        for c in candidates
        if c.localization is not None
    ]


def localization_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    """Each localised candidate's modules in execution order, up to a few past the first diverging one."""
    rows = []
    for c in candidates:
        loc = c.localization
        if loc is None:
            continue
        for e in loc.modules:
            mark = "FIRST" if e.module == loc.first else ""
            if e.module == loc.blamed:
                mark = (mark + " BLAMED").strip()
            where = e.unmapped and f"unmapped: {e.unmapped}"
            rows.append(
                [c.candidate, loc.input_set, e.module, e.class_name, _value(e.chained), _value(e.own), where or mark]
            )
    return rows
