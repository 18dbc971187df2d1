"""``run --profile``: the stage that times every candidate that passed validation, into ``Report.profile``."""

from __future__ import annotations

from modelport.pipeline.context import RunContext
from modelport.pipeline.records import StageRecord
from modelport.pipeline.stages import Stage
from modelport.profiling.profiler import Target, profile_candidates
from modelport.profiling.records import ProfileSettings

__all__ = ["ProfileStage"]

IN_MEMORY = "the model was given in memory (Python API): a profiling process cannot rebuild its architecture"


class ProfileStage(Stage[RunContext]):
    """Each passing candidate in its own process, at each --batch-sizes size; figures, never a verdict."""

    name = "profile"

    def __init__(self, settings: ProfileSettings | None = None) -> None:
        self.settings = settings or ProfileSettings()

    def skip_reason(self, ctx: RunContext) -> str | None:
        if ctx.options.profile is None:
            return "not requested (--profile)"
        if not self._passed(ctx):
            return "no candidate passed validation: nothing to profile"
        return None

    @staticmethod
    def _passed(ctx: RunContext) -> list[str]:
        return [c.candidate for c in ctx.candidates if c.verdict == "pass" and c.status == "ok"]

    def run(self, ctx: RunContext, record: StageRecord) -> None:
        assert ctx.options.profile is not None and ctx.golden is not None
        in_memory = ctx.source.spec.startswith("python:")
        target = Target(
            folder=ctx.folder,
            signature=ctx.model.signature,
            formats=ctx.records,
            inputs=ctx.golden.inputs,
            model=None if in_memory else ctx.source.spec,
            trust="written by this run",  # the staging folder this run wrote, as the run's own grant says
            no_model_reason=IN_MEMORY,
        )
        profile = profile_candidates(
            target,
            self._passed(ctx),
            ctx.options.profile,
            self.settings,
            timeout=ctx.options.runtime_timeout,
            progress=ctx.stages.progress,
        )
        ctx.profile = profile
        record.details["fastest"] = dict(profile.fastest)
        record.details["rows"] = len(profile.rows)
        record.notes.extend(f"not profiled: {s.candidate}" + (f" at batch {s.batch}" if s.batch else "") +
                            f": {s.reason}" for s in profile.skipped)  # fmt: skip
