"""The verifier's own tolerance policy: a folder does not get to choose how leniently it is judged.

A folder's manifest is not signed, so a recorded tolerance is a claim, not a rule: one looser
than the documented default is an integrity failure (the candidate is replayed at the default
instead) unless the verifier accepts it with ``--allow-loose``; ``--atol/--rtol/--tol`` set the
verifier's own tolerances, which win over the recorded ones. (Once manifests are signed, a
trusted signature may vouch for recorded tolerances.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelport import exporters
from modelport.errors import UsageError
from modelport.pipeline.options import string_list
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import IntegrityProblem, Report
from modelport.validators.records import Tolerance
from modelport.validators.tolerance import is_looser, parse_tol_list, resolve_tolerances

__all__ = ["verify_tolerances"]


_ONNX_FLOATS = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
_SAFETENSORS_FLOATS = {"F32": "float32", "F16": "float16", "F64": "float64", "BF16": "bfloat16"}


def observed_dtypes(root: Path, manifest: Report, broken: set[str]) -> list[str]:
    """The model's float dtypes as the folder's own files show them, never as the manifest says.

    The defaults widen for float16 and bfloat16 models, so the dtype that decides them is read
    from the weights (a weights file, else the ONNX file's initializers), else from the golden
    outputs' dtypes; only files that passed the integrity check are read.
    """
    from modelport import exporters as registry
    from modelport.exporters.runtime import require
    from modelport.exporters.weights import WeightsExporter
    from modelport.loaders import check_safetensors

    for name in ("safetensors", "state_dict", "onnx"):
        record = manifest.formats.get(name)
        if record is None or not record.files or record.files[0] in broken:
            continue
        path = root / record.files[0]
        try:
            exporter = registry.get(name)
            if name == "safetensors":  # its header names every dtype: no torch to import for a replay of ONNX files
                found = {_SAFETENSORS_FLOATS.get(e.get("dtype", ""), "") for e in check_safetensors(path).values()}
            elif isinstance(exporter, WeightsExporter):
                found = {
                    str(getattr(t, "dtype", "")).removeprefix("torch.") for t in exporter.read_state(path).values()
                }
            else:
                model = require("onnx").load(str(path), load_external_data=False)
                found = {_ONNX_FLOATS.get(t.data_type, "") for t in model.graph.initializer}
        except Exception:
            continue  # damaged files are reported by the integrity and parity checks
        floats = sorted(found & set(_ONNX_FLOATS.values()))
        if floats:
            return floats
    golden = manifest.golden
    if golden is not None and golden.outputs not in broken:
        from modelport.pipeline.golden import read_npz

        try:
            outputs = read_npz(root / golden.outputs)
        except UsageError:
            return []
        return sorted({str(a.dtype) for a in outputs.values()} & set(_ONNX_FLOATS.values()))
    return []


def verify_tolerances(
    manifest: Report,
    *,
    dtypes: Sequence[str] = (),
    atol: float | None = None,
    rtol: float | None = None,
    tol: str | Sequence[str] | None = None,
    allow_loose: bool = False,
) -> tuple[dict[str, Tolerance], list[IntegrityProblem]]:
    """The tolerance each recorded format is judged by here, and the recorded ones refused."""
    for value, flag in ((atol, "--atol"), (rtol, "--rtol")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0):
            raise UsageError(f"{flag} must be a finite number >= 0, got {value!r}")
    per_format = parse_tol_list(string_list(tol, "--tol"), exporters.names())
    known = [n for n in manifest.formats if n in exporters.names()]
    # The documented defaults for the model's dtypes as observed (``observed_dtypes``), not as recorded.
    defaults = {n: exporters.default_tolerance(n, dtypes) for n in known}
    own = resolve_tolerances(
        defaults,
        atol=None if atol is None else float(atol),
        rtol=None if rtol is None else float(rtol),
        per_format=per_format,
    )
    chosen: dict[str, Tolerance] = {}
    problems: list[IntegrityProblem] = []
    for name in known:
        default = defaults[name]
        recorded = manifest.tolerances.get(name) or default
        if own[name] is not default:  # the verifier's own flags decide
            chosen[name] = own[name].model_copy(update={"source": f"verify {own[name].source}"})
        elif is_looser(recorded, default) and not allow_loose:
            problems.append(
                IntegrityProblem(
                    path=MANIFEST_NAME,
                    problem=f"{name}'s recorded tolerance {recorded.describe()} is looser than the default "
                    f"{default.describe()}: replayed at the default; accept the recorded one with --allow-loose, "
                    "or set your own with --tol",
                )
            )
            chosen[name] = default.model_copy(update={"source": "default (recorded tolerance refused)"})
        else:
            chosen[name] = recorded.model_copy(update={"source": "manifest"})
    return chosen, problems
