"""Peak resident memory of a command's whole process tree, sampled every 0.1 s (Linux /proc).

    .venv/bin/python benchmarks/treemem.py -- modelport run --model tests/big_models.py:mlp_3g

Prints the command's wall time and the peak of the summed RSS of the command and all its
descendants (the figure issue 10 bounds at 2x the parameter bytes). Nothing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["run_sampled", "tree_rss"]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    """The summed RSS in bytes of ``root`` and every descendant now."""
    kids, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss(pid)
        todo.extend(kids.get(pid, []))
    return total


def run_sampled(argv: list[str], interval: float = 0.1, **kwargs: object) -> tuple[int, float, int]:
    """Run ``argv``; return (exit code, wall seconds, peak summed RSS bytes of its process tree)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(interval)
    return proc.returncode, time.perf_counter() - start, peak


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    code, wall, peak = run_sampled(argv, env=os.environ.copy())
    print(f"exit {code}  wall {wall:.1f} s  peak tree RSS {peak / 1e9:.2f} GB", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
