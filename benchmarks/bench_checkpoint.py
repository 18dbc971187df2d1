"""Checkpoint speed: a ~1 GB model's checkpoint next to `dd conv=fsync` of as many bytes, and the overhead
of checkpointing every K steps on a whole training run. Figures only, never asserted.

    python benchmarks/bench_checkpoint.py [--rounds 3] [--dir PATH] [--steps 2000]

Runs alternate (dd, checkpoint, dd, checkpoint, ...) so that a slow moment of a shared disk hits both;
each figure is the median of its rounds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from modelport.training import Checkpointer
from modelport.training.loop import train
from modelport.training.state import content_crc32


def _big_model() -> torch.nn.Module:
    """4 x Linear(8192, 8192): 268 M float32 parameters, 1.07 GB."""
    with torch.no_grad():
        return torch.nn.Sequential(*(torch.nn.Linear(8192, 8192) for _ in range(4)))


def _dd(path: Path, size: int) -> float:
    start = time.perf_counter()
    mib = -(-size // (1 << 20))
    cmd = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=fsync", "status=none"]
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def bench_big(folder: Path, rounds: int) -> None:
    model = _big_model()
    # Plain SGD keeps no state: the checkpoint is the model's bytes plus a few kB, the size dd writes too.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    nbytes = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    dd_times, ckpt_times = [], []
    size = 0
    for step in range(1, rounds + 1):
        ckpt_dir = folder / "ckpt"
        ckpt = Checkpointer(ckpt_dir, model, optimizer, every=1, keep=1)
        start = time.perf_counter()
        path = ckpt.save(step)
        ckpt_times.append(time.perf_counter() - start)
        size = path.stat().st_size
        shutil.rmtree(ckpt_dir)
        dd_path = folder / "dd.bin"
        dd_times.append(_dd(dd_path, size))
        dd_path.unlink()
    start = time.perf_counter()
    content_crc32(model.state_dict())
    crc = time.perf_counter() - start
    ckpt_s, dd_s = statistics.median(ckpt_times), statistics.median(dd_times)
    print(f"model: {nbytes / 1e9:.2f} GB of parameters; checkpoint file {size / 1e9:.3f} GB")
    print(f"checkpoint (CRC-32, torch.save, fsync, rename, folder fsync): median {ckpt_s:.2f} s {_runs(ckpt_times)}")
    print(f"dd if=/dev/zero bs=1M conv=fsync, the same bytes:            median {dd_s:.2f} s {_runs(dd_times)}")
    print(f"ratio checkpoint / dd: {ckpt_s / dd_s:.2f}  (CRC-32 alone: {crc:.2f} s, {nbytes / crc / 1e9:.1f} GB/s)")


def bench_overhead(folder: Path, steps: int, rounds: int) -> None:
    """The built-in task, the same steps, checkpoints every K: the extra time over one checkpoint at the end."""
    every = [steps, 100, 10]
    times: dict[int, list[float]] = {k: [] for k in every}
    for _ in range(rounds):
        for k in every:
            out = folder / f"train-{k}"
            start = time.perf_counter()
            train(out=out, steps=steps, checkpoint_every=k, keep=3, progress=lambda _: None)
            times[k].append(time.perf_counter() - start)
            shutil.rmtree(out)
    base = statistics.median(times[steps])
    print(f"\nbuilt-in MLP task, {steps} steps, 1 thread (median of {rounds}, alternating):")
    for k in every:
        med = statistics.median(times[k])
        label = "only at the end" if k == steps else f"every {k} steps"
        extra = steps // k - 1  # checkpoints besides the one at the end
        per = f"  {1000 * (med - base) / extra:5.1f} ms per checkpoint" if extra else ""
        overhead = 100 * (med - base) / base
        print(f"  checkpoint {label:<16} {med:6.2f} s  overhead {overhead:+5.1f} %{per}  {_runs(times[k])}")


def _runs(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary folder; needs ~2.2 GB)")
    parser.add_argument("--skip-big", action="store_true", help="only the training overhead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if not args.skip_big:
            bench_big(Path(tmp), args.rounds)
        bench_overhead(Path(tmp), args.steps, args.rounds)


if __name__ == "__main__":
    main()
