"""Human-readable views of a report: ``report.md`` and the terminal tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from modelport.pipeline.records import Report, StageRecord, VerifyReport
from modelport.validators.records import CandidateResult

__all__ = ["PARITY_COLUMNS", "parity_rows", "print_parity", "print_stage", "render_markdown"]

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


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def parity_rows(candidates: Sequence[CandidateResult]) -> list[list[str]]:
    rows: list[list[str]] = []
    for cand in candidates:
        tol = cand.tolerance.describe()
        if not cand.checks:
            verdict = "skipped" if cand.status == "skipped" else f"FAIL ({cand.category}): {cand.reason}"
            rows.append([cand.candidate, "-", "-", "-", "-", "-", "-", "-", tol, verdict])
            continue
        for c in cand.checks:
            shape = "x".join(map(str, c.shape)) if c.shape is not None else "-"
            outside = "-" if c.mismatches is None else f"{c.mismatches}/{c.elements}"
            exact = "-" if c.bit_exact is None else ("yes" if c.bit_exact else "no")
            verdict = "pass" if c.verdict == "pass" else f"FAIL ({c.category}): {c.message}"
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
    console.print(f"  {record.name:<12} {mark:<22} {record.seconds:7.3f} s{reason}", highlight=False)


def print_parity(console: Console, report: Report | VerifyReport) -> None:
    title = "parity against the original model"
    if isinstance(report, VerifyReport):
        title = "parity against the golden outputs recorded from the original model"
    table = Table(title=title, title_justify="left")
    for col in PARITY_COLUMNS:
        table.add_column(col, overflow="fold")
    for row in parity_rows(report.candidates):
        style = "red" if row[-1].startswith("FAIL") else None
        table.add_row(*row, style=style)
    console.print(table)


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
        "An element passes when `|candidate - reference| <= atol + rtol * |reference|`; "
        "the reference is the original model in eval mode.",
        "",
    ]
    lines += _md_table(PARITY_COLUMNS, parity_rows(report.candidates))
    lines += ["", "## Stages", ""]
    stage_rows = [[s.name, s.status, f"{s.seconds:.3f}", s.reason or ""] for s in report.stages]
    lines += _md_table(["stage", "status", "seconds", "reason"], stage_rows)
    lines += ["", "## Tolerances", ""]
    lines += _md_table(
        ["format", "atol", "rtol", "source"],
        [[f, f"{t.atol:g}", f"{t.rtol:g}", t.source] for f, t in report.tolerances.items()],
    )
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
