"""``modelport profile DIR``: the latency profile of an artifact folder, written into its manifest.

The folder is read as ``verify`` reads it: every file is checked against its recorded sha256 before
anything is loaded, TorchScript and ``.pt2`` files load only from a trusted folder (a valid signature,
or ``--trust``), and no model code is imported (weights files of your own models are skipped; the
built-in models' code is modelport's). Only formats that passed in the run that wrote the folder are
timed. The figures go into ``manifest.json``'s ``profile`` and into report.md and report.html (their new
hashes in the manifest), rewritten atomically under the folder's lock.

Signing: the rewritten manifest no longer matches ``manifest.sig``. When the signature was valid
before (this machine's key, or a ``--trusted-key``), the folder is re-signed with this machine's key
(and ``--sign-with KEY``'s Ed25519 key): its files are the ones that signature vouched for, by hash,
and only the ``profile`` field changed. Otherwise it is not re-signed (that would make a folder nobody
vouched for trusted here): the signature stays as it was and now reads ``invalid``; its signer must re-sign.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelport import exporters
from modelport.errors import UsageError
from modelport.loaders.trust import HOW_TO_TRUST
from modelport.models.source import BUILTIN
from modelport.pipeline.folder_lock import FolderLock
from modelport.pipeline.manifest import HTML_REPORT_NAME, REPORT_NAME, read_manifest, write_manifest
from modelport.pipeline.options import check_timeout
from modelport.pipeline.outdir import recover
from modelport.pipeline.records import Report
from modelport.pipeline.verify_manifest import integrity
from modelport.profiling.figures import parse_batch_sizes
from modelport.profiling.profiler import Target, profile_candidates
from modelport.profiling.records import Profile, ProfileSettings, ProfileSkip
from modelport.runtimes.plan import Selection, pairings, select
from modelport.signing import ED25519, SIGNATURE_NAME, SignatureStatus, Signer, signature_status

__all__ = ["FolderProfile", "profile_folder"]

USER_WEIGHTS = (
    "the weights of your own model need its code, which modelport profile never imports (as verify); "
    "torch_export@torch and the ONNX candidates time the same computation"
)


@dataclass(frozen=True)
class FolderProfile:
    folder: Path
    profile: Profile
    signature: str  # what happened to manifest.sig, in one line


def profile_folder(
    folder: str | Path,
    *,
    runtimes: str | Sequence[str] | Selection | None = None,
    batch_sizes: str | Sequence[int] | None = None,
    trust: bool = False,
    trusted_keys: Sequence[str | Path] = (),
    sign_with: str | Path | None = None,
    runtime_timeout: float | None = None,
    settings: ProfileSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> FolderProfile:
    """Time every passing candidate of ``folder`` at ``batch_sizes``; the manifest records the profile."""
    root = Path(folder)
    sizes = parse_batch_sizes(batch_sizes)
    selection = select(runtimes)
    timeout = check_timeout(runtime_timeout)
    signer = Signer.create(sign_with)  # a bad key fails here, before any work
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; pass the artifact folder that `modelport run` wrote")
    with FolderLock(root.resolve(), exclusive=True, what=str(root)):  # no run or verify while it changes
        recover(root.resolve())  # a swap a killed run left half done is finished first
        manifest = read_manifest(root)
        before = signature_status(root, trusted_keys)
        why = "--trust: the user trusts whoever wrote the folder" if trust else None
        if why is None and before.status == "valid":
            why = f"signature {before.describe()}"
        candidates, skipped = _candidates(root, manifest, selection, trusted=why is not None)
        target = Target(
            folder=root,
            signature=manifest.signature,
            formats=manifest.formats,
            inputs=manifest.golden.inputs if manifest.golden else "golden/inputs.npz",
            model=manifest.model.spec if manifest.model.spec in BUILTIN else None,
            trust=why,
            no_model_reason=USER_WEIGHTS,
        )
        found = profile_candidates(
            target, candidates, sizes, settings or ProfileSettings(), timeout=timeout, progress=progress
        )
        found = found.model_copy(update={"skipped": [*skipped, *found.skipped]})
        write_manifest(root, _rerendered(root, manifest.model_copy(update={"profile": found})))
        return FolderProfile(root, found, _renew(root, before, signer, sign_with is not None))


def _rerendered(root: Path, manifest: Report) -> Report:
    """report.md and report.html rewritten with the new profile, and their new hashes in the manifest."""
    from modelport.fsutil import atomic_write, sha256_file
    from modelport.pipeline.report import render_markdown
    from modelport.reports.html_report import render_html

    renderers = {REPORT_NAME: render_markdown, HTML_REPORT_NAME: render_html}
    artifacts = []
    for entry in manifest.artifacts:
        render = renderers.get(entry.path) if entry.role == "report" else None
        if render is not None:
            path = root / entry.path
            with atomic_write(path) as fh:
                fh.write(render(manifest).encode("utf-8"))
            entry = entry.model_copy(update={"sha256": sha256_file(path), "bytes": path.stat().st_size})
        artifacts.append(entry)
    return manifest.model_copy(update={"artifacts": artifacts})


def _candidates(
    root: Path, manifest: Report, selection: Selection, *, trusted: bool
) -> tuple[list[str], list[ProfileSkip]]:
    """The candidates to time, and those that will not be, with why: damaged files, failures, untrusted programs."""
    damaged = {p.path for p in integrity(root, manifest)}
    ran = [c for c in manifest.candidates if c.status in ("ok", "failed")]
    passed = {c.format for c in ran if c.verdict == "pass"} - {c.format for c in ran if c.verdict != "pass"}
    known = [name for name in manifest.formats if name in exporters.names()]
    chosen, skipped = [], []
    for pairing in pairings(known, selection):
        files = manifest.formats[pairing.format].files
        reason = None
        if any(f in damaged for f in files):
            reason = f"{', '.join(f for f in files if f in damaged)} failed the integrity check (sha256): not loaded"
        elif pairing.format not in passed:
            reason = f"{pairing.format} did not pass in the run that wrote the folder: only proven artifacts are timed"
        elif exporters.get(pairing.format).code and not trusted:
            reason = f"{files[0]} is a program (loading it runs code) and this folder is not trusted; {HOW_TO_TRUST}"
        if reason is None:
            chosen.append(pairing.candidate)
        else:
            skipped.append(ProfileSkip(candidate=pairing.candidate, reason=reason))
    return chosen, skipped


def _renew(root: Path, before: SignatureStatus, signer: Signer, ed25519: bool) -> str:
    """Re-sign a folder whose signature was valid before the manifest changed; say what became of manifest.sig."""
    if before.status != "valid":
        if before.status == "absent":
            return "manifest.sig: absent (not signed)"
        return f"manifest.sig: was {before.status} before; not renewed, so it no longer matches; its signer re-signs"
    had_ed25519 = ED25519 in _algorithms(root / SIGNATURE_NAME)
    signer.sign(root)
    text = "manifest.sig: renewed with this machine's key" + (" and --sign-with's Ed25519 key" if ed25519 else "")
    if had_ed25519 and not ed25519:
        text += "; its Ed25519 signature was dropped (pass --sign-with KEY to renew it)"
    return text


def _algorithms(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(e.get("algorithm")) for e in data.get("signatures", []) if isinstance(e, dict)}
    except (OSError, ValueError, AttributeError):
        return set()
