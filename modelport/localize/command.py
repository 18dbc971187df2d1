"""``modelport localize DIR --model SPEC``: for each candidate, the first module whose output diverges.

It replays the folder as ``verify`` does, then judges every candidate that ran module by module, a
passing one too (a clean folder says "no divergence"). The model's code comes only from ``--model``:
a spec found in the manifest is never imported, as that would run whoever wrote the folder's code.
Exit 0: no candidate diverges; 1: some candidate diverges or could not be localised; 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from modelport.errors import UsageError
from modelport.fsutil import atomic_write

__all__ = ["localize_command"]

_CLEAN = ("no-divergence",)


def localize_command(args: argparse.Namespace, out: Console) -> int:
    from modelport.pipeline.verify import verify
    from modelport.reports.rows import LOCALIZE_COLUMNS, localization_rows

    if not args.model:
        raise UsageError(
            "localize needs the model's code: pass --model SPEC (as given to `modelport run`); the spec recorded "
            "in the manifest is never imported, since that would run code from whoever wrote the folder"
        )
    report = verify(
        args.folder, runtimes=args.runtimes, trusted_keys=args.trusted_key, trust=args.trust, model=args.model,
        localize_all=True,
    )  # fmt: skip
    found = [c.localization for c in report.candidates if c.localization is not None]
    _table(out, LOCALIZE_COLUMNS, localization_rows(report.candidates))
    for problem in report.integrity:
        out.print(f"  note: {problem.path}: {problem.problem}", highlight=False, markup=False)
    if args.json:
        data = {"folder": str(Path(args.folder)), "localizations": [loc.model_dump(mode="json") for loc in found]}
        with atomic_write(Path(args.json)) as fh:
            fh.write((json.dumps(data, indent=2) + "\n").encode())
    if not found:
        out.print("no candidate could be localised (none ran: see the notes above)", highlight=False, markup=False)
        return 1
    for loc in found:
        out.print(f"{loc.candidate}: {loc.status}: {loc.summary}", highlight=False, markup=False)
    return 0 if all(loc.status in _CLEAN for loc in found) else 1


def _table(out: Console, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="modules in execution order", title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row), style="red" if "FIRST" in row[-1] else None)
    out.print(table)
