"""``run --log-json PATH``: one JSON object per line for every stage event, written as the run goes.

    {"time": 1764560000.123, "stage": "onnx", "kind": "start"}
    {"time": ..., "stage": "onnx", "kind": "progress", "message": "loading model.onnx back"}
    {"time": ..., "stage": "onnx", "kind": "end", "record": {"name": "onnx", "status": "ok", "seconds": 3.5, ...}}

Lines are flushed as they are written, so a CI job or a dashboard can follow a long export live.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelport.pipeline.stages import StageEvent

__all__ = ["event_log"]


@contextmanager
def event_log(path: Path | None) -> Iterator[Callable[[StageEvent], None] | None]:
    """A writer of stage events to ``path`` (None: no log, and None is yielded)."""
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8", buffering=1) as fh:

        def write(event: StageEvent) -> None:
            line: dict[str, Any] = {"time": round(time.time(), 3), "stage": event.stage, "kind": event.kind}
            if event.message is not None:
                line["message"] = event.message
            if event.record is not None:
                line["record"] = event.record.model_dump(mode="json")
            fh.write(json.dumps(line) + "\n")

        yield write
