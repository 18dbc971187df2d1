"""CI outputs for ``run`` and ``verify``: the full JSON report, JUnit XML and a markdown summary.

Every failure carries one category (export, load, run, shape, dtype, accuracy, missing,
integrity) in all three, so a CI system can group and count them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from modelport.errors import UsageError
from modelport.fsutil import atomic_write
from modelport.pipeline.records import Report, VerifyReport
from modelport.pipeline.report import lost_coverage_lines
from modelport.validators.records import CandidateResult, OutputCheck

__all__ = ["junit_xml", "summary_markdown", "write_ci_outputs"]

AnyReport = Report | VerifyReport


def _numbers(check: OutputCheck) -> str:
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


REQUIRED = " is unproven (--require-proof)"  # the verify note that makes an unproven candidate a failure


def _candidate_cases(cand: CandidateResult, suite: ET.Element, *, proof_required: bool = False) -> None:
    tol = cand.tolerance.describe()
    if cand.verdict == "unproven":  # nothing failed, nothing proved it right: skipped, never passed
        case = ET.SubElement(suite, "testcase", classname=cand.candidate, name="proof", time="0")
        reason = f"unproven: {cand.proof}" + (f" ({cand.reason})" if cand.reason else "")
        if proof_required:
            ET.SubElement(case, "failure", type="integrity", message=reason).text = f"--require-proof: {reason}"
        else:
            ET.SubElement(case, "skipped", message=reason)
        if not cand.checks:
            return
    if not cand.checks:
        case = ET.SubElement(suite, "testcase", classname=cand.candidate, name=cand.status, time="0")
        if cand.status == "skipped":
            ET.SubElement(case, "skipped", message=cand.reason or "skipped")
        else:
            failure = ET.SubElement(case, "failure", type=cand.category or "export", message=cand.reason or "")
            failure.text = f"{cand.candidate} could not be checked: {cand.reason}"
        return
    for check in cand.checks:
        case = ET.SubElement(
            suite, "testcase", classname=cand.candidate, name=f"{check.input_set}/{check.output}", time="0"
        )
        if check.verdict == "fail" and not check.gates:
            message = f"flagged, not gating (a lossy format on a synthetic edge set): {check.message}"
            ET.SubElement(case, "skipped", message=message).text = f"{message} [{tol}] {_numbers(check)}"
        elif check.verdict == "fail":
            failure = ET.SubElement(case, "failure", type=check.category or "accuracy", message=check.message or "")
            failure.text = f"{check.message} [{tol}] {_numbers(check)}"


def _signature_case(report: VerifyReport, suite: ET.Element) -> None:
    """manifest.sig: a failure when a signature is required and not valid, skipped when not valid and not required."""
    sig = report.signature
    if sig is None:
        return
    case = ET.SubElement(suite, "testcase", classname="signature", name="manifest.sig", time="0")
    if sig.status != "valid":
        text = f"signature {sig.describe()}"
        if report.signature_required:
            ET.SubElement(case, "failure", type="integrity", message=text).text = text
        else:
            ET.SubElement(case, "skipped", message=f"{text} (not required)")


def junit_xml(report: AnyReport) -> bytes:
    """One test case per candidate x input set x output (plus one per integrity problem)."""
    name = f"modelport.{report.kind} {report.model.name if report.model else '?'}"
    root = ET.Element("testsuites", name="modelport")
    suite = ET.SubElement(root, "testsuite", name=name)
    if isinstance(report, VerifyReport):
        for problem in report.integrity:
            case = ET.SubElement(suite, "testcase", classname=problem.category, name=problem.path, time="0")
            failure = ET.SubElement(case, "failure", type=problem.category, message=problem.problem)
            failure.text = f"{problem.path}: {problem.problem}"
        recorded_failure = next(
            (n for n in report.notes if n.startswith("the run that wrote this folder failed")), None
        )
        if recorded_failure is not None:
            case = ET.SubElement(suite, "testcase", classname="manifest", name="recorded verdict", time="0")
            ET.SubElement(case, "failure", type="integrity", message=recorded_failure).text = recorded_failure
        _signature_case(report, suite)
    required = {n.removesuffix(REQUIRED) for n in report.notes if n.endswith(REQUIRED)}
    for cand in report.candidates:
        _candidate_cases(cand, suite, proof_required=cand.candidate in required)
    if isinstance(report, VerifyReport):
        for check in report.drift:
            case = ET.SubElement(
                suite, "testcase", classname="drift", name=f"{check.input_set}/{check.output}", time="0"
            )
            if check.verdict == "fail":
                failure = ET.SubElement(case, "failure", type="accuracy", message=check.message or "")
                failure.text = f"drift against {report.against}: {check.message} {_numbers(check)}"
    else:
        # Stages that fail outside any candidate (tensor I/O, determinism) are failures of their own.
        for stage in report.stages:
            if stage.status == "failed" and stage.name in ("tensors", "determinism", "manifest"):
                case = ET.SubElement(suite, "testcase", classname="stage", name=stage.name, time=f"{stage.seconds:.3f}")
                ET.SubElement(case, "failure", type="run", message=stage.reason or "").text = stage.reason
    cases = suite.findall("testcase")
    counts = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": 0,
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
    for element in (root, suite):
        for key, value in counts.items():
            element.set(key, str(value))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def summary_markdown(report: AnyReport) -> str:
    """A compact table for a CI job summary (e.g. ``$GITHUB_STEP_SUMMARY``)."""
    model = report.model.name if report.model else "?"
    icon = "✅" if report.verdict == "pass" else "❌"
    lines = [f"### {icon} modelport {report.kind}: {model}: **{report.verdict.upper()}**", ""]
    if isinstance(report, VerifyReport):
        lines += [f"- {p.category}: {p.path}: {p.problem}" for p in report.integrity]
        lines += [f"- note: {n}" for n in report.notes]
        lines += [f"- warning: {d}" for d in report.environment_drift]
        if report.signature is not None:
            required = " (required)" if report.signature_required else ""
            lines.append(f"- signature{required}: {report.signature.describe()}")
        unproven = [
            f"- warning: {c.candidate} is unproven: {c.proof}" for c in report.candidates if c.verdict == "unproven"
        ]
        lines += unproven
        lines.append("")
    else:
        failed = [s for s in report.stages if s.status == "failed"]
        lines += [f"- stage {s.name} failed: {s.reason}" for s in failed]
        lines += [f"- {line}" for line in lost_coverage_lines(report)]
        if failed or report.lost_coverage:
            lines.append("")
    lines += [
        "| candidate | checks passed | edge cases passed | max abs err | tol used | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for cand in report.candidates:
        regular = [c for c in cand.checks if c.set_kind != "edge"]
        edge = [c for c in cand.checks if c.set_kind == "edge"]
        passed = f"{sum(c.verdict == 'pass' for c in regular)}/{len(regular)}" if regular else "-"
        edge_passed = f"{sum(c.verdict == 'pass' for c in edge)}/{len(edge)}" if edge else "-"
        if cand.flagged():
            edge_passed += f" ({len(cand.flagged())} flagged)"
        err = "-" if cand.max_abs_err is None else f"{cand.max_abs_err:.3g}"
        used = "-" if cand.tolerance_used is None else f"{cand.tolerance_used:.0%}"
        verdict: str = cand.verdict if cand.status != "skipped" else "skipped"
        if cand.verdict == "unproven":
            verdict = f"unproven: {cand.proof} ({cand.reason})".replace("|", "\\|")
        if cand.verdict == "fail":
            first = cand.failures()[0] if cand.failures() else None
            why = cand.reason or (f"{first.input_set}/{first.output}: {first.message}" if first else "")
            category = cand.category or (first.category if first else None) or "accuracy"
            verdict = f"fail ({category}): {why}".replace("|", "\\|")
        lines.append(f"| {cand.candidate} | {passed} | {edge_passed} | {err} | {used} | {verdict} |")
    failing = [(c.candidate, f) for c in report.candidates for f in c.failures()]
    if isinstance(report, VerifyReport):
        failing += [(f"drift vs {report.against}", c) for c in report.drift if c.verdict == "fail"]
    if failing:
        lines += ["", "| failing check | category | message |", "|---|---|---|"]
        for cand_name, check in failing[:20]:
            message = (check.message or "").replace("|", "\\|")
            lines.append(f"| {cand_name} {check.input_set} {check.output} | {check.category} | {message} |")
        if len(failing) > 20:
            lines.append(f"| ... {len(failing) - 20} more in the JSON report | | |")
    return "\n".join(lines) + "\n"


def write_ci_outputs(
    report: AnyReport,
    *,
    json_path: Path | None = None,
    junit_path: Path | None = None,
    summary_path: Path | None = None,
) -> None:
    renderers: list[tuple[Path | None, Callable[[], bytes]]] = [
        (json_path, lambda: report.model_dump_json(indent=2).encode() + b"\n"),
        (junit_path, lambda: junit_xml(report)),
        (summary_path, lambda: summary_markdown(report).encode()),
    ]
    for path, render in renderers:
        if path is None:
            continue
        try:
            with atomic_write(path) as fh:
                fh.write(render())
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
