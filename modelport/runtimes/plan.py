"""The planner: which runtime runs which artifact of a folder, for ``run`` and ``verify`` alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.runtimes.base import Artifact

if TYPE_CHECKING:
    from modelport.pipeline.records import Report

__all__ = ["artifact_for"]


def artifact_for(folder: Path, report: Report, fmt: str, factory: Callable[[], Any] | None = None) -> Artifact:
    """The artifact of format ``fmt`` in ``folder``, as its manifest ``report`` records it."""
    from modelport import exporters

    record = report.formats[fmt]
    return Artifact(
        format=fmt,
        kind=exporters.get(fmt).kind,
        folder=folder,
        files=tuple(record.files),
        signature=report.signature,
        factory=factory,
        details=dict(record.details),
    )
