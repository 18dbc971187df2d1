"""Runtime figures: what `--runtimes all` adds to a run, and each runtime's start, load and inference times.

Default and `--runtimes all` runs of the built-in MLP alternate in one process (warm: builds and npm
packages already in the cache, as after `make runtimes`); the machines are shared and noisy, so read
medians and the ratio. Per runtime: the wall time of its candidate in the validate stage (start a
process or browser, load, run every set), its own load time, first and steady inference. Nothing is
asserted. Needs `make runtimes` for the runtimes outside Python (a missing one is reported, not run).

    .venv/bin/python benchmarks/bench_runtimes.py [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import modelport
from modelport import runtimes
from modelport.pipeline.stages import StageEvent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    missing = [n for n in runtimes.names() if not runtimes.get(n).available().ok]
    selected = ",".join(n for n in runtimes.names() if n not in missing)
    if missing:
        print(f"not available here (run make runtimes): {', '.join(missing)}")

    walls: dict[str, list[float]] = defaultdict(list)
    per_candidate: dict[str, list[float]] = defaultdict(list)
    loads: dict[str, list[float]] = defaultdict(list)
    first: dict[str, list[float]] = defaultdict(list)
    steady: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for label, chosen in (("default", None), ("all", selected)):
                marks: list[tuple[float, str]] = []

                def mark(event: StageEvent, marks: list[tuple[float, str]] = marks) -> None:
                    if event.stage == "validate" and event.kind in ("progress", "end"):
                        marks.append((time.perf_counter(), event.message or "end"))

                start = time.perf_counter()
                report = modelport.run(out=Path(tmp) / label, force=True, runtimes=chosen, on_event=mark)
                walls[label].append(time.perf_counter() - start)
                assert report.verdict == "pass", [c.reason for c in report.candidates if c.verdict != "pass"]
                if label != "all":
                    continue
                # Each "checking X" event starts X's candidate; the next event ends it.
                for (t0, what), (t1, _) in itertools.pairwise(marks):
                    if what.startswith("checking "):
                        per_candidate[what.removeprefix("checking ")].append(t1 - t0)
                for cand in report.candidates:
                    times = list(cand.infer_seconds.values())
                    if cand.load_seconds is not None:
                        loads[cand.candidate].append(cand.load_seconds)
                    if times:
                        first[cand.candidate].append(times[0])
                        steady[cand.candidate].append(statistics.median(times[1:] or times))

    default, every = statistics.median(walls["default"]), statistics.median(walls["all"])
    print(f"modelport run on the MLP, {args.runs} alternating runs each (median seconds)")
    print(f"  default runtimes ({','.join(runtimes.DEFAULT)}): {default:.2f} s")
    print(f"  --runtimes {selected}: {every:.2f} s")
    print(f"  added by the other runtimes: {every - default:+.2f} s (ratio {every / default:.2f}x)")
    print()
    print(f"{'candidate':<28} {'candidate wall s':>16} {'load s':>9} {'first ms':>9} {'steady ms':>10}")
    for name, values in per_candidate.items():
        load = statistics.median(loads[name]) if loads[name] else float("nan")
        head = statistics.median(first[name]) * 1e3 if first[name] else float("nan")
        rest = statistics.median(steady[name]) * 1e3 if steady[name] else float("nan")
        print(f"{name:<28} {statistics.median(values):>16.3f} {load:>9.3f} {head:>9.3f} {rest:>10.3f}")


if __name__ == "__main__":
    main()
