"""``modelport profile DIR``: the command's printing and its ``--json`` output (the work is ``folder.py``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import UsageError
from modelport.fsutil import atomic_write

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["profile_command"]


def profile_command(args: argparse.Namespace, out: Console) -> int:
    """Exit 0 with figures; 1 when no candidate could be timed at all."""
    from modelport.pipeline.preflight import check_output_file
    from modelport.profiling.folder import profile_folder
    from modelport.profiling.table import print_profile

    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        if json_path.resolve().is_relative_to(Path(args.folder).resolve()):
            raise UsageError(f"--json {json_path} lies inside the artifact folder; write it elsewhere")
        check_output_file("--json", json_path)

    def progress(message: str) -> None:
        out.print(f"  {message}", highlight=False, markup=False)

    result = profile_folder(
        args.folder,
        runtimes=args.runtimes,
        batch_sizes=args.batch_sizes,
        trust=args.trust,
        trusted_keys=args.trusted_key,
        sign_with=args.sign_with,
        runtime_timeout=args.runtime_timeout,
        progress=progress,
    )
    print_profile(out, result.profile)
    out.print(result.signature, highlight=False, markup=False)
    if json_path is not None:
        with atomic_write(json_path) as fh:
            fh.write((json.dumps(result.profile.model_dump(mode="json"), indent=2) + "\n").encode())
    return 0 if result.profile.rows else 1
