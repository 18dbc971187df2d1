"""The ``modelport`` command line's parser: flags and their help, nothing else.

Kept apart from the commands (``modelport.cli``) so that building it loads no model code.
"""

from __future__ import annotations

import argparse
from typing import Any

from modelport import __version__, runtimes

__all__ = ["build_parser"]


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
    from modelport import formats  # the names alone: the exporters (and torch) load only when a command runs

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
        help=f"comma-separated formats, or all (known: {', '.join(formats.FORMATS)}; "
        f"default: {','.join(formats.DEFAULT_FORMATS)})",
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
    run.add_argument(
        "--log-json", metavar="PATH", help="write every stage event (start, progress, end) as one JSON line, live"
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
        "--no-localize",
        action="store_true",
        help="on a parity failure, do not look for the first diverging module (on by default)",
    )
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
    _profile_flags(run, "--profile")
    _output_flags(run)

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
    verify.add_argument(
        "--model",
        metavar="SPEC",
        help="the model's code (as run's --model): on a parity failure, name the first diverging module; "
        "the code is imported and runs, and is never taken from the manifest",
    )
    _output_flags(verify)
    _localize_parser(sub)
    _train_parser(sub)

    profile = sub.add_parser("profile", help="time every candidate of an artifact folder at several batch sizes")
    profile.add_argument("folder", metavar="DIR", help="a folder written by `modelport run`")
    profile.add_argument(
        "--runtimes",
        metavar="LIST|all",
        help=f"runtimes to time (default {','.join(runtimes.DEFAULT)}; all: {_all_runtimes()})",
    )
    _profile_flags(profile, None)
    _timeout_flag(profile)
    _trust_flags(profile)
    profile.add_argument(
        "--sign-with", metavar="KEYFILE", help="renew a valid signature with this Ed25519 private key too"
    )
    profile.add_argument("--json", metavar="PATH", help="also write the profile as JSON here (outside the folder)")

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


def _profile_flags(parser: argparse.ArgumentParser, switch: str | None) -> None:
    if switch is not None:
        parser.add_argument(
            switch,
            action="store_true",
            help="time every candidate that passed (p50, p95, items/s) at --batch-sizes, each in its own process",
        )
    parser.add_argument("--batch-sizes", metavar="LIST", help="batch sizes to time, e.g. 1,8,64 (the default)")


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


def _output_flags(parser: argparse.ArgumentParser) -> None:
    """What run and verify print, and the CI outputs they write."""
    parser.add_argument("--quiet", action="store_true", help="print only the verdict line")
    parser.add_argument("--details", action="store_true", help="print every check, not only the failing ones")
    _ci_flags(parser)


def _ci_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CI outputs (written outside the artifact folder)")
    group.add_argument("--report-json", metavar="PATH", help="the full typed report as JSON (schemas/ has its schema)")
    group.add_argument(
        "--junit-xml", metavar="PATH", help="JUnit XML: one test case per candidate x input set x output"
    )
    group.add_argument("--summary-md", metavar="PATH", help="a compact markdown summary for a CI job page")
    group.add_argument(
        "--report-html", metavar="PATH", help="the report as one self-contained HTML page (charts, no network)"
    )


def _all_runtimes() -> str:
    return ",".join(runtimes.names())


def _localize_parser(sub: Any) -> None:
    """``modelport localize DIR --model SPEC``: verify's replay, then every candidate judged module by module."""
    localize = sub.add_parser(
        "localize", help="name the first module whose output diverges, for each candidate of an artifact folder"
    )
    localize.add_argument("folder", metavar="DIR", help="a folder written by `modelport run`")
    localize.add_argument(
        "--model",
        metavar="SPEC",
        help="the model's code (as run's --model); required: a spec in the manifest is never imported",
    )
    localize.add_argument("--runtimes", metavar="LIST|all", help="runtimes whose candidates to localise")
    localize.add_argument("--json", metavar="PATH", help="write the localisations as JSON here")
    _trust_flags(localize)


def _train_parser(sub: Any) -> None:
    """``modelport train``: a deterministic training run that checkpoints and resumes bit-identically."""
    train = sub.add_parser("train", help="train with checkpoints every K steps; --resume continues bit-identically")
    train.add_argument(
        "--model",
        default="mlp",
        metavar="SPEC",
        help="mlp (built in, with a seeded synthetic task) or a callable whose module defines training_task()",
    )
    train.add_argument("--out", required=True, metavar="DIR", help="checkpoints/ and, at the end, weights.pt go here")
    train.add_argument("--steps", required=True, type=_int, metavar="N", help="train until step N")
    train.add_argument(
        "--checkpoint-every", required=True, type=_int, metavar="K", help="save a checkpoint every K steps"
    )
    train.add_argument("--keep", type=_int, default=3, metavar="M", help="keep the newest M checkpoints (default 3)")
    train.add_argument(
        "--resume", action="store_true", help="continue from the newest valid checkpoint in --out (none: start)"
    )
    train.add_argument("--seed", type=_int, default=0, metavar="S", help="seeds the model, data and RNGs (default 0)")
    train.add_argument(
        "--threads", type=_int, default=1, metavar="N", help="torch intra-op threads; part of the run (default 1)"
    )


def _trust_flags(parser: argparse.ArgumentParser) -> None:
    """Which folders' programs (TorchScript, .pt2) a command that reads a folder may load."""
    parser.add_argument(
        "--trusted-key", action="append", default=[], metavar="FILE.pub", help="an Ed25519 public key trusted here"
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load TorchScript and .pt2 files (programs: they run code) even without a valid signature",
    )
