"""The records of a latency profile: light (pydantic only), stored in the manifest and read by every report.

One ``LatencyRow`` per candidate (FORMAT@RUNTIME) and batch size. Times are measured where the
inference runs: inside the runtime's own program for the runtimes outside Python (node, the
browser, libtorch, OpenCV), never across the pipe, so the figures compare like with like.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["LatencyRow", "Profile", "ProfileSettings", "ProfileSkip"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyRow(_Record):
    candidate: str  # FORMAT@RUNTIME
    format: str
    runtime: str
    batch: int
    warmup: int  # iterations run and discarded before timing
    iterations: int  # timed iterations
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    items_per_second: float  # batch / median latency
    threads: int | None = None  # intra-op threads the runtime ran with, where it says
    timed_in: Literal["process", "program"] = "process"  # "program": timed inside a non-Python runtime
    # Each timed sample is the mean of this many calls: more than 1 only where the runtime's clock is coarse
    # (a browser page's performance.now() steps by 0.1 ms), so p95 is then over those means.
    calls_per_sample: int = 1


class ProfileSkip(_Record):
    candidate: str
    batch: int | None = None  # None: every batch size
    reason: str


class ProfileSettings(_Record):
    """How long each cell (candidate x batch size) was timed: adaptive, so fast and slow models both get stable medians.

    After ``warmup`` untimed calls, calls are timed until there are at least ``min_iterations`` of them and
    they add up to at least ``min_seconds``; ``max_iterations`` and ``max_seconds`` cap a cell (one call at least).
    """

    warmup: int = 3
    min_iterations: int = 10
    min_seconds: float = 0.25
    max_iterations: int = 10000
    max_seconds: float = 3.0


class Profile(_Record):
    """What ``--profile`` measured: every candidate at every batch size, and the fastest per batch size."""

    batch_sizes: list[int]
    rows: list[LatencyRow]
    fastest: dict[str, str]  # str(batch) -> candidate with the lowest p50
    skipped: list[ProfileSkip] = []
    seconds: float = 0.0  # wall time the profile took
    settings: ProfileSettings | None = None  # None in profiles written before it was recorded
