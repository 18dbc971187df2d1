"""The pipeline: named stages that build, export, validate and write the artifact folder; and verify."""

from modelport.pipeline.records import Report, StageRecord, VerifyReport
from modelport.pipeline.run import run
from modelport.pipeline.verify import verify

__all__ = ["Report", "StageRecord", "VerifyReport", "run", "verify"]
