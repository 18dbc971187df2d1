"""report.html: written by every run beside report.md, self-contained, escaped, one matrix cell per candidate x output.

The fast tests parse the page with the standard library's HTML parser. The ``runtimes`` test opens it in the
system Chromium (``tests/report_page.js`` through playwright-core, as the browser runtime does): it must render
every chart at a non-zero size, show the whole parity matrix and request nothing beyond its own file.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import load_manifest
from rich.console import Console
from runtime_harness import available_or_skip

import modelport
from modelport.pipeline.manifest import read_manifest
from modelport.pipeline.records import Report
from modelport.pipeline.report import render_markdown
from modelport.profiling.records import LatencyRow, Profile, ProfileSkip
from modelport.profiling.table import print_profile
from modelport.reports.html_report import CSP, render_html
from modelport.reports.rows import latency_rows
from modelport.runtimes import _js
from modelport.runtimes._page_server import PageServer
from modelport.runtimes.browser import chromium_executable
from modelport.runtimes.process import run_program

HOSTILE = '<script>alert(1)</script><img src="http://example.com/x.png">'


class Page(HTMLParser):
    """Every start tag with its attributes, and the text, of one HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in wanted.items())]

    def cells(self) -> list[tuple[str | None, str | None]]:
        return [(a["data-candidate"], a["data-output"]) for _, a in self.tags if "data-candidate" in a]


def profile_for(report: Report) -> Profile:
    """A latency profile by hand (the profiler fills the same records): every candidate at batch 1, 8 and 64."""
    rows = []
    for k, cand in enumerate(report.candidates):
        for batch, p50 in ((1, 0.05), (8, 0.12), (64, 0.9)):
            p50 *= 1 + k
            rows.append(
                LatencyRow(
                    candidate=cand.candidate, format=cand.format, runtime=cand.runtime, batch=batch, warmup=3,
                    iterations=50, p50_ms=p50, p95_ms=p50 * 1.4, mean_ms=p50 * 1.1, min_ms=p50 * 0.9,
                    items_per_second=batch / p50 * 1000, threads=2,
                )
            )  # fmt: skip
    first = report.candidates[0].candidate
    skipped = [ProfileSkip(candidate="onnx@node", reason="Node.js is not on PATH")]
    return Profile(batch_sizes=[1, 8, 64], rows=rows, fastest={"1": first, "8": first, "64": first}, skipped=skipped)


def _outputs(report: Report) -> list[str]:
    return report.signature.output_names


def test_run_writes_a_self_contained_report_html_listed_in_the_manifest(mlp_folder: Path) -> None:
    listed = {a["path"]: (a["format"], a["role"]) for a in load_manifest(mlp_folder)["artifacts"]}
    assert listed["report.html"] == ("report", "report") == listed["report.md"]
    report = read_manifest(mlp_folder)
    page = Page((mlp_folder / "report.html").read_text(encoding="utf-8"))
    assert page.all("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"] == CSP
    # Nothing to fetch: no script, no stylesheet or image by URL; the only link is the empty data: icon.
    assert not page.all("script") and not page.all("img") and not page.all("iframe")
    assert [a.get("href") for a in page.all("link")] == ["data:,"]
    assert not [a for _, a in page.tags if any(k in ("src", "srcset") for k in a)]
    # The parity matrix: one cell per candidate x output, each one exactly once.
    expected = [(c.candidate, o) for c in report.candidates for o in _outputs(report)]
    assert sorted(page.cells()) == sorted(expected) and len(set(page.cells())) == len(expected)
    # The charts: the stage timeline, one histogram per candidate (every default candidate ran); sized.
    charts = page.all("svg")
    assert Counter(a["data-chart"] for a in charts) == {"timeline": 1, "histogram": len(report.candidates)}
    assert all(int(a["width"] or 0) > 0 and int(a["height"] or 0) > 0 for a in charts)
    assert "PASS" in page.text and report.model.name in page.text
    header = Page((mlp_folder / "report.html").read_text(encoding="utf-8").split("</header>")[0]).text
    env = report.environment
    assert {env.torch, env.onnx, env.onnxruntime, env.python} <= set(header)  # the environment, in the header


def test_text_from_the_manifest_is_escaped(mlp_folder: Path) -> None:
    """A manifest is untrusted: a model name, stage reason, note or output name cannot add markup."""
    report = read_manifest(mlp_folder)
    cand = report.candidates[0]
    hostile_check = cand.checks[0].model_copy(update={"output": HOSTILE, "verdict": "fail", "message": HOSTILE})
    stage = report.stages[0].model_copy(update={"status": "failed", "reason": HOSTILE, "name": HOSTILE})
    hostile = report.model_copy(
        update={
            "model": report.model.model_copy(update={"name": HOSTILE, "description": HOSTILE}),
            "candidates": [cand.model_copy(update={"candidate": HOSTILE, "checks": [hostile_check]})],
            "stages": [stage, *report.stages[1:]],
            "notes": [HOSTILE],
            "profile": profile_for(report).model_copy(update={"fastest": {"1": HOSTILE}}),
        }
    )
    text = render_html(hostile)
    page = Page(text)
    assert not page.all("script") and not page.all("img")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert HOSTILE in page.text  # shown as text, in the header, tables and chart titles
    assert (HOSTILE, HOSTILE) in page.cells()  # attribute values are escaped too and read back intact


def test_the_matrix_has_a_cell_for_every_candidate_and_output_even_unchecked(mlp_folder: Path) -> None:
    """Two outputs; one candidate checked on only one of them, one skipped: every cell is still there."""
    report = read_manifest(mlp_folder)
    first, second, *rest = report.candidates
    extra = first.model_copy(update={"checks": [*first.checks, first.checks[0].model_copy(update={"output": "aux"})]})
    skipped = second.model_copy(update={"status": "skipped", "checks": [], "reason": "not selected"})
    two = report.model_copy(update={"candidates": [extra, skipped, *rest]})
    cells = Page(render_html(two)).cells()
    assert len(cells) == len(report.candidates) * 2
    assert set(cells) == {(c.candidate, o) for c in report.candidates for o in ("output", "aux")}


def test_latency_charts_per_runtime_from_the_profile(mlp_folder: Path) -> None:
    report = read_manifest(mlp_folder)
    profile = profile_for(report)
    page = Page(render_html(report.model_copy(update={"profile": profile})))
    runtimes = {r.runtime for r in profile.rows}
    assert len(page.all("svg", **{"data-chart": "latency"})) == len(runtimes) >= 2
    text = "".join(page.text)
    assert "Node.js is not on PATH" in text and "fastest" in text
    assert f"{profile.rows[-1].items_per_second:.4g}" in text  # every row's figures are in the table


def test_the_terminal_markdown_and_html_show_the_same_latency_rows(mlp_folder: Path) -> None:
    """One row builder (the profiler's, reports.rows.latency_rows) feeds every renderer: each shows every row."""
    report = read_manifest(mlp_folder)
    profile = profile_for(report)
    profiled = report.model_copy(update={"profile": profile})
    rows = latency_rows(profile)
    console = Console(record=True, width=240)
    print_profile(console, profile)  # what `run --profile` prints after the parity tables
    terminal = console.export_text()
    markdown = render_markdown(profiled)
    page_text = Page(render_html(profiled)).text
    assert len(rows) == 3 * len(report.candidates)
    for row in rows:
        assert "| " + " | ".join(row) + " |" in markdown
        assert all(cell in terminal for cell in row if cell)
        assert all(cell in page_text for cell in row if cell), row
    assert "## Latency" not in render_markdown(report) and "## Latency profile" in markdown


def test_an_older_manifest_without_histograms_reads_and_renders(artifact_copy: Path) -> None:
    """abs_err_hist is optional: a manifest written before it existed still reads; its page has no histograms."""
    manifest = load_manifest(artifact_copy)
    for cand in manifest["candidates"]:
        for check in cand["checks"]:
            del check["abs_err_hist"]
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    report = read_manifest(artifact_copy)
    page = Page(render_html(report))
    assert not page.all("svg", **{"data-chart": "histogram"}) and page.all("svg", **{"data-chart": "timeline"})
    assert len(page.cells()) == len(report.candidates)


def test_verify_writes_its_report_as_html_on_request(artifact_copy: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """--report-html: verify's own page, beside --report-json and --junit-xml; a failure is shown as one."""
    (artifact_copy / "model.onnx").write_bytes(b"not onnx")  # integrity: its sha256 no longer matches
    result = cli("verify", str(artifact_copy), "--report-html", str(tmp_path / "v.html"))
    assert result.code == 1
    page = Page((tmp_path / "v.html").read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert "FAIL" in page.text and "modelport verify" in text and "model.onnx" in text
    report = read_manifest(artifact_copy)
    assert sorted(page.cells()) == sorted((c.candidate, o) for c in report.candidates for o in _outputs(report))
    assert page.all("section", id="integrity") and not page.all("svg", **{"data-chart": "timeline"})


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.runtimes
def test_report_html_renders_in_chromium_and_requests_nothing(tmp_path: Path) -> None:
    """Run the MLP, open report.html (and the same report with a latency profile) in headless Chromium."""
    available_or_skip("browser")  # node, Chromium and playwright-core; a failure under MODELPORT_REQUIRE_RUNTIMES=1
    report = modelport.run(out=tmp_path / "mlp", formats="state_dict,onnx,onnx_int8", samples=0)
    assert report.verdict == "pass"
    folder = tmp_path / "mlp"
    profiled = tmp_path / "profiled.html"
    profiled.write_text(render_html(report.model_copy(update={"profile": profile_for(report)})), encoding="utf-8")
    pages = {"/report.html": folder / "report.html", "/profiled.html": profiled}
    config = tmp_path / "config.json"
    with PageServer(pages) as server:
        specs = [{"path": p, "screenshot": str(tmp_path / f"{p[1:]}.png")} for p in pages]
        data = {"chromium": chromium_executable(), "origin": server.origin, "pages": specs}
        config.write_text(json.dumps(data | {"result": str(tmp_path / "result.json")}))
        script = Path(__file__).with_name("report_page.js")
        run_program(
            [str(_js.node_executable()), str(script), str(config)],
            what="report_page.js",
            timeout=120,
            env={"NODE_PATH": str(_js.packages_dir() / "node_modules")},
        )
        origin = server.origin
    assert server.refused == []
    result = json.loads((tmp_path / "result.json").read_text())
    expected_cells = sorted([c.candidate, o] for c in report.candidates for o in _outputs(report))
    runtimes = len({c.runtime for c in report.candidates})
    for spec, seen in zip(specs, result["pages"], strict=True):
        where = spec["path"]
        # The document itself and nothing else: no font, script, image or icon from anywhere.
        assert [u for u in seen["requests"] if not u.startswith("data:")] == [origin + where], where
        assert seen["blocked"] == [] and seen["resources"] == [], where
        assert seen["consoleErrors"] == [] and seen["pageErrors"] == [], where  # a CSP violation is a console error
        width, height = _png_size(Path(spec["screenshot"]).read_bytes())
        assert width >= 1000 and height > 900, (where, width, height)  # the whole page, taller than the window
        assert seen["verdict"] == "PASS"
        assert sorted(seen["cells"]) == expected_cells, where
        kinds = Counter(c["kind"] for c in seen["charts"])
        assert kinds["timeline"] == 1 and kinds["histogram"] == len(report.candidates), (where, kinds)
        assert kinds["latency"] == (runtimes if where == "/profiled.html" else 0), (where, kinds)
        assert None not in kinds, f"{where}: an svg or img that is not a chart: {seen['charts']}"
        for chart in seen["charts"]:
            assert chart["width"] > 0 and chart["height"] > 0, (where, chart)
            assert chart["naturalWidth"] is None or chart["naturalWidth"] > 0, (where, chart)  # an <img> decoded
            assert chart["shapes"] is None or chart["shapes"] > 0, (where, chart)  # an <svg> drew something
