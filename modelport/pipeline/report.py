"""Human-readable views of a report: ``report.md`` and the terminal tables (rows from ``modelport.reports.rows``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelport.pipeline.records import Report, StageRecord, VerifyReport
from modelport.reports.rows import (
    DRIFT_COLUMNS,
    FORMAT_COLUMNS,
    LOCALIZE_COLUMNS,
    PARITY_COLUMNS,
    ROUNDING_COLUMNS,
    RUNTIME_COLUMNS,
    STAGE_COLUMNS,
    SUMMARY_COLUMNS,
    TOLERANCE_COLUMNS,
    all_notes,
    drift_rows,
    format_rows,
    localization_lines,
    localization_rows,
    lost_coverage_lines,
    parity_rows,
    rounding_rows,
    runtime_rows,
    stage_rows,
    summary_rows,
    tolerance_rows,
)

__all__ = ["print_drift", "print_parity", "print_stage", "render_markdown"]

PARITY_RULE = (
    "An element passes when `|candidate - reference| <= atol + rtol * scale`, where scale is the element's "
    "`|reference|` (or, for lossy formats, the output's largest `|reference|`); lossy formats also need a "
    "cosine similarity. The reference is the original model in eval mode. A check that fails this bound "
    "still passes when the candidate is within the float64 rounding allowance of the original re-run in "
    "float64 (`pass (float64 rounding)`: each element within 8x its own float32 rounding error, capped). "
    "Lossy formats on synthetic edge sets are `flagged`: reported, not gating, unless `--strict-edges`."
)
LOCALIZE_TEXT = (
    "Each failing candidate, run again with every module's output exposed, against the original's module "
    "outputs (forward hooks), in execution order and with the candidate's tolerance. `chained`: the module's "
    "output as the artifact computed it; `own`: the module alone, fed the original's inputs to it, which "
    "tells an error it makes from one it inherits."
)
ROUNDING_TEXT = (
    "The original also ran in float64. A candidate whose error against that float64 run is of the same "
    "size as the original's own (float32) error differs only by ordinary rounding."
)


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
    located = localization_rows(report.candidates)
    if located:
        _table(console, "where it diverged (modules in execution order)", LOCALIZE_COLUMNS, located)
        for line in localization_lines(report.candidates):
            console.print(f"[red]{escape(line)}[/]", highlight=False)
    if isinstance(report, Report):
        for line in lost_coverage_lines(report):
            console.print(f"[yellow]{escape(line)}[/]", highlight=False)


def print_drift(console: Console, report: VerifyReport) -> None:
    _table(console, f"drift of the golden outputs against {report.against}", DRIFT_COLUMNS, drift_rows(report))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def _md_header(report: Report) -> list[str]:
    env = report.environment
    return [
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
    ]


def render_markdown(report: Report) -> str:
    lines = [*_md_header(report), "## Parity", "", PARITY_RULE, ""]
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
    lines += ["", "## Stages", "", *_md_table(STAGE_COLUMNS, stage_rows(report.stages))]
    lines += ["", "## Tolerances", "", *_md_table(TOLERANCE_COLUMNS, tolerance_rows(report))]
    located = localization_lines(report.candidates)
    if located:
        lines += ["", "## Where it diverged", "", LOCALIZE_TEXT, ""] + [f"- {line}" for line in located] + [""]
        lines += _md_table(LOCALIZE_COLUMNS, localization_rows(report.candidates))
    rounding = rounding_rows(report.candidates)
    if rounding:
        lines += ["", "## Float32 rounding versus candidate error", "", ROUNDING_TEXT, ""]
        lines += _md_table(ROUNDING_COLUMNS, rounding)
    lines += ["", "## Formats", "", *_md_table(FORMAT_COLUMNS, format_rows(report))]
    notes = all_notes(report)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
