"""The records of a latency profile: light (pydantic only), stored in the manifest and read by every report.

One ``LatencyRow`` per candidate (FORMAT@RUNTIME) and batch size. Times are measured where the
inference runs: inside the runtime's own program for the runtimes outside Python (node, the
browser, libtorch, OpenCV), never across the pipe, so the figures compare like with like.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["LatencyRow", "Profile", "ProfileSkip"]


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


class ProfileSkip(_Record):
    candidate: str
    batch: int | None = None  # None: every batch size
    reason: str


class Profile(_Record):
    """What ``--profile`` measured: every candidate at every batch size, and the fastest per batch size."""

    batch_sizes: list[int]
    rows: list[LatencyRow]
    fastest: dict[str, str]  # str(batch) -> candidate with the lowest p50
    skipped: list[ProfileSkip] = []
    seconds: float = 0.0  # wall time the profile took
