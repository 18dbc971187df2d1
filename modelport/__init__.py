"""modelport: export a PyTorch model to deployable formats and prove they compute what it computes.

    >>> import modelport
    >>> report = modelport.run("mlp", out="artifacts/mlp")
    >>> report.verdict
    'pass'
    >>> modelport.verify("artifacts/mlp").verdict
    'pass'

The heavy parts (torch, onnx) are imported on first use, so ``modelport --version`` is instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelport._lazy import lazy_attributes
from modelport._version import __version__
from modelport.errors import ExportError, LoadError, ModelportError, StageError, UsageError

if TYPE_CHECKING:
    from modelport.pipeline.records import Report, VerifyReport
    from modelport.pipeline.run import run
    from modelport.pipeline.verify import verify

__all__ = [
    "ExportError",
    "LoadError",
    "ModelportError",
    "Report",
    "StageError",
    "UsageError",
    "VerifyReport",
    "__version__",
    "run",
    "verify",
]

_LAZY = {
    "Report": "modelport.pipeline.records",
    "VerifyReport": "modelport.pipeline.records",
    "run": "modelport.pipeline.run",
    "verify": "modelport.pipeline.verify",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
