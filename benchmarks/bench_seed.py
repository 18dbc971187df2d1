"""The seed pipeline: `modelport run` (default formats) next to a minimal hand-written script, as a ratio.

Each is a fresh process (imports included), run alternately so that load on the shared machine
hits both alike; prints the medians and the ratio ``modelport run / script``. Nothing is asserted.
``script+freeze`` is the same script given modelport's quick exit (``modelport/shutdown.py``): the ratio
against it shows what modelport gains apart from skipping the interpreter's final garbage collections.

    .venv/bin/python benchmarks/bench_seed.py [--runs 7] [--onnx-exporter dynamo|legacy]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("seed_script.py")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seconds(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run; CPU time is what load from other work changes least."""
    cpu, start = _cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--onnx-exporter", choices=("dynamo", "legacy"), default="dynamo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelport-bench-seed-") as tmp:
        out = Path(tmp)
        run = [sys.executable, "-m", "modelport", "run", "--quiet", "--force", "--out", str(out / "run")]
        commands = {
            "script": [sys.executable, str(SCRIPT), str(out / "script")],
            "script+freeze": [sys.executable, str(SCRIPT), str(out / "script"), "--freeze-at-exit"],
            "modelport run": [*run, "--onnx-exporter", args.onnx_exporter],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # alternating: load on the shared machine hits both alike
            for name, cmd in commands.items():
                wall, cpu = _seconds(cmd)
                walls[name].append(wall)
                cpus[name].append(cpu)
    print(f"seed pipeline, {args.runs} alternating runs, fresh processes")
    print(f"  modelport run uses --onnx-exporter {args.onnx_exporter}; the script, the dynamo exporter")
    for label, times in (("wall", walls), ("cpu (user+sys)", cpus)):
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"  {label} seconds: median / min / max")
        for name, values in times.items():
            print(f"    {name:<15} {medians[name]:7.3f} {min(values):7.3f} {max(values):7.3f}")
        for base in ("script", "script+freeze"):
            print(f"    ratio of medians (modelport run / {base}): {medians['modelport run'] / medians[base]:.2f}x")


if __name__ == "__main__":
    main()
