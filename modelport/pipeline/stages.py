"""Named stages: each is timed and ends ok, failed (with the reason) or skipped (with the reason)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from modelport.errors import UsageError, one_line, raise_if_interrupted, resource_error
from modelport.pipeline.records import StageRecord

__all__ = ["StageLog"]

T = TypeVar("T")


class StageLog:
    """Runs stages in order and keeps their records; ``on_record`` sees each as it ends."""

    def __init__(self, on_record: Callable[[StageRecord], None] | None = None) -> None:
        self.records: list[StageRecord] = []
        self._on_record = on_record

    def _add(self, record: StageRecord) -> None:
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)

    def skip(self, name: str, reason: str) -> None:
        self._add(StageRecord(name=name, status="skipped", seconds=0.0, reason=reason))

    def run(self, name: str, fn: Callable[[StageRecord], T]) -> T | None:
        """Run ``fn(record)``; it may add notes and details to the record.

        A UsageError is the user's to fix and aborts the run; any other exception fails
        only this stage, with its message as the reason.
        """
        record = StageRecord(name=name, status="ok", seconds=0.0)
        start = time.perf_counter()
        try:
            result: T | None = fn(record)
        except UsageError:
            raise
        except Exception as e:
            raise_if_interrupted(e)
            if resource_error(e) is not None:  # the disk, not the stage, failed: the whole run stops
                raise
            record.status = "failed"
            record.reason = one_line(e, 500)
            result = None
        record.seconds = round(time.perf_counter() - start, 4)
        self._add(record)
        return result

    def get(self, name: str) -> StageRecord | None:
        return next((r for r in self.records if r.name == name), None)
