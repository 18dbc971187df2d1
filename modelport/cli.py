"""The ``modelport`` command. It only parses arguments and calls the Python API.

Exit codes: 0 everything selected ran and passed; 1 a check failed or something selected
could not run; 2 bad usage or bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport import __version__
from modelport.cli_parser import build_parser
from modelport.errors import UsageError, WriteError, interrupt, resource_error
from modelport.shutdown import exit_quickly

if TYPE_CHECKING:
    from rich.console import Console

    from modelport.pipeline.records import Report, StageRecord, VerifyReport

__all__ = ["build_parser", "console_main", "main"]


def _ci_paths(args: argparse.Namespace, folder: Path | None) -> dict[str, Path | None]:
    """The CI output paths, checked before any work: writable file paths (pre-flight), never inside the
    artifact folder (verify would flag them)."""
    from modelport.pipeline.preflight import check_output_file

    paths: dict[str, Path | None] = {}
    flags = (("json_path", "report_json"), ("junit_path", "junit_xml"), ("summary_path", "summary_md"))
    for key, flag in (*flags, ("html_path", "report_html")):
        value = getattr(args, flag)
        path = Path(value) if value else None
        if path is not None:
            name = f"--{flag.replace('_', '-')}"
            if folder is not None and path.resolve().is_relative_to(folder.resolve()):
                raise UsageError(f"{name} {path} lies inside the artifact folder; write it elsewhere")
            check_output_file(name, path)
        paths[key] = path
    return paths


def _cmd_run(args: argparse.Namespace, out: Console) -> int:
    from modelport.pipeline.live import LiveProgress, fan_out, live_wanted
    from modelport.pipeline.report import print_stage
    from modelport.pipeline.run import run

    def on_stage(record: StageRecord) -> None:
        print_stage(out, record)

    def header() -> None:  # at the first stage event: after the arguments were accepted, so an error is the only output
        _plain(out, f"modelport {__version__}: run --model {args.model}")

    # Refused before any work; the default folder is known only after the model is resolved, checked again after.
    _ci_paths(args, Path(args.out) if args.out is not None else None)
    log_path = Path(args.log_json) if args.log_json else None
    if log_path is not None:
        from modelport.pipeline.preflight import check_output_file

        check_output_file("--log-json", log_path)
    from modelport.pipeline.event_log import event_log

    display = LiveProgress(out, live=live_wanted(out, args.quiet), on_end=on_stage, before=header)
    with event_log(log_path) as log, display:  # the display stops before the tables, on errors and on Ctrl-C
        report = _run_command(args, run, None, fan_out(log, None if args.quiet else display))
    return _finish_run(args, out, report)


def _run_command(args: argparse.Namespace, run: Any, on_stage: Any, on_event: Any) -> Report:
    report: Report = run(
        args.model,
        out=args.out,
        formats=args.formats,
        seed=args.seed,
        atol=args.atol,
        rtol=args.rtol,
        tol=args.tol,
        onnx_exporter=args.onnx_exporter,
        opset=args.opset,
        torchscript_method=args.torchscript_method,
        inputs=args.inputs,
        inputs_file=args.inputs_file,
        weights=args.weights,
        dynamic=args.dynamic,
        samples=args.samples,
        runtimes=args.runtimes,
        runtime_timeout=args.runtime_timeout,
        check_determinism=args.check_determinism,
        target=args.target,
        strict_edges=args.strict_edges,
        profile=args.profile,
        batch_sizes=args.batch_sizes,
        localize=not args.no_localize,
        force=args.force,
        sign_with=args.sign_with,
        on_stage=on_stage,
        on_event=on_event,
    )
    return report


def _finish_run(args: argparse.Namespace, out: Console, report: Report) -> int:
    from modelport.pipeline.outdir import SET_ASIDE
    from modelport.pipeline.report import print_parity

    for note in report.notes:
        if note.startswith(SET_ASIDE):  # always said: it is how the user undoes the replace
            print(f"modelport: {note} (move it back to undo; delete it when done)", file=sys.stderr)
    if not args.quiet:
        notes = [f"{s.name}: {n}" for s in report.stages for n in s.notes if not n.startswith("load with")]
        for note in notes:
            _plain(out, f"  note: {note}")
        print_parity(out, report, details=args.details)
        if report.profile is not None:
            from modelport.profiling.table import print_profile

            print_profile(out, report.profile)
    _plain(out, f"verdict: {report.verdict.upper()}  ({report.output_dir})")
    from modelport.pipeline.ci_outputs import write_ci_outputs

    write_ci_outputs(report, **_ci_paths(args, Path(report.output_dir or ".")))
    return report.exit_code


def _cmd_verify(args: argparse.Namespace, out: Console) -> int:
    from modelport.pipeline.live import LiveProgress, live_wanted
    from modelport.pipeline.report import print_stage
    from modelport.pipeline.verify import verify

    ci_paths = _ci_paths(args, Path(args.folder))
    live = live_wanted(out, args.quiet)  # on a terminal only: the steps' lines would change verify's plain output
    display = LiveProgress(
        out,
        live=live,
        on_end=lambda record: print_stage(out, record),
        before=lambda: _plain(out, f"modelport {__version__}: verify {args.folder}"),
    )
    with display:
        report = _verify_command(args, verify, display if live else None)
    signature = _signature_line(report)
    # An unproven file never counts as a pass: always said, even with --quiet.
    unproven = [
        f"{c.candidate} is unproven: {c.proof} ({c.reason})" for c in report.candidates if c.verdict == "unproven"
    ]
    if not args.quiet:
        if live:  # the header went out with the first step
            _plain(out, f"  {report.files_checked} files checked")
        else:
            _plain(out, f"modelport {__version__}: verify {args.folder} ({report.files_checked} files)")
        _print_verify(args, out, report, signature, unproven)
    else:
        _print_verify_quiet(args, out, report, signature, unproven)
    _plain(out, f"verdict: {report.verdict.upper()}")
    from modelport.pipeline.ci_outputs import write_ci_outputs

    write_ci_outputs(report, **ci_paths)
    return report.exit_code


def _verify_command(args: argparse.Namespace, verify: Any, on_event: Any) -> VerifyReport:
    report: VerifyReport = verify(
        args.folder,
        runtimes=args.runtimes,
        runtime_timeout=args.runtime_timeout,
        target=args.target,
        against=args.against,
        max_drift=args.max_drift,
        atol=args.atol,
        rtol=args.rtol,
        tol=args.tol,
        allow_loose=args.allow_loose,
        strict_edges=args.strict_edges,
        require_proof=args.require_proof,
        require_signature=args.require_signature,
        trusted_keys=args.trusted_key,
        trust=args.trust,
        model=args.model,
        localize_all=args.command == "localize",
        on_event=on_event,
    )
    return report


def _print_verify(
    args: argparse.Namespace, out: Console, report: VerifyReport, signature: str, unproven: list[str]
) -> None:
    from rich.markup import escape

    from modelport.pipeline.report import print_drift, print_parity

    for problem in report.integrity:
        where = escape(f"{problem.path}: {problem.problem}")
        out.print(f"  [red]{problem.category} FAIL[/]: {where}", highlight=False)
    for note in report.notes:
        _plain(out, f"  note: {note}")
    for drift in report.environment_drift:
        out.print(f"  [yellow]warning[/]: {escape(drift)}", highlight=False)
    for line in unproven:
        mark = "[red]FAIL[/] (--require-proof)" if args.require_proof else "[yellow]warning[/]"
        out.print(f"  {mark}: {escape(line)}", highlight=False)
    _plain(out, f"  {signature}")
    if report.trusted is not None:
        _plain(out, f"  programs (TorchScript, .pt2) loaded: {report.trusted}")
    print_parity(out, report, details=args.details)
    for cand in report.candidates:  # what was proven, file by file
        if cand.proof and cand.verdict == "pass":
            _plain(out, f"  proof: {cand.candidate}: {cand.proof}")
    if report.against is not None:
        print_drift(out, report)


def _print_verify_quiet(
    args: argparse.Namespace, out: Console, report: VerifyReport, signature: str, unproven: list[str]
) -> None:
    for problem in report.integrity:
        _plain(out, f"{problem.category} FAIL: {problem.path}: {problem.problem}")
    for cand in report.candidates:
        for check in cand.failures():
            _plain(out, f"FAIL {cand.candidate} {check.input_set} {check.output}: {check.message}")
        if cand.verdict == "fail" and not cand.checks:
            _plain(out, f"FAIL {cand.candidate}: {cand.reason}")
    for check in report.drift:
        if check.verdict == "fail":
            _plain(out, f"FAIL drift {check.input_set} {check.output}: {check.message}")
    for note in report.notes:
        if note.startswith("the run that wrote this folder failed"):
            _plain(out, f"FAIL {note}")
    for drift in report.environment_drift:
        _plain(out, f"warning: {drift}")
    for line in unproven:
        _plain(out, f"{'FAIL' if args.require_proof else 'warning'}: {line}")
    if report.signature_required and report.signature and report.signature.status != "valid":
        out.print(signature, highlight=False)


def _plain(out: Console, text: str) -> None:
    """A line of text as it is: no rich markup (runtimes' messages may hold brackets), no highlighting."""
    out.print(text, highlight=False, markup=False)


def _signature_line(report: VerifyReport) -> str:
    sig = report.signature
    if sig is None:
        return "signature: not checked"
    mark = "FAIL " if report.signature_required and sig.status != "valid" else ""
    return f"{mark}signature: {sig.status}: {sig.message}"


def _cmd_key(args: argparse.Namespace, out: Console) -> int:
    from modelport.signing import create_key_pair, key_info

    if args.key_command == "create":
        key = create_key_pair(args.path)
        _plain(out, f"created {args.path} (private, mode 0600; keep it secret) and {key.path}")
    else:
        key = key_info(args.path)
    _plain(out, f"key id: {key.key_id}  (ed25519)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process and return its exit code (tests call this)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # answered without importing torch
        print(f"modelport {__version__}")
        return 0
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            return int(e.code) if isinstance(e.code, int) else 2
        from rich.console import Console  # after parsing: --help and usage errors never load rich's console

        # A pipe, a file or CI (``CI`` set, even on a terminal): plain text, no control sequences, no live display.
        ci = bool(os.environ.get("CI"))
        plain = ci or not sys.stdout.isatty()
        out = Console(width=320, soft_wrap=True, force_terminal=False if ci else None) if plain else Console()
        if args.command == "run":
            return _cmd_run(args, out)
        if args.command == "key":
            return _cmd_key(args, out)
        if args.command == "profile":
            from modelport.profiling.command import profile_command

            return profile_command(args, out)
        if args.command == "doctor":
            from modelport.runtimes.doctor import doctor

            return doctor(as_json=args.json, install=args.install)
        if args.command == "localize":
            from modelport.localize.command import localize_command

            return localize_command(args, out)
        if args.command == "train":
            from modelport.training.command import train_command

            return train_command(args, out)
        return _cmd_verify(args, out)
    except UsageError as e:
        print(f"modelport: error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:
        print(f"modelport: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if (cause := resource_error(e)) is None:
            raise
        # A CI output written after the verdict: the disk, not the model, failed.
        print(f"modelport: error: cannot write {cause.filename or 'a file'}: {cause.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("modelport: interrupted; the previous artifact folder, if any, is untouched", file=sys.stderr)
        return 130


def console_main() -> None:
    try:
        # SIGTERM unwinds like Ctrl-C, so the staging folder is removed and nothing half-written stays; both
        # are remembered, so one that a library swallowed still stops the run at the next stage.
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, interrupt)
        exit_quickly(main())
    except KeyboardInterrupt:
        sys.exit(130)
