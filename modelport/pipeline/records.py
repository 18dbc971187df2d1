"""The run report, which is also ``manifest.json``; and the verify report.

``schema_version`` changes whenever a field changes meaning or disappears.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modelport.format_record import FormatRecord
from modelport.pipeline.settings import RunSettings
from modelport.profiling.records import Profile
from modelport.signature import Signature
from modelport.signing import SignatureStatus
from modelport.validators.records import CandidateResult, Category, OutputCheck, Tolerance, Verdict

__all__ = [
    "READABLE_SCHEMA_VERSIONS",
    "SCHEMA_VERSION",
    "ArtifactFile",
    "Determinism",
    "Environment",
    "Golden",
    "GoldenSet",
    "IntegrityProblem",
    "LostSet",
    "ModelInfo",
    "Report",
    "StageRecord",
    "VerifyReport",
]

# 2 (modelport 0.2): candidates are FORMAT@RUNTIME pairs, many per format, with the runtime's version and
# timings; formats record per-tensor sha256 of weights; options record the runtimes. Version 1 manifests
# (modelport 0.1.0) are a subset: every field added since has a default, so they are read as they are.
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
StageStatus = Literal["ok", "failed", "skipped"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageRecord(_Record):
    name: str
    status: StageStatus
    seconds: float
    reason: str | None = None  # why it failed or was skipped
    notes: list[str] = []
    details: dict[str, Any] = {}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class Environment(_Record):
    modelport: str | None
    python: str
    platform: str
    torch: str | None
    onnx: str | None
    onnxruntime: str | None
    onnxscript: str | None
    safetensors: str | None
    numpy: str | None

    @classmethod
    def current(cls) -> Environment:
        return cls(
            modelport=_version("modelport"),
            python=platform.python_version(),
            platform=f"{sys.platform}-{platform.machine()}",
            torch=_version("torch"),
            onnx=_version("onnx"),
            onnxruntime=_version("onnxruntime"),
            onnxscript=_version("onnxscript"),
            safetensors=_version("safetensors"),
            numpy=_version("numpy"),
        )


class ModelInfo(_Record):
    name: str
    spec: str
    description: str
    class_name: str
    parameters: int
    dtypes: list[str] = []  # parameter dtypes
    seed: int
    weights: str | None = None  # --weights, as given
    weights_sha256: str | None = None


class ArtifactFile(_Record):
    path: str  # relative to the folder, with forward slashes
    format: str  # a format name, or "golden" / "report"
    role: str  # "weights", "model", "external-data", "golden-inputs", "golden-outputs", "report"
    sha256: str
    bytes: int


class GoldenSet(_Record):
    name: str
    kind: str = "random"  # "random", "sweep", "edge", "user"
    description: str
    inputs: str
    outputs: str
    onnx_test_data: str | None = None  # the same set as test_data_set_N/{input,output}_K.pb
    outputs64: str | None = None  # the float outputs of the original re-run in float64


class Golden(_Record):
    """The example input X and the reference outputs, plus the other input sets the same way.

    ``outputs64`` files hold the original's float outputs re-run in float64, from which
    ``verify`` recomputes each check's rounding allowance; ``float64_estimate`` says how they
    were computed ("copy": a float64 copy of the model; "layerwise": one module at a time).
    """

    inputs: str
    outputs: str
    onnx_test_data: str | None = None
    outputs64: str | None = None
    float64_estimate: Literal["copy", "layerwise", "inplace"] | None = None
    sets: list[GoldenSet]


class LostSet(_Record):
    """A generated input set the original model itself fails on: coverage the run could not have."""

    name: str
    kind: str
    reason: str


class Report(_Record):
    """The outcome of ``modelport run``; serialised as ``manifest.json``."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["run"] = "run"
    created_at: str
    environment: Environment
    model: ModelInfo
    signature: Signature
    options: RunSettings
    tolerances: dict[str, Tolerance]
    formats: dict[str, FormatRecord]
    artifacts: list[ArtifactFile]
    golden: Golden | None
    stages: list[StageRecord]
    candidates: list[CandidateResult]
    determinism: Determinism | None = None  # set when --check-determinism ran
    lost_coverage: list[LostSet] = []  # generated input sets dropped because the original fails on them
    profile: Profile | None = None  # set when --profile ran
    notes: list[str] = []
    verdict: Verdict
    output_dir: str | None = None  # where the folder was written; not part of the manifest file

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 1


class Determinism(_Record):
    """What ``--check-determinism`` found: a second export in a new process, file by file."""

    identical: list[str]
    differs: list[str]  # a failure
    allowed_to_differ: list[str]  # differs, but its format is allowed to (TorchScript)


class IntegrityProblem(_Record):
    path: str
    problem: str
    category: Category = "integrity"


class VerifyReport(_Record):
    """The outcome of ``modelport verify``."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["verify"] = "verify"
    folder: str
    model: ModelInfo | None = None  # None when the manifest itself is damaged
    environment: Environment
    recorded_environment: Environment | None = None
    environment_drift: list[str] = []  # runtime versions that differ from the recorded ones
    against: str | None = None  # --against OLD_DIR
    drift: list[OutputCheck] = []  # golden outputs of this folder versus OLD_DIR's, per set x output
    files_checked: int
    integrity: list[IntegrityProblem]
    candidates: list[CandidateResult]
    notes: list[str] = []
    signature: SignatureStatus | None = None  # manifest.sig: who wrote the manifest (None: not checked)
    signature_required: bool = False  # --require-signature or --trusted-key: anything but valid fails
    # Why program files (TorchScript, .pt2) were loaded: a valid signature or --trust; None when they were not.
    trusted: str | None = None
    verdict: Verdict

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 1
