"""The planner: which runtime runs which artifact, for ``run`` and ``verify`` alike.

Every artifact is paired with every selected runtime that accepts its kind (an ONNX file with
onnxruntime, node, browser, opencv, onnx_reference), except where a format is bound to one runtime
(``onnx_optimized`` holds one onnxruntime release's fusions). Candidates are named
``FORMAT@RUNTIME``. ``--runtimes`` selects: nothing given means the default set (torch,
torchscript, onnxruntime), ``all`` every registered runtime, a list exactly those; the names a
list spells out are *explicit*, which matters for runtimes that lack operators (``partial``):
an artifact such a runtime cannot run is skipped with the operator named, unless it was explicit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport import runtimes
from modelport.errors import UsageError
from modelport.runtimes.base import Artifact

if TYPE_CHECKING:
    from modelport.pipeline.records import Report

__all__ = ["Pairing", "Selection", "artifact_for", "pairings", "select"]


@dataclass(frozen=True)
class Selection:
    names: tuple[str, ...]  # in registry order
    explicit: frozenset[str] = frozenset()  # spelled out by the user in --runtimes

    def describe(self) -> str:
        return ", ".join(self.names)


@dataclass(frozen=True)
class Pairing:
    format: str
    runtime: str

    @property
    def candidate(self) -> str:
        return f"{self.format}@{self.runtime}"


def select(value: str | Sequence[str] | Selection | None) -> Selection:
    """``--runtimes`` as a selection (see the module docstring); a ``Selection`` is taken as it is."""
    if isinstance(value, Selection):
        unknown = [n for n in value.names if n not in runtimes.names()]
        if unknown:
            known = ", ".join(runtimes.names())
            raise UsageError(f"unknown runtime {', '.join(map(repr, unknown))}; choose from {known}")
        return value
    parsed = runtimes.parse_runtimes(value)
    if parsed is None:
        return Selection(runtimes.DEFAULT)
    items = [p.strip() for part in ([value] if isinstance(value, str) else value or []) for p in part.split(",")]
    explicit = frozenset(p for p in items if p and p != "all")
    order = runtimes.names()
    return Selection(tuple(sorted(parsed, key=order.index)), explicit)


def runs(fmt: str, runtime: str) -> bool:
    """Whether ``runtime`` can be paired with format ``fmt`` at all."""
    from modelport import exporters

    exporter = exporters.get(fmt)
    bound = exporter.only_runtimes
    return exporter.kind in runtimes.get(runtime).accepts and (bound is None or runtime in bound)


def pairings(formats: Iterable[str], selection: Selection) -> list[Pairing]:
    """Every (format, runtime) pair to check, format by format in the order given."""
    return [Pairing(f, r) for f in formats for r in selection.names if runs(f, r)]


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
