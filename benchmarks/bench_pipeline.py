"""Pipeline figures: stage timings, artifact sizes, verify time, and per-runtime latency.

Prints medians over repeated runs measured side by side in one process; the machines
are shared and noisy, so read ratios rather than absolute numbers. Nothing is asserted.

    .venv/bin/python benchmarks/bench_pipeline.py [--runs 5] [--latency-calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import modelport
from modelport import exporters
from modelport.models import BUILTIN
from modelport.pipeline.build import build_model
from modelport.pipeline.manifest import read_manifest


def _median_us(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(min(200, calls)):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-calls", type=int, default=2000)
    args = parser.parse_args()

    stage_times: dict[str, list[float]] = defaultdict(list)
    run_times, verify_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mlp"
        for _ in range(args.runs):
            start = time.perf_counter()
            report = modelport.run(out=folder, force=True)
            run_times.append(time.perf_counter() - start)
            for stage in report.stages:
                stage_times[stage.name].append(stage.seconds)
            start = time.perf_counter()
            assert modelport.verify(folder).verdict == "pass"
            verify_times.append(time.perf_counter() - start)

        print(f"modelport run on the MLP, {args.runs} runs in one process (median / min / max seconds)")
        print("  (the first run pays torch.jit and the dynamo exporter's one-time warm-up)")
        for name, values in stage_times.items():
            print(f"  {name:<12} {statistics.median(values):8.4f} {min(values):8.4f} {max(values):8.4f}")
        print(f"  {'whole run':<12} {statistics.median(run_times):8.4f} {min(run_times):8.4f} {max(run_times):8.4f}")
        print(
            f"  {'verify':<12} {statistics.median(verify_times):8.4f} {min(verify_times):8.4f} {max(verify_times):8.4f}"
        )

        manifest = read_manifest(folder)
        print("\nartifact sizes (bytes)")
        for entry in manifest.artifacts:
            print(f"  {entry.path:<36} {entry.bytes:>8}")
        print("\nmax abs error per candidate over every input set, and the tolerance it is judged by")
        for cand in manifest.candidates:
            worst = max((c.max_abs_err or 0.0) for c in cand.checks)
            print(f"  {cand.candidate:<26} {worst:10.3g}   {cand.tolerance.describe()}")

        built = build_model(BUILTIN["mlp"], seed=0)
        print(f"\nlatency per call, median of {args.latency_calls} (microseconds), loaded from the folder")
        runners = {"original@torch": built.runner()}
        for name, record in manifest.formats.items():
            runners[exporters.get(name).candidate] = exporters.get(name).load(
                folder, record, manifest.signature, built.source.factory
            )
        rng = np.random.default_rng(0)
        batches = {b: {"x": rng.standard_normal((b, 20), dtype=np.float32)} for b in (1, 64)}
        base: dict[int, float] = {}
        print(f"  {'runner':<26} {'batch 1':>10} {'batch 64':>10}   ratio to original (b1, b64)")
        for name, runner in runners.items():
            times = {b: _median_us(lambda r=runner, x=x: r.infer(x), args.latency_calls) for b, x in batches.items()}
            base = base or times
            ratios = f"{times[1] / base[1]:.2f}x {times[64] / base[64]:.2f}x"
            print(f"  {name:<26} {times[1]:10.1f} {times[64]:10.1f}   {ratios}")


if __name__ == "__main__":
    main()
