"""modelport: export a PyTorch model to deployable formats and prove they compute what it computes.

>>> import modelport
>>> report = modelport.run("mlp", out="artifacts/mlp")
>>> report.verdict
'pass'
>>> modelport.verify("artifacts/mlp").verdict
'pass'
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelport")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from modelport.errors import ExportError, LoadError, ModelportError, StageError, UsageError
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
