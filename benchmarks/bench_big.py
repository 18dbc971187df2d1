"""Models far over 2 GiB: wall time and peak memory of ``run`` and ``verify``, and save speed against ``dd``.

    .venv/bin/python benchmarks/bench_big.py [--size 3g|6g] [--formats all] [--out DIR]   (make bench-big)

``run`` and ``verify`` run as commands; the peak is the summed resident memory of the command's
whole process tree, sampled every 0.1 s (benchmarks/treemem.py), and is shown as a multiple of
the parameter bytes. The save figures write the same weights with modelport's state_dict and
safetensors exporters and with ``dd conv=fsync``, alternately, and print the medians and ratios.
The 3.2 GB model needs about 25 GB of disk with the default formats; the 6.4 GB one with
``--formats all`` about 45 GB: the run's own pre-flight check refuses when the disk cannot hold it.
Nothing is asserted: the machines are shared, read the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from treemem import run_sampled  # noqa: E402

SIZES = {"3g": "mlp_3g", "6g": "mlp_6g"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelport", *args]


def _pipeline(size: str, formats: str | None, out: Path) -> None:
    from modelport.pipeline.manifest import read_manifest

    spec = f"{ROOT / 'tests' / 'big_models.py'}:{SIZES[size]}"
    chosen = ["--formats", formats] if formats else []
    code, wall, peak = run_sampled(_command("run", "--model", spec, *chosen, "--out", str(out), "--quiet"))
    if code not in (0, 1):
        print(f"run exited {code}")
        return
    manifest = read_manifest(out)
    weights = manifest.model.parameters * 4
    print(
        f"model: {manifest.model.parameters:,} float32 parameters = {weights / 1e9:.2f} GB; verdict {manifest.verdict}"
    )
    print(f"run    wall {wall:7.1f} s   peak tree RSS {peak / 1e9:6.2f} GB = {peak / weights:.2f}x parameter bytes")
    for stage in manifest.stages:
        if stage.status != "skipped":
            print(f"  {stage.name:15s} {stage.status:7s} {stage.seconds:8.1f} s")
    code, wall, peak = run_sampled(_command("verify", str(out), "--quiet"))
    print(f"verify wall {wall:7.1f} s   peak tree RSS {peak / 1e9:6.2f} GB = {peak / weights:.2f}x  (exit {code})")


def _dd(path: Path, nbytes: int) -> None:
    block = 1 << 24
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={path}", f"bs={block}", f"count={-(-nbytes // block)}", "conv=fsync"],
        check=True,
        capture_output=True,
    )


def _save_speed(gigabytes: float, runs: int) -> None:
    import torch

    from modelport import exporters
    from modelport.exporters.base import ExportRequest

    width = 16384
    rows = int(gigabytes * 1e9 / 4 / width / 2)
    model = torch.nn.Sequential(torch.nn.Linear(width, rows, bias=False), torch.nn.Linear(rows, width, bias=False))
    nbytes = sum(p.numel() * 4 for p in model.parameters())
    times: dict[str, list[float]] = {"dd": [], "state_dict": [], "safetensors": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        folder = Path(tmp)
        for _ in range(runs):
            start = time.perf_counter()
            _dd(folder / "dd.bin", nbytes)
            times["dd"].append(time.perf_counter() - start)
            (folder / "dd.bin").unlink()
            for name in ("state_dict", "safetensors"):
                exporter = exporters.get(name)
                request = ExportRequest(model, {}, None, folder)  # type: ignore[arg-type]  # weights need no signature
                start = time.perf_counter()
                record = exporter.export(request)
                times[name].append(time.perf_counter() - start)
                for f in record.files:
                    (folder / f).unlink()
    dd = statistics.median(times["dd"])
    print(f"save {nbytes / 1e9:.2f} GB, medians of {runs} alternating runs (fsync included):")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:12s} {median:6.2f} s  {nbytes / median / 1e9:5.2f} GB/s  {dd / median:5.2f}x dd's speed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="3g")
    parser.add_argument("--formats", default=None, help="as run's --formats (default: run's default)")
    parser.add_argument("--out", type=Path, default=None, help="artifact folder (default: a temporary one)")
    parser.add_argument("--save-gb", type=float, default=1.0, help="weights for the save-speed figures")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    _save_speed(args.save_gb, args.runs)
    if args.skip_pipeline:
        return
    if args.out is not None:
        _pipeline(args.size, args.formats, args.out)
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        _pipeline(args.size, args.formats, Path(tmp) / "big")


if __name__ == "__main__":
    main()
