"""``--check-determinism``: export again in a fresh process and compare every artifact's hash.

A second export in the same process always differs (TorchScript mangles class names on
every retrace), so the second run gets its own interpreter. TorchScript is the one format
allowed to differ: its archive embeds the tracer's source locations.

    python -m modelport.pipeline.determinism ARGS.json OUT   (what the check runs; not for users)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelport.errors import StageError
from modelport.fsutil import sha256_file
from modelport.pipeline.manifest import HTML_REPORT_NAME, REPORT_NAME
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import Determinism
from modelport.signing import SIGNATURE_NAME

__all__ = ["ALLOWED_TO_DIFFER", "Determinism", "check_determinism"]

ALLOWED_TO_DIFFER = ("torchscript",)
# They hold timings (the signature: of the manifest).
_EXCLUDED = (MANIFEST_NAME, REPORT_NAME, HTML_REPORT_NAME, SIGNATURE_NAME)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in _EXCLUDED
    }


def check_determinism(folder: Path, run_kwargs: dict[str, Any], allowed_files: set[str]) -> Determinism:
    """Run ``modelport.run(**run_kwargs)`` again in a new process and compare with ``folder``."""
    with tempfile.TemporaryDirectory(prefix="modelport-determinism-") as tmp:
        args = Path(tmp) / "args.json"
        args.write_text(json.dumps(run_kwargs))
        other = Path(tmp) / "second"
        proc = subprocess.run(
            [sys.executable, "-m", "modelport.pipeline.determinism", str(args), str(other)],
            capture_output=True,
            text=True,
            timeout=3600,
            cwd=Path.cwd(),
        )
        if proc.returncode not in (0, 1) or not other.is_dir():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StageError(f"the second export (a new process) failed: {tail[0]}")
        first, second = _hashes(folder), _hashes(other)
    identical, differs, allowed = [], [], []
    for path in sorted(set(first) | set(second)):
        if first.get(path) == second.get(path):
            identical.append(path)
        elif path in allowed_files:
            allowed.append(path)
        else:
            differs.append(path)
    return Determinism(identical=identical, differs=differs, allowed_to_differ=allowed)


def _second_run(args_file: str, out: str) -> int:
    import modelport
    from modelport.loaders import parse_json

    kwargs = parse_json(Path(args_file).read_bytes(), args_file)
    report = modelport.run(**kwargs, out=out, force=True)
    return report.exit_code


if __name__ == "__main__":
    from modelport.shutdown import exit_quickly

    exit_quickly(_second_run(sys.argv[1], sys.argv[2]))
