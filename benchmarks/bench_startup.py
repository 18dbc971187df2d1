"""Start-up: `modelport --help` and `--version` next to `python -c pass`, alternating, as medians and a ratio.

Nothing is asserted (the machines are shared and noisy); tests/test_startup.py checks what is imported.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "modelport --help": [sys.executable, "-m", "modelport", "--help"],
        "modelport --version": [sys.executable, "-m", "modelport", "--version"],
        "modelport doctor --json": [sys.executable, "-m", "modelport", "doctor", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # alternating, so that load on the machine hits every command alike
        for name, cmd in commands.items():
            times[name].append(_seconds(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"start-up, {args.runs} alternating runs (median seconds, ratio to python -c pass)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<26} {median:6.3f} s  {median / base:5.2f}x")


if __name__ == "__main__":
    main()
