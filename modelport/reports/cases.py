"""The test cases of a report, as JUnit shows them: one per candidate x input set x output, plus one per
integrity problem, signature, recorded failure, drift check and failed stage outside any candidate.

Every failure carries one category (export, load, run, shape, dtype, accuracy, missing, integrity), so a CI
system can group and count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelport.pipeline.records import Report, VerifyReport
from modelport.validators.records import CandidateResult, OutputCheck

__all__ = ["REQUIRED", "Case", "check_numbers", "report_cases"]

REQUIRED = " is unproven (--require-proof)"  # the verify note that makes an unproven candidate a failure


@dataclass(frozen=True)
class Case:
    classname: str
    name: str
    outcome: Literal["pass", "failure", "skipped"] = "pass"
    type: str | None = None  # the failure's category
    message: str | None = None
    text: str | None = None  # the failure's (or skip's) body
    time: str = "0"


def check_numbers(check: OutputCheck) -> str:
    """A check's figures as ``name=value`` pairs, the ones that are set."""
    parts = [
        f"{name}={value:.6g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in (
            ("max_abs_err", check.max_abs_err),
            ("max_rel_err", check.max_rel_err),
            ("mismatches", check.mismatches),
            ("elements", check.elements),
            ("min_passing_atol", check.min_passing_atol),
            ("cosine", check.cosine),
            ("shape", check.shape),
            ("reference_shape", check.reference_shape),
            ("dtype", check.dtype),
        )
        if value is not None
    ]
    return ", ".join(parts)


def candidate_cases(cand: CandidateResult, *, proof_required: bool = False) -> list[Case]:
    tol = cand.tolerance.describe()
    cases: list[Case] = []
    if cand.verdict == "unproven":  # nothing failed, nothing proved it right: skipped, never passed
        reason = f"unproven: {cand.proof}" + (f" ({cand.reason})" if cand.reason else "")
        if proof_required:
            cases.append(Case(cand.candidate, "proof", "failure", "integrity", reason, f"--require-proof: {reason}"))
        else:
            cases.append(Case(cand.candidate, "proof", "skipped", message=reason))
        if not cand.checks:
            return cases
    if not cand.checks:
        if cand.status == "skipped":
            return [Case(cand.candidate, cand.status, "skipped", message=cand.reason or "skipped")]
        text = f"{cand.candidate} could not be checked: {cand.reason}"
        return [Case(cand.candidate, cand.status, "failure", cand.category or "export", cand.reason or "", text)]
    for check in cand.checks:
        name = f"{check.input_set}/{check.output}"
        if check.verdict == "fail" and not check.gates:
            message = f"flagged, not gating (a lossy format on a synthetic edge set): {check.message}"
            cases.append(
                Case(cand.candidate, name, "skipped", message=message, text=f"{message} [{tol}] {check_numbers(check)}")
            )
        elif check.verdict == "fail":
            text = f"{check.message} [{tol}] {check_numbers(check)}"
            loc = cand.localization
            if loc is not None and loc.input_set == check.input_set:
                text += f"\nwhere: {loc.summary}" + (f" [{loc.first}]" if loc.first else "")
            cases.append(Case(cand.candidate, name, "failure", check.category or "accuracy", check.message or "", text))
        else:
            cases.append(Case(cand.candidate, name))
    return cases


def _verify_cases(report: VerifyReport) -> list[Case]:
    """Integrity problems, a recorded failing verdict, and manifest.sig."""
    cases = [
        Case(p.category, p.path, "failure", p.category, p.problem, f"{p.path}: {p.problem}") for p in report.integrity
    ]
    recorded = next((n for n in report.notes if n.startswith("the run that wrote this folder failed")), None)
    if recorded is not None:
        cases.append(Case("manifest", "recorded verdict", "failure", "integrity", recorded, recorded))
    sig = report.signature
    if sig is not None:  # a failure when a signature is required and not valid, skipped when not required
        text = f"signature {sig.describe()}"
        if sig.status == "valid":
            cases.append(Case("signature", "manifest.sig"))
        elif report.signature_required:
            cases.append(Case("signature", "manifest.sig", "failure", "integrity", text, text))
        else:
            cases.append(Case("signature", "manifest.sig", "skipped", message=f"{text} (not required)"))
    return cases


def report_cases(report: Report | VerifyReport) -> list[Case]:
    """Every test case of the report, in the order JUnit lists them."""
    cases = _verify_cases(report) if isinstance(report, VerifyReport) else []
    required = {n.removesuffix(REQUIRED) for n in report.notes if n.endswith(REQUIRED)}
    for cand in report.candidates:
        cases += candidate_cases(cand, proof_required=cand.candidate in required)
    if isinstance(report, VerifyReport):
        for check in report.drift:
            name = f"{check.input_set}/{check.output}"
            if check.verdict == "fail":
                text = f"drift against {report.against}: {check.message} {check_numbers(check)}"
                cases.append(Case("drift", name, "failure", "accuracy", check.message or "", text))
            else:
                cases.append(Case("drift", name))
    else:
        # Stages that fail outside any candidate (tensor I/O, determinism) are failures of their own.
        for stage in report.stages:
            if stage.status == "failed" and stage.name in ("tensors", "determinism", "manifest"):
                reason = stage.reason or ""
                cases.append(Case("stage", stage.name, "failure", "run", reason, stage.reason, f"{stage.seconds:.3f}"))
    return cases
