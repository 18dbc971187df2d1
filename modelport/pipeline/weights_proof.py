"""verify's proof of a user's weights files: each against the artifacts of the folder that just passed their replay.

A weights file cannot run without the model's code, which verify never imports; its tensors are proven
against the verified ``.pt2`` program (or ONNX file) instead (``verify_weights``), one file at a time.
"""

from __future__ import annotations

from pathlib import Path

from modelport import exporters
from modelport.exporters.weights import WeightsExporter
from modelport.pipeline.records import Report
from modelport.pipeline.verify_weights import (
    REPLAYED,
    Anchors,
    check_weights,
    program_fingerprints,
    program_state,
    read_weights,
    stand_in_for_program,
)
from modelport.validators.records import CandidateResult, Tolerance

__all__ = ["prove_weights"]


def prove_weights(
    root: Path,
    manifest: Report,
    results: dict[str, CandidateResult],
    weights: list[str],
    tolerances: dict[str, Tolerance],
    *,
    signed: bool,
) -> None:
    """Weights files of a user's model, proven against the artifacts that just passed; every passing file's proof.

    Under a valid signature (``signed``), the manifest's per-tensor sha256 prove what no artifact holds.
    """
    for name, result in results.items():
        if result.verdict == "pass" and result.status == "ok":
            results[name] = result.model_copy(update={"proof": REPLAYED})
    if not weights:
        return
    # A format proves tensors only when every runtime that ran its file passed it.
    ran = [r for r in results.values() if r.status in ("ok", "failed")]
    passed = {r.format for r in ran if r.verdict == "pass"} - {r.format for r in ran if r.verdict != "pass"}
    anchors = Anchors(root, manifest.formats, lambda fmt: fmt in passed)
    recorded = next((c for c in manifest.candidates if c.format == "torch_export"), None)
    no_program = program_state(
        "torch_export" in manifest.options.formats,
        "torch_export" in manifest.formats,
        next((r for r in results.values() if r.format == "torch_export"), None),
        recorded.reason if recorded is not None and recorded.status == "skipped" else None,
    )
    names: dict[str, set[str]] = {}
    for name in weights:  # the tensor names of every file first (each file's tensors dropped at once)
        exporter = exporters.get(name)
        assert isinstance(exporter, WeightsExporter)
        read = read_weights(exporter, root, manifest.formats[name].files, tolerances[name])
        if isinstance(read, CandidateResult):
            results[exporter.candidate] = read
        else:
            names[name] = set(read)
        del read
    # The program's tensors by sha256 and shape, read and let go before any weights file is read again: a file
    # whose tensors all match is compared with itself standing in for the program, so weights and program (6.4 GB
    # each for the biggest model measured) are never held together; any other file, with the program itself.
    program = program_fingerprints(root, manifest.formats) if "torch_export" in passed and names else None
    for name in names:
        # Then one file at a time, read again: a big model's weights are never held twice here.
        exporter = exporters.get(name)
        assert isinstance(exporter, WeightsExporter)
        tol = tolerances[name]
        files = manifest.formats[name].files
        state = read_weights(exporter, root, files, tol)
        if isinstance(state, CandidateResult):
            results[exporter.candidate] = state
            continue
        peers = {manifest.formats[n].files[0]: keys for n, keys in names.items() if n != name}
        signed_digests = manifest.formats[name].tensors if signed else None
        results[exporter.candidate] = check_weights(
            exporter,
            root,
            files,
            tol,
            anchors,
            no_program,
            state=state,
            peers=peers,
            signed=signed_digests,
            stand_in=stand_in_for_program(state, program),
        )
        del state  # before the next file is read
