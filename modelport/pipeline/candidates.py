"""One planned candidate (``FORMAT@RUNTIME``) checked on every input set, for ``run`` and ``verify`` alike.

Around the pure comparison (``validators.candidate``) this adds what depends on the runtime: a
runtime that is not available fails the candidate naming the command that enables it (never a
silent skip); an artifact a ``partial`` runtime cannot run (an operator it lacks) is skipped with
that reason unless the user named the runtime in --runtimes; the runtime's version is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport import runtimes
from modelport.memory import let_go
from modelport.runtimes.base import Artifact, Unsupported
from modelport.runtimes.plan import Pairing, Selection
from modelport.validators.candidate import ReplaySet, check_candidate, not_run
from modelport.validators.records import CandidateResult, Tolerance

if TYPE_CHECKING:
    import numpy as np

    from modelport.exporters.base import FormatRecord
    from modelport.signature import Signature

__all__ = ["check_pairing"]


class _Watched:
    """A session whose ``Unsupported`` errors are kept, so that the caller can tell them from failures."""

    def __init__(self, session: Any, seen: list[Unsupported], say: Callable[[str], None]) -> None:
        self._session, self._seen, self._say = session, seen, say
        self.name = session.name

    @property
    def load_seconds(self) -> float | None:
        """The runtime's own figure; a program in another process reports it only after it ran."""
        seconds: float | None = getattr(self._session, "load_seconds", None)
        return seconds

    @property
    def facts(self) -> Mapping[str, str]:
        return getattr(self._session, "facts", {}) or {}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outputs: dict[str, np.ndarray] = self._session.infer(inputs)
            return outputs
        except Unsupported as e:
            self._seen.append(e)
            raise

    def infer_all(self, sets: Sequence[Mapping[str, np.ndarray]]) -> Any:
        self._say(f"{len(sets)} input sets")
        try:
            results = self._session.infer_all(sets)
        except Unsupported as e:
            self._seen.append(e)
            raise
        # Some sets it could not run (an operator it lacks there); the others' outputs are still compared.
        found = getattr(self._session, "unsupported", None)
        if isinstance(found, Unsupported):
            self._seen.append(found)
        return results

    def close(self) -> None:
        self._session.close()


def check_pairing(
    pairing: Pairing,
    record: FormatRecord,
    folder: Path,
    signature: Signature,
    factory: Callable[[], Any] | None,
    replays: Sequence[ReplaySet],
    tol: Tolerance,
    *,
    selection: Selection,
    gate_edges: bool,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> CandidateResult:
    """One candidate on every replay set; ``progress`` hears what it does now (loading its file, running sets)."""
    from modelport import exporters

    fmt, name, candidate = pairing.format, pairing.runtime, pairing.candidate
    runtime = runtimes.get(name)
    state = runtime.available()
    if not state.ok:
        return not_run(candidate, fmt, name, tol, "load", f"runtime {name} is {state.describe()}")
    exporter = exporters.get(fmt)
    artifact = Artifact(fmt, exporter.kind, folder, tuple(record.files), signature, factory, dict(record.details))
    seen: list[Unsupported] = []
    why = runtime.unsupported(artifact)
    if why is not None:
        # A limit the runtime states up front (an operator, a dtype, a size): a skip when it came in through
        # the default set or `all`, a failure when the user named it.
        result = not_run(candidate, fmt, name, tol, "load", f"{name} cannot run {record.files[0]}: {why}")
        if name not in selection.explicit:
            return _skipped(candidate, fmt, name, tol, why, state.version)
        return result.model_copy(update={"runtime_version": state.version})

    def say(what: str) -> None:  # a big model's load and replay are long: say which part runs
        if progress is not None:
            progress(f"checking {candidate}: {what}")

    def load() -> _Watched:
        say(f"loading {record.files[0]}")
        try:
            session = exporter.load(folder, record, signature, factory, runtime=name, timeout=timeout)
            return _Watched(session, seen, say)
        except Unsupported as e:
            seen.append(e)
            raise

    dtypes = {t.name: t.dtype for t in signature.outputs}
    result = check_candidate(candidate, fmt, name, load, replays, tol, dtypes, gate_edges=gate_edges)
    # A closed session's model may sit in reference cycles (torch.fx graph modules do) until the collector
    # runs: a big one is collected now, so that its weights are not held twice while the next candidate loads.
    let_go(sum(p.stat().st_size for p in (folder / f for f in record.files) if p.is_file()))
    # Found while running: a skip only for a runtime that may lack operators, not named by the user, and only
    # when every number it did compute was right (a wrong output is never hidden behind a skip).
    computed_right = all(c.verdict == "pass" or c.category == "run" for c in result.checks)
    if seen and runtime.partial and name not in selection.explicit and computed_right:
        return _skipped(candidate, fmt, name, tol, str(seen[0]), state.version)
    return result.model_copy(update={"runtime_version": state.version})


def _skipped(candidate: str, fmt: str, name: str, tol: Tolerance, why: str, version: str | None) -> CandidateResult:
    reason = f"{name} cannot run it: {why} (skipped; name {name} in --runtimes to make this a failure)"
    return not_run(candidate, fmt, name, tol, "load", reason, skipped=True).model_copy(
        update={"runtime_version": version}
    )
