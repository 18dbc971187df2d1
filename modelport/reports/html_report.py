"""``report.html``: one self-contained page per report, for people.

Inline CSS, inline SVG charts, no script and nothing fetched: the page's Content-Security-Policy allows no
network at all, so it opens the same from a CI artifact, a mail attachment or a folder offline. Every text
from the report is escaped (``html.escape``): a manifest is untrusted input.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from modelport.pipeline.records import Report, VerifyReport
from modelport.reports import rows as R
from modelport.reports.charts import error_bars, latency_by_runtime, parity_matrix, stage_bars
from modelport.reports.svg import histogram_svg, latency_svg, timeline_svg

__all__ = ["CSP", "render_html"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CELL_LEGEND = [
    ("exact", "bit-exact"),
    ("pass", "pass, at most half the tolerance used"),
    ("near", "pass, over half used"),
    ("float64", "pass by the float64 rounding allowance"),
    ("flagged", "flagged, not gating"),
    ("fail", "FAIL"),
    ("none", "not checked"),
]
CSS = """
:root { --ink:#1f2430; --muted:#6b7280; --line:#e3e6eb; --bg:#f6f7f9; --ok:#2f9e66; --bad:#d64545; --warn:#c98a00; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); line-height:1.45;
  font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { display:flex; gap:24px; align-items:center; padding:28px 40px; color:#fff; }
header.pass { background:linear-gradient(135deg,#23814f,#2f9e66); }
header.fail { background:linear-gradient(135deg,#a82f2f,#d64545); }
.verdict { font-size:44px; font-weight:800; letter-spacing:.06em; padding:6px 22px; border:3px solid #fff;
  border-radius:12px; }
header h1 { margin:0; font-size:26px; font-weight:700; }
header p { margin:4px 0 0; opacity:.92; }
main { max-width:1280px; margin:0 auto; padding:8px 32px 40px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin:18px 0; }
h2 { font-size:17px; margin:0 0 12px; }
h3 { font-size:14px; margin:14px 0 6px; color:var(--muted); font-weight:600; }
.chips { display:flex; flex-wrap:wrap; gap:6px; margin:0; padding:0; list-style:none; }
.chips li { background:var(--bg); border:1px solid var(--line); border-radius:999px; padding:2px 10px; font-size:12px; }
.chips b { color:var(--muted); font-weight:600; margin-right:4px; }
header .chips { margin-top:10px; }
header .chips li { background:rgba(255,255,255,.16); border-color:rgba(255,255,255,.35); }
header .chips b { color:#fff; opacity:.8; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:5px 9px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--bg); font-weight:600; color:#414857; }
td.num { font-variant-numeric:tabular-nums; white-space:nowrap; }
td:first-child { white-space:nowrap; font-weight:600; } td:last-child { min-width:180px; }
tr.bad td { background:#fdf0f0; } tr.warn td { background:#fff8e6; }
td.v-bad { color:var(--bad); font-weight:600; } td.v-warn { color:var(--warn); font-weight:600; }
td.v-ok { color:var(--ok); font-weight:600; }
table.matrix { width:auto; }
table.matrix td.cell { text-align:center; min-width:96px; font-weight:600; font-variant-numeric:tabular-nums;
  border:2px solid #fff; border-radius:6px; }
.s-exact { background:#a7dcbc; color:#14532d; } .s-pass { background:#cdeed9; color:#14532d; }
.s-near { background:#e9f5c4; color:#3f5212; } .s-float64 { background:#fff1b8; color:#6b4e00; }
.s-flagged { background:#fde2c4; color:#7a3e00; } .s-fail { background:#f7c9c9; color:#8b1a1a; }
.s-none { background:#eceef1; color:var(--muted); }
.legend { display:flex; flex-wrap:wrap; gap:10px; margin:10px 0 0; font-size:12px; color:var(--muted); }
.legend span { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:4px;
  vertical-align:-2px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(370px,1fr)); gap:14px; }
.grid.wide { grid-template-columns:repeat(auto-fill,minmax(570px,1fr)); }
figure { margin:0; } figcaption { font-size:13px; font-weight:600; margin-top:2px; }
svg.chart { max-width:100%; height:auto; }
details summary { cursor:pointer; font-weight:600; margin:4px 0 8px; }
ul.plain { margin:0; padding-left:18px; } .muted { color:var(--muted); }
footer { text-align:center; color:var(--muted); font-size:12px; padding:0 0 30px; }
"""


def _e(text: object) -> str:
    return escape(str(text))


def _verdict_class(text: str) -> str:
    if "FAIL" in text or text.startswith("fail"):
        return "bad"
    if text.startswith(("unproven", "flagged", "NOT VERIFIED", "skipped")):
        return "warn"
    return "ok" if text.startswith("pass") else ""


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, verdict_last: bool = True) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        kind = _verdict_class(row[-1]) if verdict_last else ""
        cells = [f'<td class="num">{_e(c)}</td>' if c[:1].isdigit() or c == "-" else f"<td>{_e(c)}</td>" for c in row]
        if verdict_last:
            cells[-1] = f'<td class="v-{kind}">{_e(row[-1])}</td>'
        body.append(f'<tr class="{kind if kind != "ok" else ""}">' + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _section(ident: str, title: str, *content: str) -> str:
    return f'<section id="{ident}"><h2>{_e(title)}</h2>{"".join(content)}</section>'


def _chips(pairs: Sequence[tuple[str, object]]) -> str:
    items = "".join(f"<li><b>{_e(k)}</b>{_e(v)}</li>" for k, v in pairs if v is not None)
    return f'<ul class="chips">{items}</ul>'


def _header(report: Report | VerifyReport) -> str:
    """The verdict, large; the model; the environment the report was made in."""
    model = report.model
    name = model.name if model else "(damaged manifest)"
    if isinstance(report, Report):
        sub = f"modelport run · {report.model.spec} · created {report.created_at}"
    else:
        sub = f"modelport verify · {report.folder} · {report.files_checked} files checked"
    if model is not None:
        sub += f" · {model.class_name}, {model.parameters:,} parameters, seed {model.seed}"
    env = report.environment
    versions = [
        ("modelport", env.modelport),
        ("python", env.python),
        ("torch", env.torch),
        ("onnx", env.onnx),
        ("onnxruntime", env.onnxruntime),
        ("numpy", env.numpy),
        ("platform", env.platform),
    ]
    return (
        f'<header class="{"pass" if report.verdict == "pass" else "fail"}">'
        f'<div class="verdict">{_e(report.verdict.upper())}</div>'
        f"<div><h1>{_e(name)}</h1><p>{_e(sub)}</p>{_chips(versions)}</div></header>"
    )


def _model(report: Report) -> str:
    """The signature and the model's description."""
    tensors = [("input", t) for t in report.signature.inputs] + [("output", t) for t in report.signature.outputs]
    content = [_chips([(k, f"{t.name} {t.shape} {t.dtype}") for k, t in tensors])]
    if report.model.description:
        content.append(f'<p class="muted">{_e(report.model.description)}</p>')
    return _section("model", "Model", *content)


def _matrix(report: Report | VerifyReport) -> str:
    outputs, rows = parity_matrix(report)
    head = "<th>candidate</th>" + "".join(f"<th>{_e(o)}</th>" for o in outputs)
    body = []
    for cand, cells in zip(report.candidates, rows, strict=True):
        tds = "".join(
            f'<td class="cell s-{c.state}" data-candidate="{_e(c.candidate)}" data-output="{_e(c.output)}" '
            f'title="{_e(c.detail)}">{_e(c.text)}</td>'
            for c in cells
        )
        body.append(f"<tr><th>{_e(cand.candidate)}</th>{tds}</tr>")
    legend = "".join(f'<div><span class="s-{s}"></span>{_e(t)}</div>' for s, t in CELL_LEGEND)
    note = (
        '<p class="muted">Each cell: the worst share of the tolerance any input set used for that output '
        "(max |error| / allowed); hover for the worst set.</p>"
    )
    table = f'<div class="scroll"><table class="matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
    return _section(
        "matrix", "Parity matrix", note, table + "</tbody></table></div>", f'<div class="legend">{legend}</div>'
    )


def _histograms(report: Report | VerifyReport) -> str:
    figures = [
        f"<figure>{histogram_svg(b)}<figcaption>{_e(b.candidate)}: {b.exact + sum(b.counts):,} elements, "
        f"{b.exact:,} exact</figcaption></figure>"
        for b in error_bars(report.candidates)
    ]
    if not figures:
        return ""
    intro = '<p class="muted">Per-element absolute error over every input set and output, per power of ten.</p>'
    return _section("histograms", "Error histograms", intro, f'<div class="grid">{"".join(figures)}</div>')


def _latency(report: Report) -> str:
    profile = report.profile
    if profile is None or not profile.rows:
        return ""
    charts = [
        f"<figure>{latency_svg(runtime, rows)}<figcaption>{_e(runtime)}</figcaption></figure>"
        for runtime, rows in latency_by_runtime(profile).items()
    ]
    fastest = ", ".join(f"batch {b}: {c}" for b, c in profile.fastest.items())
    content = [
        f'<p class="muted">Fastest per batch size: {_e(fastest or "-")}</p>',
        f'<div class="grid wide">{"".join(charts)}</div>',
    ]
    content.append("<h3>latency</h3>" + _table(R.LATENCY_COLUMNS, R.latency_rows(profile), verdict_last=False))
    content.append(_list("not profiled", R.latency_skip_lines(profile)))
    return _section("latency", "Latency per runtime and batch size", *content)


def _list(title: str, lines: Sequence[str]) -> str:
    if not lines:
        return ""
    return f'<h3>{_e(title)}</h3><ul class="plain">{"".join(f"<li>{_e(x)}</li>" for x in lines)}</ul>'


def _run_sections(report: Report) -> list[str]:
    stages = _section(
        "timeline",
        "Stage timeline",
        f"<figure>{timeline_svg(stage_bars(report.stages))}</figure>",
        "<details><summary>stages</summary>" + _table(R.STAGE_COLUMNS, R.stage_rows(report.stages), verdict_last=False),
        "</details>",
    )
    rounding = R.rounding_rows(report.candidates)
    more = [
        "<h3>tolerances</h3>" + _table(R.TOLERANCE_COLUMNS, R.tolerance_rows(report), verdict_last=False),
        "<h3>formats</h3>" + _table(R.FORMAT_COLUMNS, R.format_rows(report), verdict_last=False),
    ]
    if rounding:
        more.append("<h3>float32 rounding versus candidate error</h3>")
        more.append(_table(R.ROUNDING_COLUMNS, rounding, verdict_last=False))
    more.append(_list("notes", R.all_notes(report)))
    return [stages, _latency(report), _section("details", "Tolerances, formats and notes", *more)]


def _verify_sections(report: VerifyReport) -> list[str]:
    problems = [f"{p.category}: {p.path}: {p.problem}" for p in report.integrity]
    lines = [_list("integrity problems", problems), _list("notes", report.notes)]
    lines.append(_list("environment drift", report.environment_drift))
    if report.signature is not None:
        lines.append(_list("signature", [report.signature.describe()]))
    if report.trusted is not None:
        lines.append(_list("programs loaded", [report.trusted]))
    sections = [_section("integrity", "Integrity", *lines)]
    if report.against is not None:
        title = f"Drift of the golden outputs against {report.against}"
        sections.append(_section("drift", title, _table(R.DRIFT_COLUMNS, R.drift_rows(report))))
    return sections


def _localized(report: Report | VerifyReport) -> str:
    """Where each failing candidate first diverged: one line each, then its modules in execution order."""
    lines = R.localization_lines(report.candidates)
    if not lines:
        return ""
    rows = R.localization_rows(report.candidates)
    table = _table(R.LOCALIZE_COLUMNS, rows, verdict_last=False)
    return _section("localized", "Where it diverged", _list("first diverging module", lines), table)


def render_html(report: Report | VerifyReport) -> str:
    """The whole page, as text."""
    name = report.model.name if report.model else "?"
    checks = R.parity_rows(report.candidates)
    candidates = [
        _table(R.SUMMARY_COLUMNS, R.summary_rows(report.candidates)),
        _list("coverage lost", R.lost_coverage_lines(report)) if isinstance(report, Report) else "",
    ]
    timing = R.runtime_rows(report.candidates)
    if timing:
        candidates.append("<h3>runtimes</h3>" + _table(R.RUNTIME_COLUMNS, timing, verdict_last=False))
    body = [
        _header(report),
        "<main>",
        *(_verify_sections(report) if isinstance(report, VerifyReport) else []),
        _matrix(report),
        _localized(report),
        _section("candidates", "Candidates", *candidates),
        _histograms(report),
        *([_model(report), *_run_sections(report)] if isinstance(report, Report) else []),
        _section(
            "checks",
            "Every check",
            f"<details><summary>{len(checks)} checks (candidate x input set x output)</summary>",
            _table(R.PARITY_COLUMNS, checks) + "</details>",
        ),
        "</main>",
        f"<footer>modelport {_e(report.environment.modelport or '')} · {_e(report.kind)} report</footer>",
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{_e(f'modelport {report.kind}: {name}: {report.verdict.upper()}')}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
