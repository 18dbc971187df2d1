"""Parity: pure comparisons, typed records, tolerances, and running one candidate."""

from modelport.validators.candidate import ReplaySet, check_candidate
from modelport.validators.compare import compare_array, compare_outputs
from modelport.validators.records import CandidateResult, OutputCheck, Tolerance
from modelport.validators.tolerance import parse_tol_list, resolve_tolerances

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
