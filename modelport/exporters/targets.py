"""``--target onnxruntime==X.Y``: will the ONNX files load in that onnxruntime release?

The table below is onnxruntime's own compatibility matrix (``docs/reference/compatibility.md``
in microsoft/onnxruntime, "ONNX opset support": the newest ai.onnx opset and ONNX IR
version each release reads). A release newer than the table is held to the table's
newest row; the installed release is also tried for real when it is the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import UsageError

__all__ = ["ORT_SUPPORT", "Target", "oldest_release_for", "parse_target"]

# onnxruntime (major, minor) -> (newest ai.onnx opset, newest IR version)
ORT_SUPPORT: dict[tuple[int, int], tuple[int, int]] = {
    (1, 20): (21, 10),
    (1, 19): (21, 10),
    (1, 18): (21, 10),
    (1, 17): (20, 9),
    (1, 16): (19, 9),
    (1, 15): (19, 8),
    (1, 14): (18, 8),
    (1, 13): (17, 8),
    (1, 12): (17, 8),
    (1, 11): (16, 8),
    (1, 10): (15, 8),
    (1, 9): (15, 8),
    (1, 8): (14, 7),
    (1, 7): (13, 7),
    (1, 6): (13, 7),
}


@dataclass(frozen=True)
class Target:
    runtime: str
    version: tuple[int, int]
    max_opset: int
    max_ir: int
    assumed: bool  # newer than the table: held to its newest row

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.version[0]}.{self.version[1]}"

    def problem(self, opset: int | None, ir_version: int | None) -> str | None:
        """Why a file with this opset and IR version will not load in the target, or None."""
        issues = []
        if ir_version is not None and ir_version > self.max_ir:
            issues.append(f"IR version {ir_version} > {self.max_ir}")
        if opset is not None and opset > self.max_opset:
            issues.append(f"opset {opset} > {self.max_opset}")
        if not issues:
            return None
        return f"{' and '.join(issues)}, the newest {self.label} reads"


def oldest_release_for(opset: int, ir_version: int) -> str | None:
    """The oldest onnxruntime release in the table that reads this opset and IR version."""
    fitting = [v for v, (o, ir) in ORT_SUPPORT.items() if o >= opset and ir >= ir_version]
    if not fitting:
        return None
    major, minor = min(fitting)
    return f"onnxruntime=={major}.{minor}"


def parse_target(text: str) -> Target:
    match = re.fullmatch(r"\s*onnxruntime\s*==\s*(\d+)\.(\d+)(?:\.\d+)?\s*", text)
    if not match:
        raise UsageError(f"--target {text!r}: write onnxruntime==MAJOR.MINOR, e.g. --target onnxruntime==1.17")
    version = (int(match.group(1)), int(match.group(2)))
    if version in ORT_SUPPORT:
        opset, ir = ORT_SUPPORT[version]
        return Target("onnxruntime", version, opset, ir, assumed=False)
    newest = max(ORT_SUPPORT)
    if version > newest:
        opset, ir = ORT_SUPPORT[newest]
        return Target("onnxruntime", version, opset, ir, assumed=True)
    oldest = min(ORT_SUPPORT)
    raise UsageError(
        f"--target onnxruntime=={version[0]}.{version[1]} is older than {oldest[0]}.{oldest[1]}, the oldest release "
        "modelport knows the limits of"
    )
