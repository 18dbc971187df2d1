"""The live progress display: on a terminal (a real pseudo-terminal) `run` and `verify` show each running stage and
its latest progress message; with --quiet, in CI or on a pipe they print no control sequence; errors and Ctrl-C
stop it cleanly, without a traceback."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from modelport.pipeline.live import LiveProgress, live_wanted
from modelport.pipeline.records import StageRecord
from modelport.pipeline.stages import StageEvent

ESC = "\x1b["
SHOW_CURSOR = "\x1b[?25h"
HIDE_CURSOR = "\x1b[?25l"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "TERM", "COLUMNS")}
    env.update(TERM="xterm-256color", COLUMNS="200", **extra)
    return env


def _pty(argv: list[str], env: dict[str, str], interrupt_after: str | None = None) -> tuple[int, str]:
    """Run ``modelport ARGV`` on a pseudo-terminal; everything it wrote, and its exit code. With
    ``interrupt_after``, Ctrl-C (SIGINT) is sent once that text has appeared."""
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "modelport", *argv]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if interrupt_after is not None and interrupt_after in b"".join(chunks).decode(errors="replace"):
                    proc.send_signal(signal.SIGINT)
                    interrupt_after = None
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_run_shows_live_progress_and_logs_json_on_a_terminal(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    code, text = _pty(["run", "--out", str(tmp_path / "mlp"), "--log-json", str(log)], _env())
    assert code == 0, text[-3000:]
    assert HIDE_CURSOR in text and text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR), "the display must end cleanly"
    # the running stage with its latest message, and the finished stages as lines
    assert "writing model.onnx" in text and "checking onnx@onnxruntime" in text
    assert "validate" in text and "verdict: PASS" in text
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"start", "progress", "end"} <= {e["kind"] for e in events}
    assert {"stage": "onnx", "kind": "progress", "message": "writing model.onnx"} in [
        {k: e[k] for k in ("stage", "kind", "message") if k in e} for e in events
    ]
    ended = [e["stage"] for e in events if e["kind"] == "end"]
    assert ended[-1] == "manifest" and "validate" in ended


@pytest.mark.slow
@pytest.mark.parametrize("how", ["quiet", "ci"])
def test_run_on_a_terminal_is_plain_with_quiet_or_in_ci(tmp_path: Path, how: str) -> None:
    argv = ["run", "--out", str(tmp_path / "mlp"), "--formats", "onnx", "--runtimes", "onnxruntime"]
    code, text = _pty([*argv, "--quiet"] if how == "quiet" else argv, _env(**({"CI": "true"} if how == "ci" else {})))
    assert code == 0, text[-3000:]
    assert ESC not in text, "no control sequence with --quiet or in CI"
    assert "writing model.onnx" not in text
    assert "verdict: PASS" in text


@pytest.mark.slow
def test_verify_shows_each_candidate_on_a_terminal_and_nothing_in_ci(mlp_folder: Path) -> None:
    argv = ["verify", str(mlp_folder), "--runtimes", "onnxruntime"]
    code, text = _pty(argv, _env())
    assert code == 0, text[-3000:]
    assert "checking onnx@onnxruntime" in text and "checking onnx_optimized@onnxruntime" in text
    assert "integrity" in text and "replay" in text and "verdict: PASS" in text
    assert text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR)
    code, text = _pty(argv, _env(CI="1"))
    assert code == 0 and ESC not in text and "checking onnx" not in text
    code, text = _pty([*argv, "--quiet"], _env())
    assert code == 0 and ESC not in text and text.strip() == "verdict: PASS"


def test_a_pipe_gets_no_control_sequences(cli, mlp_folder: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify", str(mlp_folder), "--runtimes", "onnxruntime")
    assert result.code == 0
    assert ESC not in result.out + result.err and "checking" not in result.out
    assert f"verify {mlp_folder} (" in result.out  # the plain header, as before


@pytest.mark.slow
def test_a_failing_build_is_one_line_and_the_display_stops(tmp_path: Path) -> None:
    model = tmp_path / "broken.py"
    model.write_text("def model():\n    raise ValueError('no weights here')\n")
    code, text = _pty(["run", "--model", f"{model}:model", "--out", str(tmp_path / "out")], _env())
    assert code == 2, text[-3000:]
    assert "Traceback" not in text
    assert "modelport: error: --model" in text and "raised ValueError: no weights here" in text
    if HIDE_CURSOR in text:
        assert text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR)


@pytest.mark.slow
def test_ctrl_c_stops_the_display_and_leaves_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "mlp"
    code, text = _pty(["run", "--out", str(out)], _env(), interrupt_after="torchscript")
    assert code == 130, text[-3000:]
    assert "Traceback" not in text and "interrupted" in text
    assert text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR), "the cursor comes back"
    assert not out.exists()


def _record(name: str) -> StageRecord:
    return StageRecord(name=name, status="ok", seconds=0.5)


def test_the_display_in_process_draws_progress_and_stops_on_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    assert live_wanted(console, quiet=False)
    assert not live_wanted(console, quiet=True)
    monkeypatch.setenv("CI", "true")
    assert not live_wanted(console, quiet=False)
    assert not live_wanted(Console(file=io.StringIO()), quiet=False)  # not a terminal
    printed: list[str] = []
    display = LiveProgress(console, live=True, on_end=lambda r: printed.append(r.name))
    with pytest.raises(KeyboardInterrupt), display:
        display(StageEvent("onnx", "start"))
        display(StageEvent("onnx", "progress", message="writing model.onnx"))
        assert display._live is not None
        raise KeyboardInterrupt
    assert display._live is None, "Ctrl-C stops the display"
    text = buffer.getvalue()
    assert "writing model.onnx" in text and text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR)


def test_a_display_that_cannot_draw_turns_itself_off() -> None:
    class Gone(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("the terminal is gone")

    ended: list[str] = []
    display = LiveProgress(Console(file=Gone(), force_terminal=True), live=True, on_end=lambda r: ended.append(r.name))
    with display:
        display(StageEvent("onnx", "start"))  # must not raise into the stage it shows
        display(StageEvent("onnx", "end", record=_record("onnx")))
    assert not display.enabled and ended == ["onnx"]


def test_verify_reports_its_steps_as_stage_events(mlp_folder: Path) -> None:
    import modelport

    events: list[StageEvent] = []
    report = modelport.verify(mlp_folder, runtimes="onnxruntime", on_event=events.append)
    assert report.verdict == "pass"
    ended = [(e.stage, e.record.status) for e in events if e.kind == "end" and e.record is not None]
    assert ended == [("integrity", "ok"), ("golden", "ok"), ("replay", "ok")]
    said = [e.message or "" for e in events if e.kind == "progress" and e.stage == "replay"]
    assert [m for m in said if ":" not in m] == [f"checking {c.candidate}" for c in report.candidates]
    assert "checking onnx@onnxruntime: loading model.onnx" in said
    assert f"checking onnx@onnxruntime: {len(report.candidates[0].infer_seconds)} input sets" in said
    assert next(e.kind for e in events if e.stage == "replay") == "start"


def test_an_interrupt_a_library_swallowed_still_stops_the_run_at_the_next_stage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python drops a KeyboardInterrupt raised inside a finalizer; the CLI's handler remembers the signal."""
    from modelport import errors
    from modelport.pipeline.stages import Stage, StageRunner

    ran: list[str] = []

    class Step(Stage[None]):
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, ctx: None, record: object) -> None:
            ran.append(self.name)

    runner: StageRunner[None] = StageRunner()
    runner.run(Step("first"), None)
    monkeypatch.setattr(errors, "_interrupted", True)  # what errors.interrupt leaves behind
    with pytest.raises(KeyboardInterrupt):
        runner.run(Step("second"), None)
    assert ran == ["first"]
