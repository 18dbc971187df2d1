"""The verifier's own tolerance policy: a folder does not get to choose how leniently it is judged.

A folder's manifest is not signed, so a recorded tolerance is a claim, not a rule: one looser
than the documented default is an integrity failure (the candidate is replayed at the default
instead) unless the verifier accepts it with ``--allow-loose``; ``--atol/--rtol/--tol`` set the
verifier's own tolerances, which win over the recorded ones. (Once manifests are signed, a
trusted signature may vouch for recorded tolerances.)
"""

from __future__ import annotations

from collections.abc import Sequence

from modelport import exporters
from modelport.errors import UsageError
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import IntegrityProblem, Report
from modelport.validators.records import Tolerance
from modelport.validators.tolerance import is_looser, parse_tol_list, resolve_tolerances

__all__ = ["verify_tolerances"]


def _strings(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise UsageError("--tol takes a string or a list of strings such as onnx=1e-5,1e-4")
    return list(value)


def verify_tolerances(
    manifest: Report,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    tol: str | Sequence[str] | None = None,
    allow_loose: bool = False,
) -> tuple[dict[str, Tolerance], list[IntegrityProblem]]:
    """The tolerance each recorded format is judged by here, and the recorded ones refused."""
    for value, flag in ((atol, "--atol"), (rtol, "--rtol")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0):
            raise UsageError(f"{flag} must be a finite number >= 0, got {value!r}")
    per_format = parse_tol_list(_strings(tol), exporters.names())
    known = [n for n in manifest.formats if n in exporters.names()]
    defaults = {n: exporters.default_tolerance(n, manifest.model.dtypes) for n in known}
    own = resolve_tolerances(
        defaults,
        atol=None if atol is None else float(atol),
        rtol=None if rtol is None else float(rtol),
        per_format=per_format,
    )
    chosen: dict[str, Tolerance] = {}
    problems: list[IntegrityProblem] = []
    for name in known:
        default = defaults[name]
        recorded = manifest.tolerances.get(name) or default
        if own[name] is not default:  # the verifier's own flags decide
            chosen[name] = own[name].model_copy(update={"source": f"verify {own[name].source}"})
        elif is_looser(recorded, default) and not allow_loose:
            problems.append(
                IntegrityProblem(
                    path=MANIFEST_NAME,
                    problem=f"{name}'s recorded tolerance {recorded.describe()} is looser than the default "
                    f"{default.describe()}: replayed at the default; accept the recorded one with --allow-loose, "
                    "or set your own with --tol",
                )
            )
            chosen[name] = default.model_copy(update={"source": "default (recorded tolerance refused)"})
        else:
            chosen[name] = recorded.model_copy(update={"source": "manifest"})
    return chosen, problems
