"""Where a failing candidate first diverges: the reference's module values against the artifact's.

The reference runs once with hooks (``reference``); the artifact runs once with the same values
exposed (``onnx_side``: one onnxruntime pass, not one per layer; ``torch_side``: hooks or calls).
The modules are judged in the reference's execution order with the candidate's own tolerance and
the comparison every check uses. The first module out of tolerance is then run alone on the
reference's inputs: if it is still out, it is to blame; if not, it only inherited the error, and
its enclosing modules are tried the same way (their own code between submodules) before the
report says the error entered outside any module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from modelport.localize.records import Localization, LocalizeStatus, ModuleError, ValueCheck
from modelport.localize.reference import ModuleCall, Trace
from modelport.validators.compare import compare_outputs
from modelport.validators.records import Tolerance

__all__ = ["Probe", "judge_trace"]

AFTER = 3  # modules listed past the first failing one


class Probe(Protocol):
    via: str
    notes: list[str]

    def final_outputs(self) -> dict[str, np.ndarray]: ...
    def chained(self, call: ModuleCall) -> ValueCheck | str | None: ...
    def own(self, call: ModuleCall) -> ValueCheck | str: ...
    def outside(self, before: str) -> list[str]: ...
    def close(self) -> None: ...


def _reproduced(reference: Mapping[str, np.ndarray], final: Mapping[str, np.ndarray], tol: Tolerance) -> bool:
    checks = compare_outputs(reference, final, tol, input_set="localize")
    return any(c.verdict == "fail" for c in checks)


def _fails(check: ValueCheck | str | None) -> bool:
    return isinstance(check, ValueCheck) and check.verdict == "fail"


def _entry(call: ModuleCall, chained: ValueCheck | str | None) -> ModuleError:
    entry = ModuleError(module=call.path, class_name=call.class_name, order=call.order)
    if isinstance(chained, ValueCheck):
        entry.chained = chained
    elif isinstance(chained, str):
        entry.unmapped = chained
    return entry


def _with_own(entry: ModuleError, own: ValueCheck | str) -> ModuleError:
    if isinstance(own, ValueCheck):
        entry.own = own
    elif entry.unmapped is None and entry.chained is None:
        entry.unmapped = own
    return entry


def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _blame(
    trace: Trace, probe: Probe, entries: dict[str, ModuleError], first: str
) -> tuple[str | None, list[str], list[str]]:
    """The module whose own error leaves the tolerance: ``first``, else its nearest enclosing module; the
    notes, and the enclosing modules that could not be run alone (the error may sit in their own code)."""
    calls = trace.by_path()
    notes: list[str] = []
    unmeasured: list[str] = []
    for path in [first, *_ancestors(first)]:
        if path not in calls:
            continue
        own = probe.own(calls[path])
        entry = entries.setdefault(path, _entry(calls[path], None))
        _with_own(entry, own)
        if isinstance(own, str):
            notes.append(f"{path}: own error not measured: {own}")
            if path != first:
                unmeasured.append(path)
            continue
        if own.verdict == "fail":
            return path, notes, unmeasured
    return None, notes, unmeasured


def judge_trace(
    candidate: str,
    input_set: str,
    trace: Trace,
    probe: Probe,
    reference: Mapping[str, np.ndarray],
    tol: Tolerance,
    *,
    failed: bool = True,
) -> Localization:
    """Judge every module of ``trace`` in ``probe``'s artifact; the record that names the first divergence.

    ``failed``: the candidate failed on this set when it was checked (False: ``modelport localize`` on a
    candidate that passed, which reports "no-divergence" when every module agrees)."""
    start = time.perf_counter()
    reproduced = _reproduced(reference, probe.final_outputs(), tol)
    entries: dict[str, ModuleError] = {}
    first: str | None = None
    chained_any = False
    for call in trace.calls:
        chained = probe.chained(call)
        chained_any = chained_any or isinstance(chained, ValueCheck)
        entries[call.path] = _entry(call, chained)
        if first is None and _fails(chained):
            first = call.path
    blamed: str | None = None
    unmeasured: list[str] = []
    notes = [*trace.notes, *probe.notes]
    if not chained_any and (reproduced or not failed):  # own errors only (TorchScript): the first that fails alone
        for call in trace.calls:
            own = probe.own(call)
            _with_own(entries[call.path], own)
            if isinstance(own, ValueCheck) and own.verdict == "fail":
                first = blamed = call.path
                break
    elif first is not None and reproduced:
        blamed, more, unmeasured = _blame(trace, probe, entries, first)
        notes += more
    ordered = sorted(entries.values(), key=lambda e: e.order)
    cut = next((i for i, e in enumerate(ordered) if e.module == first), len(ordered) - 1 - AFTER)
    shown = [e for i, e in enumerate(ordered) if i <= cut + AFTER or e.module == blamed]
    unmapped = [f"{e.module}: {e.unmapped}" for e in ordered if e.unmapped]
    own_known = first is not None and first in entries and entries[first].own is not None
    status, summary = _verdict(
        trace, probe, reproduced, first, blamed, chained_any or first is not None, unmapped, own_known=own_known,
        unmeasured=unmeasured,
    )  # fmt: skip
    if not failed and not reproduced:
        compared = sum(1 for e in ordered if e.chained or e.own)
        status, summary = "no-divergence", f"no divergence: {compared} modules and the final outputs within tolerance"
        if first is not None:
            summary = "no divergence: the final outputs are within tolerance"
            notes.append(f"{first} leaves the tolerance on the way, an error later layers absorb")
    return Localization(
        candidate=candidate,
        input_set=input_set,
        status=status,
        via=probe.via,
        first=first if reproduced else None,
        blamed=blamed,
        summary=summary,
        tolerance=tol.describe(),
        modules=shown,
        unmapped=unmapped,
        notes=notes,
        seconds=round(time.perf_counter() - start, 6),
    )


def _verdict(
    trace: Trace,
    probe: Probe,
    reproduced: bool,
    first: str | None,
    blamed: str | None,
    mapped: bool,
    unmapped: list[str],
    *,
    own_known: bool = True,
    unmeasured: list[str] | None = None,
) -> tuple[LocalizeStatus, str]:
    if not reproduced:
        return "not-reproduced", (
            f"run for localisation ({probe.via}), the artifact is within tolerance on this set, so no module is "
            "blamed: the failure depends on how the runtime ran the whole graph (its fusions, another runtime)"
        )
    if not mapped:
        return "unmapped", f"no module of the model could be matched in the artifact ({len(unmapped)} tried)"
    calls = trace.by_path()
    if first is None:
        return "outside-modules", (
            "every module's output is within tolerance but the final outputs are not: the divergence is in the "
            "model's own operations after its modules"
        )
    where = f"{first} ({calls[first].class_name})"
    if blamed == first:
        return "localized", f"first diverging module: {where}; fed the reference's inputs it still diverges"
    if blamed is not None:
        return "localized", (
            f"first diverging module: {where}, which only inherits the error; {blamed} "
            f"({calls[blamed].class_name}) diverges in its own operations around its submodules"
        )
    before = probe.outside(first)
    entering = f" (operations of no module feeding it: {', '.join(before)})" if before else ""
    if not own_known:
        return "first-only", (
            f"first diverging module: {where}; it could not be run alone on the reference's inputs (see the "
            f"notes), so whether it makes the error or inherits it is not known{entering}"
        )
    order = calls[first].order
    blind = [u.split(":", 1)[0] for u in unmapped if (c := calls.get(u.split(":", 1)[0])) and c.order < order]
    unseen = f", in a module that could not be compared ({', '.join(blind[-3:])})" if blind else ""
    if unmeasured:
        return "first-only", (
            f"first diverging module: {where}, but fed the reference's inputs it is within tolerance: the error "
            f"enters before it, in the own code of an enclosing module that could not be run alone "
            f"({unmeasured[0]}){entering}{unseen}, or is an earlier small error it amplifies"
        )
    return "first-only", (
        f"first diverging module: {where}, but fed the reference's inputs it is within tolerance: the error "
        f"enters before it, outside every named module{entering}{unseen}, or is an earlier small error it amplifies"
    )
