"""Human-readable views of a report: ``report.md`` and the terminal tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelport.pipeline.records import Report, StageRecord, VerifyReport
from modelport.validators.records import CandidateResult, OutputCheck

__all__ = [
    "PARITY_COLUMNS",
    "SUMMARY_COLUMNS",
    "parity_rows",
    "print_drift",
    "print_parity",
    "print_stage",
    "render_markdown",
    "summary_rows",
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


def _num(x: float | None) -> str:
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


def summary_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    """One row per candidate: how many checks passed, the worst error, the tolerance that would have passed."""
    rows = []
    for cand in candidates:
        tol = cand.tolerance.describe()
        if not cand.checks:
            verdict = (
                f"skipped: {cand.reason}"
                if cand.status == "skipped"
                else _verdict(cand)
                if cand.verdict == "unproven"
                else f"NOT VERIFIED: {(cand.reason or '').removeprefix('not verified: ')}"
                if cand.status == "untrusted"
                else f"FAIL ({cand.category}): {cand.reason}"
            )
            rows.append([cand.candidate, "-", "-", "-", "-", "-", "-", "-", "-", tol, verdict])
            continue
        regular = [c for c in cand.checks if c.set_kind != "edge"]
        edge = [c for c in cand.checks if c.set_kind == "edge"]
        exact = (
            "all"
            if all(c.bit_exact for c in cand.checks)
            else ("some" if any(c.bit_exact for c in cand.checks) else "no")
        )
        verdict = _verdict(cand)
        rows.append(
            [
                cand.candidate,
                _ratio(regular),
                _ratio(edge),
                _num(cand.max_abs_err),
                _num(cand.min_passing_atol),
                "-" if cand.tolerance_used is None else f"{cand.tolerance_used:.0%}",
                "-" if cand.min_cosine is None else f"{cand.min_cosine:.6f}",
                _num(cand.min_top1_agreement),
                exact,
                tol,
                verdict,
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
            verdict = check_verdict(c)
            rows.append(
                [
                    cand.candidate,
                    c.input_set,
                    c.output,
                    shape,
                    _num(c.max_abs_err),
                    _num(c.max_rel_err),
                    outside,
                    exact,
                    tol,
                    verdict,
                ]
            )
    return rows


def print_stage(console: Console, record: StageRecord) -> None:
    mark = {"ok": "[green]ok[/]", "failed": "[red]FAILED[/]", "skipped": "[yellow]skipped[/]"}[record.status]
    reason = f" - {record.reason}" if record.reason else ""
    console.print(f"  {record.name:<14} {mark:<22} {record.seconds:7.3f} s{escape(reason)}", highlight=False)


def _table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        style = "red" if "FAIL" in row[-1] else "yellow" if row[-1].startswith("unproven") else None
        table.add_row(*(Text(cell) for cell in row), style=style)  # cells are text: a runtime's stderr too
    console.print(table)


def print_parity(console: Console, report: Report | VerifyReport, *, details: bool = False) -> None:
    """The per-candidate summary, then every failing check (every check with ``details``)."""
    against = "the golden outputs" if isinstance(report, VerifyReport) else "the original model"
    _table(console, f"parity against {against}", SUMMARY_COLUMNS, summary_rows(report.candidates))
    rows = parity_rows(report.candidates, only_failures=not details)
    if rows:
        _table(console, "checks" if details else "failing and flagged checks", PARITY_COLUMNS, rows)
    timing = runtime_rows(report.candidates)
    if timing:
        _table(console, "runtimes", RUNTIME_COLUMNS, timing)
    if isinstance(report, Report):
        for line in lost_coverage_lines(report):
            console.print(f"[yellow]{escape(line)}[/]", highlight=False)


RUNTIME_COLUMNS = ["candidate", "runtime version", "load s", "median infer ms", "sets"]


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


def _rounding_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    rows = []
    for cand in candidates:
        own = [c.reference_rounding_err for c in cand.checks if c.reference_rounding_err is not None]
        theirs = [c.max_abs_err_vs_fp64 for c in cand.checks if c.max_abs_err_vs_fp64 is not None]
        if own and theirs:
            rows.append([cand.candidate, f"{max(own):.3g}", f"{max(theirs):.3g}"])
    return rows


def print_drift(console: Console, report: VerifyReport) -> None:
    rows = [
        [
            c.input_set,
            c.output,
            _num(c.max_abs_err),
            _num(c.max_rel_err),
            "-" if c.cosine is None else f"{c.cosine:.6f}",
            "yes" if c.bit_exact else "no",
            "pass" if c.verdict == "pass" else f"FAIL: {c.message}",
        ]
        for c in report.drift
    ]
    columns = ["input set", "output", "max abs drift", "max rel drift", "cosine", "identical", "verdict"]
    _table(console, f"drift of the golden outputs against {report.against}", columns, rows)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    env = report.environment
    lines = [
        f"# modelport report: {report.model.name}",
        "",
        f"**Verdict: {report.verdict.upper()}**",
        "",
        f"- model: `{report.model.spec}` ({report.model.class_name}, {report.model.parameters:,} parameters, "
        f"seed {report.model.seed}): {report.model.description}",
        "- inputs: " + ", ".join(f"`{t.name}` {t.shape} {t.dtype}" for t in report.signature.inputs),
        "- outputs: " + ", ".join(f"`{t.name}` {t.shape} {t.dtype}" for t in report.signature.outputs),
        f"- versions: modelport {env.modelport}, torch {env.torch}, onnx {env.onnx}, onnxruntime {env.onnxruntime}, "
        f"numpy {env.numpy}, python {env.python}",
        "",
        "## Parity",
        "",
        "An element passes when `|candidate - reference| <= atol + rtol * scale`, where scale is the element's "
        "`|reference|` (or, for lossy formats, the output's largest `|reference|`); lossy formats also need a "
        "cosine similarity. The reference is the original model in eval mode. A check that fails this bound "
        "still passes when the candidate is within the float64 rounding allowance of the original re-run in "
        "float64 (`pass (float64 rounding)`: each element within 8x its own float32 rounding error, capped). "
        "Lossy formats on synthetic edge sets are `flagged`: reported, not gating, unless `--strict-edges`.",
        "",
    ]
    lost = lost_coverage_lines(report)
    if lost:
        lines += [f"- {line}" for line in lost] + [""]
    lines += _md_table(SUMMARY_COLUMNS, summary_rows(report.candidates))
    lines += ["", "### Every check", ""]
    lines += _md_table(PARITY_COLUMNS, parity_rows(report.candidates, edge=False))
    edge_rows = parity_rows(report.candidates, edge=True)
    if edge_rows:
        lines += ["", "### Edge cases (zeros, large magnitudes)", ""]
        lines += _md_table(PARITY_COLUMNS, edge_rows)
    if report.profile is not None:
        from modelport.profiling.table import markdown_lines

        lines += ["", *markdown_lines(report.profile)]
    lines += ["", "## Stages", ""]
    stage_rows = [[s.name, s.status, f"{s.seconds:.3f}", s.reason or ""] for s in report.stages]
    lines += _md_table(["stage", "status", "seconds", "reason"], stage_rows)
    lines += ["", "## Tolerances", ""]
    lines += _md_table(
        ["format", "atol", "rtol", "rtol scales with", "min cosine", "source"],
        [
            [
                f,
                f"{t.atol:g}",
                f"{t.rtol:g}",
                "each |ref|" if t.rtol_scope == "element" else "max |ref| of the output",
                "-" if t.min_cosine is None else f"{t.min_cosine:g}",
                t.source,
            ]
            for f, t in report.tolerances.items()
        ],
    )
    rounding = _rounding_rows(report.candidates)
    if rounding:
        lines += ["", "## Float32 rounding versus candidate error", ""]
        lines += [
            "The original also ran in float64. A candidate whose error against that float64 run is of the same "
            "size as the original's own (float32) error differs only by ordinary rounding.",
            "",
        ]
        lines += _md_table(["candidate", "original vs float64 (max)", "candidate vs float64 (max)"], rounding)
    lines += ["", "## Formats", ""]
    lines += _md_table(
        ["format", "runtime", "files", "details"],
        [
            [r.format, r.runtime, ", ".join(r.files), ", ".join(f"{k}={v}" for k, v in r.details.items())]
            for r in report.formats.values()
        ],
    )
    notes = [*report.notes, *(f"{s.name}: {n}" for s in report.stages for n in s.notes)]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
