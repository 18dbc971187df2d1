"""From timed calls to figures: percentiles, items per second, the fastest candidate per batch size.

Light (no numpy): the CLI parser's checks and the records use it. Times arrive in seconds, as the
runtime measured them (in its own program for node, the browser, libtorch and OpenCV); figures are
stored in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelport.errors import UsageError
from modelport.profiling.records import LatencyRow

__all__ = ["DEFAULT_BATCH_SIZES", "MAX_BATCH", "fastest_by_batch", "latency_row", "parse_batch_sizes", "percentile"]

DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 8, 64)
MAX_BATCH = 65536  # a tiled batch this large is already gigabytes for most models


def parse_batch_sizes(value: str | Sequence[int] | None) -> tuple[int, ...]:
    """``--batch-sizes 1,8,64`` (or a list from Python) as sorted, distinct sizes; the default when None."""
    if value is None:
        return DEFAULT_BATCH_SIZES
    items: list[object] = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    sizes: list[int] = []
    for item in items:
        try:
            size = int(item) if isinstance(item, str) and item.isdigit() else item
        except ValueError:
            size = item
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
            raise UsageError(
                f"--batch-sizes takes whole numbers from 1 to {MAX_BATCH} separated by commas (e.g. 1,8,64), "
                f"got {item!r}"
            )
        sizes.append(size)
    if not sizes:
        raise UsageError("--batch-sizes is empty; give sizes separated by commas, e.g. 1,8,64")
    return tuple(sorted(set(sizes)))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, interpolated linearly between ranks (numpy's default)."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_row(
    candidate: str,
    batch: int,
    times: Sequence[float],
    *,
    warmup: int,
    threads: int | None,
    timed_in: str,
    calls_per_sample: int = 1,
) -> LatencyRow:
    """One candidate at one batch size from its timed calls (seconds each)."""
    ordered = sorted(times)
    p50 = percentile(ordered, 50)
    fmt, _, runtime = candidate.partition("@")
    return LatencyRow(
        candidate=candidate,
        format=fmt,
        runtime=runtime,
        batch=batch,
        warmup=warmup,
        iterations=len(ordered),
        p50_ms=p50 * 1e3,
        p95_ms=percentile(ordered, 95) * 1e3,
        mean_ms=sum(ordered) / len(ordered) * 1e3,
        min_ms=ordered[0] * 1e3,
        items_per_second=batch / max(p50, 1e-9),  # a clock that read 0 must not give infinity
        threads=threads,
        timed_in="program" if timed_in == "program" else "process",
        calls_per_sample=calls_per_sample,
    )


def fastest_by_batch(rows: Sequence[LatencyRow]) -> dict[str, str]:
    """str(batch) -> the candidate with the lowest median latency at that batch size."""
    best: dict[int, LatencyRow] = {}
    for row in rows:
        if row.batch not in best or row.p50_ms < best[row.batch].p50_ms:
            best[row.batch] = row
    return {str(batch): best[batch].candidate for batch in sorted(best)}
