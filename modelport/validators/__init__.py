"""Parity: pure comparisons, typed records, tolerances, and running one candidate.

The names below are imported on first use, so that importing one record (``validators.records``)
does not import numpy with the comparison code.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CandidateResult",
    "OutputCheck",
    "ReplaySet",
    "Tolerance",
    "check_candidate",
    "compare_array",
    "compare_outputs",
    "parse_tol_list",
    "resolve_tolerances",
]

_WHERE = {
    "CandidateResult": "records",
    "OutputCheck": "records",
    "Tolerance": "records",
    "ReplaySet": "candidate",
    "check_candidate": "candidate",
    "compare_array": "compare",
    "compare_outputs": "compare",
    "parse_tol_list": "tolerance",
    "resolve_tolerances": "tolerance",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'modelport.validators' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelport.validators.{_WHERE[name]}"), name)
