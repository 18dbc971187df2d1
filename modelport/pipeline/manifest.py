"""``manifest.json``: every file in the folder with its sha256, written last."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from modelport.errors import StageError, UsageError
from modelport.exporters import get
from modelport.exporters.base import FormatRecord
from modelport.fsutil import atomic_write, sha256_file
from modelport.loaders.jsonsafe import UnsafeFile, parse_json
from modelport.pipeline.golden import ONNX_TEST_DATA
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, ArtifactFile, Golden, GoldenSet, Report

__all__ = [
    "HTML_REPORT_NAME",
    "REPORT_NAME",
    "DamagedManifest",
    "expected_roles",
    "list_artifacts",
    "read_manifest",
    "write_manifest",
]

REPORT_NAME = "report.md"
HTML_REPORT_NAME = "report.html"  # the same report as a self-contained page
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def expected_roles(formats: Mapping[str, FormatRecord], golden: Golden | None) -> dict[str, tuple[str, str]]:
    """path -> (format, role) for every file modelport meant to write."""
    known: dict[str, tuple[str, str]] = {REPORT_NAME: ("report", "report"), HTML_REPORT_NAME: ("report", "report")}
    for record in formats.values():
        main_role = get(record.format).role
        for i, path in enumerate(record.files):
            known[path] = (record.format, record.roles.get(path, main_role if i == 0 else "extra"))
    if golden is not None:
        entries: list[Golden | GoldenSet] = [golden, *golden.sets]
        for g in entries:
            known[g.inputs] = ("golden", "golden-inputs")
            known[g.outputs] = ("golden", "golden-outputs")
            if g.outputs64 is not None:
                known[g.outputs64] = ("golden", "golden-outputs64")
    return known


def list_artifacts(folder: Path, formats: Mapping[str, FormatRecord], golden: Golden | None) -> list[ArtifactFile]:
    """Hash every file under ``folder`` except the manifest; a file nobody claimed is listed as "other"."""
    known = expected_roles(formats, golden)
    entries: list[ArtifactFile] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST_NAME:
            continue
        fmt, role = known.get(rel, ("other", "other"))
        if rel.startswith(f"{ONNX_TEST_DATA}/"):
            fmt, role = "golden", "golden-onnx-inputs" if path.name.startswith("input_") else "golden-onnx-outputs"
        entries.append(
            ArtifactFile(path=rel, format=fmt, role=role, sha256=sha256_file(path), bytes=path.stat().st_size)
        )
    return entries


def write_manifest(folder: Path, report: Report) -> None:
    data = report.model_dump(mode="json", exclude={"output_dir"})
    with atomic_write(folder / MANIFEST_NAME) as fh:
        fh.write((json.dumps(data, indent=2) + "\n").encode())


class DamagedManifest(StageError):
    """manifest.json is there but cannot be trusted: a failed integrity check (exit 1), not bad usage."""


def read_manifest(folder: Path) -> Report:
    """The folder's manifest, validated.

    Raises UsageError when ``folder`` is not a modelport folder at all (or one from another
    schema version), DamagedManifest when its manifest is present but unreadable.
    """
    path = folder / MANIFEST_NAME
    try:
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder; pass the artifact folder that `modelport run` wrote")
        if not path.is_file():
            raise UsageError(f"{folder} has no {MANIFEST_NAME}; pass a folder written by `modelport run`")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise DamagedManifest(f"{MANIFEST_NAME} is over {MAX_MANIFEST_BYTES} bytes; refused")
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{folder}: {e.strerror or e}") from e
    try:  # bounded size, depth and integers: a hostile manifest gets one line, never a traceback
        data = parse_json(raw, MANIFEST_NAME, max_bytes=MAX_MANIFEST_BYTES)
    except UnsafeFile as e:
        raise DamagedManifest(str(e)) from e
    if not isinstance(data, dict) or data.get("kind") != "run":
        raise UsageError(f"{path} is not a modelport manifest; pass a folder written by `modelport run`")
    version = data.get("schema_version")
    if version not in READABLE_SCHEMA_VERSIONS or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        raise UsageError(
            f"{path} has schema_version {version!r}; this modelport reads "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}; "
            + ("upgrade modelport to verify it" if newer else "verify it with the modelport version that wrote it")
        )
    try:
        return Report.model_validate(data, strict=True)  # "bytes": "416" is not a number
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DamagedManifest(f"{MANIFEST_NAME} is not a valid manifest: {where}: {first['msg']}") from e
