"""The timing loop: warm-up, then timed calls until the cell has enough of them (``ProfileSettings``).

The same rule runs in Python (this module, for the in-process runtimes) and inside the programs of the
other runtimes (``runtimes/js/exchange.js``, ``runtimes/cpp/exchange.hpp``), which read the settings
from the ``profile`` field of the input index and time each call with their own clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from modelport.profiling.records import ProfileSettings

__all__ = ["Timing", "keep_timing", "time_calls"]


@dataclass
class Timing:
    """One cell's timed calls (seconds each), where they were timed, and the threads the runtime said it used."""

    times: list[float]
    warmup: int
    timed_in: Literal["process", "program"] = "process"
    threads: int | None = None
    calls_per_sample: int = 1  # each time is the mean of this many calls (a coarse clock: a browser page's)
    facts: dict[str, str] = field(default_factory=dict)


def keep_timing(settings: ProfileSettings, count: int, total: float) -> bool:
    """Whether another timed call is due after ``count`` calls that took ``total`` seconds (at least one)."""
    if count == 0:
        return True
    if count >= settings.max_iterations or total >= settings.max_seconds:
        return False
    return count < settings.min_iterations or total < settings.min_seconds


def time_calls(call: Callable[[], object], settings: ProfileSettings) -> list[float]:
    """``call`` run ``settings.warmup`` times untimed, then timed by :func:`keep_timing`'s rule."""
    for _ in range(settings.warmup):
        call()
    times: list[float] = []
    total = 0.0
    while keep_timing(settings, len(times), total):
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        total += elapsed
    return times
