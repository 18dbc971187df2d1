"""``RunContext``: what one ``modelport run`` knows, filled in stage by stage.

Inputs (the model source, the folder, the options and settings) are set at the start; each stage
reads what earlier ones produced and adds its own: ``build`` the built model, ``tensors`` nothing
but its record, each export stage a ``FormatRecord`` (or why it was skipped), ``validate`` the
golden data and the candidates, ``determinism`` the second export's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.validators.candidate import ReplaySet
from modelport.validators.records import CandidateResult, Tolerance

if TYPE_CHECKING:
    from modelport.exporters.base import FormatRecord
    from modelport.models import ModelSource
    from modelport.pipeline.build import Built
    from modelport.pipeline.inputs import InputSet
    from modelport.pipeline.offload import Offloaded
    from modelport.pipeline.options import RunOptions
    from modelport.pipeline.outdir import OutputFolder
    from modelport.pipeline.records import Determinism, Golden, LostSet
    from modelport.pipeline.settings import RunSettings
    from modelport.pipeline.stages import StageRunner
    from modelport.profiling.records import Profile

__all__ = ["RunContext"]


@dataclass
class RunContext:
    source: ModelSource
    out: OutputFolder
    options: RunOptions
    settings: RunSettings
    stages: StageRunner[RunContext]
    check_determinism: bool = False
    # Filled in by the stages, in order.
    built: Built | None = None
    user: InputSet | None = None  # --inputs, checked against the signature before any export
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    records: dict[str, FormatRecord] = field(default_factory=dict)  # format -> what its export wrote
    skipped: dict[str, str] = field(default_factory=dict)  # format -> why it cannot serve this model
    golden: Golden | None = None
    candidates: list[CandidateResult] = field(default_factory=list)
    replays: list[ReplaySet] = field(default_factory=list)  # the input sets with the original's outputs
    offloaded: Offloaded | None = None  # the original's weights, set aside during a big model's conversions
    lost: list[LostSet] = field(default_factory=list)
    weight_bytes: int = 0  # the model's parameters and buffers, measured by the build stage
    determinism: Determinism | None = None
    profile: Profile | None = None  # --profile

    @property
    def folder(self) -> Path:
        """The staging folder every stage writes into."""
        return self.out.staging

    @property
    def model(self) -> Built:
        """The built model; only stages after ``build`` run, so it is there."""
        assert self.built is not None, "a stage ran before build"
        return self.built
