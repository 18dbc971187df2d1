"""Stages: named steps over one run context, each timed and ending ok, failed (with the reason) or skipped.

A stage is an object with a ``name`` and a ``run(ctx, record)`` that reads what earlier stages put
in the context and adds its own results; it may say why it should be skipped (``skip_reason``).
The runner emits an event when a stage starts, when it reports progress, and when it ends, so a
front end can show a long export while it runs, not only after.

A ``UsageError`` is the user's to fix and aborts the run; a resource error (disk full, size
limit) stops it; any other exception fails only that stage, with its one-line message.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Literal, TypeVar

from modelport.errors import UsageError, check_interrupted, one_line, raise_if_interrupted, resource_error
from modelport.pipeline.records import StageRecord

__all__ = ["Stage", "StageEvent", "StageRunner", "Steps"]

C = TypeVar("C")


@dataclass(frozen=True)
class StageEvent:
    stage: str
    kind: Literal["start", "progress", "end"]
    message: str | None = None  # progress: what is happening now
    record: StageRecord | None = None  # end: the stage's record


class Stage(ABC, Generic[C]):
    """One step of a run over the context ``C``."""

    name: str

    def skip_reason(self, ctx: C) -> str | None:
        """Why this stage does not run this time (recorded as skipped), or None."""
        return None

    @abstractmethod
    def run(self, ctx: C, record: StageRecord) -> None:
        """Do the work; add results to ``ctx`` and notes and details to ``record``; raise to fail."""


class StageRunner(Generic[C]):
    """Runs stages in order over one context and keeps their records; ``on_event`` sees every event."""

    def __init__(self, on_event: Callable[[StageEvent], None] | None = None) -> None:
        self.records: list[StageRecord] = []
        self._on_event = on_event
        self._current: str | None = None

    def _emit(self, event: StageEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def progress(self, message: str) -> None:
        """Called by the running stage: what it is doing now (e.g. the file it writes)."""
        if self._current is not None:
            self._emit(StageEvent(self._current, "progress", message=message))

    def skip(self, name: str, reason: str) -> None:
        record = StageRecord(name=name, status="skipped", seconds=0.0, reason=reason)
        self.records.append(record)
        self._emit(StageEvent(name, "end", record=record))

    def run(self, stage: Stage[C], ctx: C) -> StageRecord:
        check_interrupted()  # a Ctrl-C that something swallowed still stops the run here
        reason = stage.skip_reason(ctx)
        if reason is not None:
            self.skip(stage.name, reason)
            return self.records[-1]
        record = StageRecord(name=stage.name, status="ok", seconds=0.0)
        self._current = stage.name
        self._emit(StageEvent(stage.name, "start"))
        start = time.perf_counter()
        try:
            stage.run(ctx, record)
        except UsageError:
            raise
        except Exception as e:
            raise_if_interrupted(e)
            if resource_error(e) is not None:  # the disk, not the stage, failed: the whole run stops
                raise
            record.status = "failed"
            record.reason = one_line(e, 500)
        finally:
            self._current = None
        record.seconds = round(time.perf_counter() - start, 4)
        self.records.append(record)
        self._emit(StageEvent(stage.name, "end", record=record))
        return record

    def get(self, name: str) -> StageRecord | None:
        return next((r for r in self.records if r.name == name), None)


class Steps:
    """Stage events for a command whose steps are plain code, not ``Stage`` objects (``verify``): the same
    start, progress and end events, so the same display and logs follow it. One step runs at a time."""

    def __init__(self, on_event: Callable[[StageEvent], None] | None = None) -> None:
        self._on_event = on_event
        self._current: tuple[str, float] | None = None

    def __enter__(self) -> Steps:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """The last step ends with the command: ok, or failed with the error's one line (an interrupt ends none)."""
        if error is None:
            self.end()
        elif isinstance(error, Exception):
            self.end("failed", one_line(error, 500))

    def begin(self, name: str) -> None:
        """Start step ``name``, ending the one before (ok)."""
        self.end()
        if self._on_event is not None:
            self._current = (name, time.perf_counter())
            self._on_event(StageEvent(name, "start"))

    def progress(self, message: str) -> None:
        if self._on_event is not None and self._current is not None:
            self._on_event(StageEvent(self._current[0], "progress", message=message))

    def end(self, status: Literal["ok", "failed"] = "ok", reason: str | None = None) -> None:
        """End the running step, if any, with its seconds."""
        if self._on_event is None or self._current is None:
            return
        (name, start), self._current = self._current, None
        seconds = round(time.perf_counter() - start, 4)
        self._on_event(
            StageEvent(name, "end", record=StageRecord(name=name, status=status, seconds=seconds, reason=reason))
        )
