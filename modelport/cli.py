"""The ``modelport`` command. It only parses arguments and calls the Python API.

Exit codes: 0 everything selected ran and passed; 1 a check failed or something selected
could not run; 2 bad usage or bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from rich.console import Console

from modelport import __version__, runtimes
from modelport.errors import UsageError, WriteError, resource_error

if TYPE_CHECKING:
    from modelport.pipeline.records import StageRecord, VerifyReport

__all__ = ["build_parser", "console_main", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and ``--help``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 1e-5, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from modelport import exporters  # imports torch: only once a command needs it

    parser = _Parser(
        prog="modelport",
        description="Export a PyTorch model to deployable formats and prove every artifact computes what "
        "the original computes.",
    )
    parser.add_argument("--version", action="version", version=f"modelport {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="build, export, validate and write the artifact folder")
    run.add_argument(
        "--model",
        default="mlp",
        metavar="SPEC",
        help="mlp (built in, default), path/to/file.py:callable or package.module:callable; the callable returns "
        "an nn.Module or (module, example_inputs)",
    )
    run.add_argument("--out", metavar="DIR", help="artifact folder (default artifacts/<model name>)")
    run.add_argument(
        "--formats",
        metavar="LIST",
        help=f"comma-separated formats, or all (known: {', '.join(exporters.names())}; "
        f"default: {','.join(exporters.DEFAULT_FORMATS)})",
    )
    run.add_argument(
        "--input",
        dest="inputs",
        action="append",
        metavar="NAME=SHAPE[:DTYPE]",
        help="describe an input when the model has no example inputs, e.g. x=2x20:float32 (repeatable)",
    )
    run.add_argument("--inputs", dest="inputs_file", metavar="FILE.npz", help="real inputs to replay, by name")
    run.add_argument(
        "--weights", metavar="FILE", help="trained weights: a state_dict .pt, .safetensors or a modelport checkpoint"
    )
    run.add_argument(
        "--dynamic",
        action="append",
        metavar="NAME:AXIS=label,...",
        help="dynamic axes besides the batch axis, e.g. ids:1=seq (repeatable)",
    )
    run.add_argument("--seed", type=_int, default=0, metavar="N", help="seed for weights and inputs (default 0)")
    run.add_argument(
        "--samples", type=_int, default=3, metavar="N", help="seeded random input sets besides X (default 3)"
    )
    run.add_argument("--atol", type=_nonneg_float, metavar="X", help="absolute tolerance for every non-exact format")
    run.add_argument("--rtol", type=_nonneg_float, metavar="X", help="relative tolerance for every non-exact format")
    run.add_argument(
        "--tol",
        action="append",
        metavar="LIST",
        help="per-format tolerances FORMAT=ATOL,RTOL[,FORMAT=ATOL,RTOL...], e.g. onnx=1e-5,1e-4 (repeatable)",
    )
    run.add_argument("--onnx-exporter", choices=["dynamo", "legacy"], default="dynamo", help="default dynamo")
    run.add_argument("--opset", type=_int, metavar="N", help="ONNX opset (default: the exporter's)")
    run.add_argument("--torchscript-method", choices=["trace", "script"], default="trace", help="default trace")
    run.add_argument(
        "--runtimes",
        metavar="LIST|all",
        help=f"runtimes that run the artifacts (default {','.join(runtimes.DEFAULT)}; all: {_all_runtimes()})",
    )
    _timeout_flag(run)
    run.add_argument(
        "--target", metavar="onnxruntime==X.Y", help="ONNX files must load in this onnxruntime release (IR, opset)"
    )
    run.add_argument(
        "--check-determinism",
        action="store_true",
        help="export again in a new process and compare every file's hash (TorchScript may differ)",
    )
    _edges_flag(run)
    run.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty --out folder modelport did not write: it is moved aside to a hidden sibling, "
        "not deleted (never a folder holding a .git or the --model file)",
    )
    run.add_argument(
        "--sign-with",
        metavar="KEYFILE",
        help="also sign the manifest with this Ed25519 private key (from `modelport key create`), for sharing",
    )
    run.add_argument("--quiet", action="store_true", help="print only the verdict line")
    run.add_argument("--details", action="store_true", help="print every check, not only the failing ones")
    _ci_flags(run)

    verify = sub.add_parser("verify", help="check an artifact folder's hashes and replay its golden data")
    verify.add_argument("folder", metavar="DIR", help="a folder written by `modelport run`")
    verify.add_argument(
        "--runtimes",
        metavar="LIST|all",
        help=f"runtimes to replay in (default {','.join(runtimes.DEFAULT)}; all: {_all_runtimes()})",
    )
    _timeout_flag(verify)
    verify.add_argument(
        "--target", metavar="onnxruntime==X.Y", help="check that the ONNX files load in this onnxruntime release"
    )
    verify.add_argument("--against", metavar="OLD_DIR", help="report how far the golden outputs moved from OLD_DIR's")
    verify.add_argument(
        "--max-drift", metavar="ATOL[,RTOL]", help="with --against: fail when an output moved more than this"
    )
    verify.add_argument("--atol", type=_nonneg_float, metavar="X", help="judge every non-exact format by this atol")
    verify.add_argument("--rtol", type=_nonneg_float, metavar="X", help="judge every non-exact format by this rtol")
    verify.add_argument(
        "--tol", action="append", metavar="LIST", help="per-format tolerances FORMAT=ATOL,RTOL (repeatable)"
    )
    verify.add_argument(
        "--allow-loose",
        action="store_true",
        help="accept recorded tolerances looser than the documented defaults (otherwise an integrity failure)",
    )
    _edges_flag(verify)
    verify.add_argument(
        "--require-proof",
        action="store_true",
        help="fail weights files that verify can only call unproven (tensors no verified artifact holds)",
    )
    verify.add_argument(
        "--require-signature",
        action="store_true",
        help="fail unless manifest.sig is a valid signature by the local key or a --trusted-key",
    )
    verify.add_argument(
        "--trusted-key",
        action="append",
        default=[],
        metavar="FILE.pub",
        help="an Ed25519 public key whose signature is trusted (repeatable); implies --require-signature",
    )
    verify.add_argument(
        "--trust",
        action="store_true",
        help="load TorchScript and .pt2 files (programs: they run code) even without a valid signature",
    )
    verify.add_argument("--quiet", action="store_true", help="print only the verdict line")
    verify.add_argument("--details", action="store_true", help="print every check, not only the failing ones")
    _ci_flags(verify)

    key = sub.add_parser("key", help="create or show an Ed25519 key for signing manifests")
    key_sub = key.add_subparsers(dest="key_command", required=True, parser_class=_Parser)
    create = key_sub.add_parser("create", help="write a new private key (PEM, mode 0600) at PATH and PATH.pub")
    create.add_argument("path", metavar="PATH")
    show = key_sub.add_parser("show", help="print the key id of a private or public key file")
    show.add_argument("path", metavar="PATH")

    doctor = sub.add_parser("doctor", help="list every runtime: available or not, its version, how to enable it")
    doctor.add_argument("--json", action="store_true", help="print the same as JSON")
    doctor.add_argument("--install", action="store_true", help="install what is missing first (make runtimes)")
    return parser


def _timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime-timeout",
        type=float,
        metavar="SECONDS",
        help="kill a runtime's program (node, browser, C++) that runs longer than this (default 300)",
    )


def _edges_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict-edges",
        action="store_true",
        help="lossy formats (fp16, int8) also gate on the synthetic edge sets (zeros, inputs x100)",
    )


def _ci_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CI outputs (written outside the artifact folder)")
    group.add_argument("--report-json", metavar="PATH", help="the full typed report as JSON (schemas/ has its schema)")
    group.add_argument(
        "--junit-xml", metavar="PATH", help="JUnit XML: one test case per candidate x input set x output"
    )
    group.add_argument("--summary-md", metavar="PATH", help="a compact markdown summary for a CI job page")


def _ci_paths(args: argparse.Namespace, folder: Path | None) -> dict[str, Path | None]:
    """The CI output paths, checked before any work: writable file paths (pre-flight), never inside the
    artifact folder (verify would flag them)."""
    from modelport.pipeline.preflight import check_output_file

    paths: dict[str, Path | None] = {}
    for key, flag in (("json_path", "report_json"), ("junit_path", "junit_xml"), ("summary_path", "summary_md")):
        value = getattr(args, flag)
        path = Path(value) if value else None
        if path is not None:
            name = f"--{flag.replace('_', '-')}"
            if folder is not None and path.resolve().is_relative_to(folder.resolve()):
                raise UsageError(f"{name} {path} lies inside the artifact folder; write it elsewhere")
            check_output_file(name, path)
        paths[key] = path
    return paths


def _all_runtimes() -> str:
    return ",".join(runtimes.names())


def _cmd_run(args: argparse.Namespace, out: Console) -> int:
    from modelport.pipeline.report import print_parity, print_stage
    from modelport.pipeline.run import run

    started = False

    def on_stage(record: StageRecord) -> None:
        nonlocal started
        if not started:  # after the arguments were accepted, so an error is the only output
            out.print(f"modelport {__version__}: run --model {args.model}", highlight=False)
            started = True
        print_stage(out, record)

    # Refused before any work; the default folder is known only after the model is resolved, checked again after.
    _ci_paths(args, Path(args.out) if args.out is not None else None)
    report = run(
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
        force=args.force,
        sign_with=args.sign_with,
        on_stage=None if args.quiet else on_stage,
    )
    from modelport.pipeline.outdir import SET_ASIDE

    for note in report.notes:
        if note.startswith(SET_ASIDE):  # always said: it is how the user undoes the replace
            print(f"modelport: {note} (move it back to undo; delete it when done)", file=sys.stderr)
    if not args.quiet:
        notes = [f"{s.name}: {n}" for s in report.stages for n in s.notes if not n.startswith("load with")]
        for note in notes:
            out.print(f"  note: {note}", highlight=False)
        print_parity(out, report, details=args.details)
    out.print(f"verdict: {report.verdict.upper()}  ({report.output_dir})", highlight=False)
    from modelport.pipeline.ci_outputs import write_ci_outputs

    write_ci_outputs(report, **_ci_paths(args, Path(report.output_dir or ".")))
    return report.exit_code


def _cmd_verify(args: argparse.Namespace, out: Console) -> int:
    from modelport.pipeline.report import print_drift, print_parity
    from modelport.pipeline.verify import verify

    ci_paths = _ci_paths(args, Path(args.folder))
    report = verify(
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
    )
    signature = _signature_line(report)
    # An unproven file never counts as a pass: always said, even with --quiet.
    unproven = [
        f"{c.candidate} is unproven: {c.proof} ({c.reason})" for c in report.candidates if c.verdict == "unproven"
    ]
    if not args.quiet:
        out.print(f"modelport {__version__}: verify {args.folder} ({report.files_checked} files)", highlight=False)
        for problem in report.integrity:
            out.print(f"  [red]{problem.category} FAIL[/]: {problem.path}: {problem.problem}", highlight=False)
        for note in report.notes:
            out.print(f"  note: {note}", highlight=False)
        for drift in report.environment_drift:
            out.print(f"  [yellow]warning[/]: {drift}", highlight=False)
        for line in unproven:
            mark = "[red]FAIL[/] (--require-proof)" if args.require_proof else "[yellow]warning[/]"
            out.print(f"  {mark}: {line}", highlight=False)
        out.print(f"  {signature}", highlight=False)
        if report.trusted is not None:
            out.print(f"  programs (TorchScript, .pt2) loaded: {report.trusted}", highlight=False)
        print_parity(out, report, details=args.details)
        for cand in report.candidates:  # what was proven, file by file
            if cand.proof and cand.verdict == "pass":
                out.print(f"  proof: {cand.candidate}: {cand.proof}", highlight=False)
        if report.against is not None:
            print_drift(out, report)
    else:
        for problem in report.integrity:
            out.print(f"{problem.category} FAIL: {problem.path}: {problem.problem}", highlight=False)
        for cand in report.candidates:
            for check in cand.failures():
                out.print(f"FAIL {cand.candidate} {check.input_set} {check.output}: {check.message}", highlight=False)
            if cand.verdict == "fail" and not cand.checks:
                out.print(f"FAIL {cand.candidate}: {cand.reason}", highlight=False)
        for check in report.drift:
            if check.verdict == "fail":
                out.print(f"FAIL drift {check.input_set} {check.output}: {check.message}", highlight=False)
        for note in report.notes:
            if note.startswith("the run that wrote this folder failed"):
                out.print(f"FAIL {note}", highlight=False)
        for drift in report.environment_drift:
            out.print(f"warning: {drift}", highlight=False)
        for line in unproven:
            out.print(f"{'FAIL' if args.require_proof else 'warning'}: {line}", highlight=False)
        if report.signature_required and report.signature and report.signature.status != "valid":
            out.print(signature, highlight=False)
    out.print(f"verdict: {report.verdict.upper()}", highlight=False)
    from modelport.pipeline.ci_outputs import write_ci_outputs

    write_ci_outputs(report, **ci_paths)
    return report.exit_code


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
        out.print(f"created {args.path} (private, mode 0600; keep it secret) and {key.path}", highlight=False)
    else:
        key = key_info(args.path)
    out.print(f"key id: {key.key_id}  (ed25519)", highlight=False)
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the staging folder is removed and nothing half-written stays.
    raise KeyboardInterrupt


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
        out = Console(width=320, soft_wrap=True) if not sys.stdout.isatty() else Console()
        if args.command == "run":
            return _cmd_run(args, out)
        if args.command == "key":
            return _cmd_key(args, out)
        if args.command == "doctor":
            from modelport.runtimes.doctor import doctor

            return doctor(as_json=args.json, install=args.install)
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
        signal.signal(signal.SIGTERM, _terminate)
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
