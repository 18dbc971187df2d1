"""The latency profile as rows: one builder for the terminal table (rich) and report.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelport.profiling.records import Profile

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PROFILE_COLUMNS", "markdown_lines", "print_profile", "profile_rows", "skip_lines"]

PROFILE_COLUMNS = ["candidate", "batch", "p50 ms", "p95 ms", "items/s", "iterations", "threads", "timed in", "fastest"]


def profile_rows(profile: Profile) -> list[list[str]]:
    """Batch size by batch size, fastest first; the fastest candidate of each size marked."""
    rows = []
    for row in sorted(profile.rows, key=lambda r: (r.batch, r.p50_ms)):
        fastest = profile.fastest.get(str(row.batch)) == row.candidate
        iterations = f"{row.iterations}" + (f" x {row.calls_per_sample} calls" if row.calls_per_sample > 1 else "")
        rows.append(
            [
                row.candidate,
                str(row.batch),
                f"{row.p50_ms:.4g}",
                f"{row.p95_ms:.4g}",
                f"{row.items_per_second:.4g}",
                iterations,
                "-" if row.threads is None else str(row.threads),
                row.timed_in,
                "fastest" if fastest else "",
            ]
        )
    return rows


def skip_lines(profile: Profile) -> list[str]:
    return [
        f"not profiled: {s.candidate}" + (f" at batch {s.batch}" if s.batch is not None else "") + f": {s.reason}"
        for s in profile.skipped
    ]


def print_profile(console: Console, profile: Profile) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"latency profile ({profile.seconds:.1f} s; one process per candidate)", title_justify="left")
    for col in PROFILE_COLUMNS:
        table.add_column(col, overflow="fold")
    for row in profile_rows(profile):
        table.add_row(*(Text(cell) for cell in row), style="green" if row[-1] else None)
    console.print(table)
    for line in skip_lines(profile):
        console.print(line, highlight=False, markup=False)


def markdown_lines(profile: Profile) -> list[str]:
    """The profile section of report.md."""
    lines = [
        "## Latency profile",
        "",
        "Each candidate in its own process; the runtimes outside Python timed inside their own program. "
        "Figures, never a verdict.",
        "",
        "| " + " | ".join(PROFILE_COLUMNS) + " |",
        "|" + "---|" * len(PROFILE_COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in profile_rows(profile)]
    lines += ["", *(f"- {line}" for line in skip_lines(profile)), ""]
    return lines
