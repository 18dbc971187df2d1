"""Localising the failing candidates of an artifact folder (``run``, ``verify --model``, ``modelport localize``).

The reference is the model's code with the folder's weights: ``run`` passes the model it built;
``verify --model`` and ``localize --model`` build it from the SPEC the user names (never from a spec
found in a manifest, which would run a stranger's code) and load the folder's weights file into it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import UsageError
from modelport.localize.api import first_failing_set, localizable, localize_candidate
from modelport.validators.candidate import ReplaySet
from modelport.validators.records import CandidateResult

if TYPE_CHECKING:
    import torch

    from modelport.format_record import FormatRecord
    from modelport.pipeline.records import Report
    from modelport.signature import Signature

__all__ = ["localize_results", "reference_from_spec"]

_WEIGHTS_FORMATS = ("safetensors", "state_dict")


def localize_results(
    model: torch.nn.Module,
    signature: Signature,
    folder: Path,
    formats: dict[str, FormatRecord],
    results: Sequence[CandidateResult],
    replays: Iterable[ReplaySet],
    factory: Callable[[], Any] | None,
    *,
    every: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[CandidateResult]:
    """``results`` with ``localization`` set on each failing candidate (``every``: on each that ran)."""
    from modelport import exporters
    from modelport.runtimes.base import Artifact

    sets = {r.name: r for r in replays}
    out = []
    for result in results:
        wanted = localizable(result) or (every and result.status == "ok" and result.format in formats)
        name = first_failing_set(result) or (next(iter(sets), None) if every else None)
        if not wanted or name is None or name not in sets or result.format not in formats:
            out.append(result)
            continue
        if progress is not None:
            progress(f"localising {result.candidate} on input set {name}")
        record, kind = formats[result.format], exporters.get(result.format).kind
        artifact = Artifact(result.format, kind, folder, tuple(record.files), signature, factory, dict(record.details))
        replay = sets[name]
        found = localize_candidate(model, signature, artifact, result, name, replay.inputs, replay.reference)
        out.append(result.model_copy(update={"localization": found}))
    return out


def reference_from_spec(spec: str, folder: Path, manifest: Report) -> tuple[torch.nn.Module, Callable[[], Any]]:
    """The model built from the user's ``spec`` with the folder's weights; and a factory of fresh instances.

    With a weights file in the folder the model is built on the meta device and takes the file's tensors, as
    the weights runtimes load it (no initialisation to throw away, one copy of the weights); without one it is
    the seeded build, which is what the run exported.
    """
    from modelport.models.source import resolve_model
    from modelport.runtimes.base import Artifact
    from modelport.runtimes.torch_eager import weights_clone

    source = resolve_model(spec)
    weights = next((f for f in _WEIGHTS_FORMATS if f in manifest.formats), None)
    if weights is not None:
        files = tuple(manifest.formats[weights].files)
        model = weights_clone(Artifact(weights, "weights", folder, files, manifest.signature, source.factory))
        return model, source.factory
    if manifest.model.weights is not None:
        raise UsageError(
            f"the folder holds no weights file (state_dict, safetensors) and its model was built with --weights "
            f"{manifest.model.weights}: re-run `modelport run` with a weights format to localise"
        )
    model, _ = source.build(manifest.model.seed)
    model.eval()
    return model, source.factory


def localize_verified(
    root: Path,
    manifest: Report,
    spec: str,
    results: dict[str, CandidateResult],
    replays: Sequence[ReplaySet],
    *,
    every: bool,
    progress: Callable[[str], None] | None,
) -> dict[str, CandidateResult]:
    """``verify --model SPEC`` / ``modelport localize``: the verified candidates, localised from the user's code."""
    if not replays or not (every or any(localizable(r) for r in results.values())):
        return results
    model, factory = reference_from_spec(spec, root, manifest)
    done = localize_results(
        model, manifest.signature, root, manifest.formats, list(results.values()), replays, factory,
        every=every, progress=progress,
    )  # fmt: skip
    return {r.candidate: r for r in done}
