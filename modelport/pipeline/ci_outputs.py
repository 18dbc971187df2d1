"""CI outputs for ``run`` and ``verify``: the full JSON report, JUnit XML, a markdown summary and the HTML page.

Every failure carries one category (export, load, run, shape, dtype, accuracy, missing,
integrity) in all of them, so a CI system can group and count them. The cases and rows come from
``modelport.reports``; this module only lays them out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from modelport.errors import UsageError
from modelport.fsutil import atomic_write
from modelport.pipeline.records import Report, VerifyReport
from modelport.reports.cases import REQUIRED, report_cases
from modelport.reports.rows import CI_SUMMARY_COLUMNS, ci_summary_rows, failing_rows, lost_coverage_lines

__all__ = ["REQUIRED", "junit_xml", "summary_markdown", "write_ci_outputs"]

AnyReport = Report | VerifyReport
MAX_FAILING = 20  # failing checks listed in the summary; the rest are in the JSON report


def junit_xml(report: AnyReport) -> bytes:
    """One test case per candidate x input set x output (plus one per integrity problem)."""
    name = f"modelport.{report.kind} {report.model.name if report.model else '?'}"
    root = ET.Element("testsuites", name="modelport")
    suite = ET.SubElement(root, "testsuite", name=name)
    for case in report_cases(report):
        element = ET.SubElement(suite, "testcase", classname=case.classname, name=case.name, time=case.time)
        if case.outcome == "failure":
            ET.SubElement(element, "failure", type=case.type or "", message=case.message or "").text = case.text
        elif case.outcome == "skipped":
            ET.SubElement(element, "skipped", message=case.message or "").text = case.text
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


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _header_lines(report: AnyReport) -> list[str]:
    """What the summary says before its table: integrity, notes and signature (verify), failures (run)."""
    if isinstance(report, VerifyReport):
        lines = [f"- {p.category}: {p.path}: {p.problem}" for p in report.integrity]
        lines += [f"- note: {n}" for n in report.notes]
        lines += [f"- warning: {d}" for d in report.environment_drift]
        if report.signature is not None:
            required = " (required)" if report.signature_required else ""
            lines.append(f"- signature{required}: {report.signature.describe()}")
        lines += [
            f"- warning: {c.candidate} is unproven: {c.proof}" for c in report.candidates if c.verdict == "unproven"
        ]
        return [*lines, ""]
    failed = [s for s in report.stages if s.status == "failed"]
    lines = [f"- stage {s.name} failed: {s.reason}" for s in failed]
    lines += [f"- {line}" for line in lost_coverage_lines(report)]
    return [*lines, ""] if failed or report.lost_coverage else lines


def summary_markdown(report: AnyReport) -> str:
    """A compact table for a CI job summary (e.g. ``$GITHUB_STEP_SUMMARY``)."""
    model = report.model.name if report.model else "?"
    icon = "✅" if report.verdict == "pass" else "❌"
    lines = [f"### {icon} modelport {report.kind}: {model}: **{report.verdict.upper()}**", ""]
    lines += _header_lines(report)
    lines += [_md_row(CI_SUMMARY_COLUMNS), "|" + "---|" * len(CI_SUMMARY_COLUMNS)]
    lines += [_md_row(row) for row in ci_summary_rows(report.candidates)]
    failing = failing_rows(report)
    if failing:
        lines += ["", "| failing check | category | message |", "|---|---|---|"]
        lines += [_md_row(row) for row in failing[:MAX_FAILING]]
        if len(failing) > MAX_FAILING:
            lines.append(f"| ... {len(failing) - MAX_FAILING} more in the JSON report | | |")
    return "\n".join(lines) + "\n"


def write_ci_outputs(
    report: AnyReport,
    *,
    json_path: Path | None = None,
    junit_path: Path | None = None,
    summary_path: Path | None = None,
    html_path: Path | None = None,
) -> None:
    def html() -> bytes:
        from modelport.reports.html_report import render_html

        return render_html(report).encode()

    renderers: list[tuple[Path | None, Callable[[], bytes]]] = [
        (json_path, lambda: report.model_dump_json(indent=2).encode() + b"\n"),
        (junit_path, lambda: junit_xml(report)),
        (summary_path, lambda: summary_markdown(report).encode()),
        (html_path, html),
    ]
    for path, render in renderers:
        if path is None:
            continue
        try:
            with atomic_write(path) as fh:
                fh.write(render())
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
