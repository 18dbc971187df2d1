"""``verify DIR --against OLD_DIR``: how far this folder's golden outputs moved from another folder's.

Sets are matched by name and compared only when their inputs are identical; each output
gets the usual figures (max abs/rel error, cosine). Drift is reported, not judged, unless
``--max-drift ATOL[,RTOL]`` is given: a new release may change outputs on purpose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelport.errors import UsageError
from modelport.fsutil import sha256_file
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import read_manifest
from modelport.pipeline.records import Report
from modelport.pipeline.verify_manifest import inside
from modelport.validators.compare import compare_array
from modelport.validators.records import OutputCheck, Tolerance

__all__ = ["compare_golden", "parse_max_drift"]


def parse_max_drift(text: str | None) -> Tolerance | None:
    if text is None:
        return None
    from modelport.validators.tolerance import parse_float

    atol_text, _, rtol_text = text.partition(",")
    return Tolerance(
        atol=parse_float(atol_text, "--max-drift atol"),
        rtol=parse_float(rtol_text, "--max-drift rtol") if rtol_text else 0.0,
        source="--max-drift",
    )


def _golden_sets(folder: Path, manifest: Report) -> dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """name -> (inputs, outputs), for the sets whose files still match the manifest's hashes."""
    if manifest.golden is None:
        return {}
    hashes = {a.path: a.sha256 for a in manifest.artifacts}
    listing = [("example", manifest.golden.inputs, manifest.golden.outputs)]
    listing += [(s.name, s.inputs, s.outputs) for s in manifest.golden.sets]
    sets = {}
    for name, inputs, outputs in listing:
        paths = [inside(folder, inputs), inside(folder, outputs)]
        if all(
            p is not None and p.is_file() and hashes.get(rel) == sha256_file(p)
            for p, rel in zip(paths, (inputs, outputs), strict=True)
        ):
            sets[name] = (read_npz(paths[0]), read_npz(paths[1]))  # type: ignore[arg-type]
    return sets


def compare_golden(
    new_folder: Path, new: Report, old_folder: Path, max_drift: Tolerance | None
) -> tuple[list[OutputCheck], list[str]]:
    """Drift checks per matching set x output, and notes on what could not be compared."""
    try:
        old = read_manifest(old_folder)
    except UsageError as e:
        raise UsageError(f"--against: {e}") from e
    notes: list[str] = []
    new_sets, old_sets = _golden_sets(new_folder, new), _golden_sets(old_folder, old)
    tol = max_drift or Tolerance(atol=0.0, rtol=0.0, source="informational")
    checks: list[OutputCheck] = []
    for name, (inputs, outputs) in new_sets.items():
        if name not in old_sets:
            notes.append(f"drift: set {name} is not in {old_folder}")
            continue
        old_inputs, old_outputs = old_sets[name]
        same = inputs.keys() == old_inputs.keys() and all(np.array_equal(inputs[k], old_inputs[k]) for k in inputs)
        if not same:
            notes.append(f"drift: set {name} has other inputs in {old_folder} (another seed or signature)")
            continue
        for output, array in outputs.items():
            if output not in old_outputs:
                notes.append(f"drift: output {output} is not in {old_folder}")
                continue
            check = compare_array(old_outputs[output], array, tol, input_set=name, output=output)
            if max_drift is None and check.category == "accuracy":  # informational: the numbers, no verdict
                check = check.model_copy(update={"verdict": "pass", "category": None, "message": "drift"})
            checks.append(check)
    if not checks:
        notes.append(f"drift: no golden set could be compared with {old_folder}")
    return checks, notes
