"""The trust gate: TorchScript and ``.pt2`` files are programs, loaded only from folders trusted for a reason.

Loading either runs code the file carries (TorchScript's methods, a ``.pt2``'s graph resolved
through ``getattr`` and ``sympy``), so :func:`load_torchscript` and :func:`load_exported_program`
refuse any file outside a folder granted here. A command grants a folder for as long as it
reads it, and says why:

- ``run`` grants the staging folder it is writing itself;
- ``verify`` grants a folder whose ``manifest.sig`` is valid under the local key or a
  ``--trusted-key`` (every file is then the signer's, by hash), or when the user says
  ``--trust``.

The gate sits in the loaders rather than in each command so that a command added later
(C++ libtorch, localize) cannot forget it: without a grant, the loader refuses.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelport.loaders.jsonsafe import UnsafeFile

__all__ = ["HOW_TO_TRUST", "Grant", "Untrusted", "grant_for", "granted", "require_trust"]

HOW_TO_TRUST = (
    "sign the folder (modelport run --sign-with KEY) and pass --trusted-key KEY.pub, "
    "or pass --trust if you trust whoever wrote it, or leave it out with --runtimes"
)


class Untrusted(UnsafeFile):
    """A program file (TorchScript, ``.pt2``) outside every folder trusted for this command."""


@dataclass(frozen=True)
class Grant:
    folder: Path  # resolved
    why: str  # "written by this run", "signed by ...", "--trust"


_GRANTS: contextvars.ContextVar[tuple[Grant, ...]] = contextvars.ContextVar("modelport_trust", default=())


@contextlib.contextmanager
def granted(folder: Path, why: str) -> Iterator[Grant]:
    """Trust the program files directly inside ``folder`` (resolved now) until the block ends."""
    grant = Grant(Path(folder).resolve(), why)
    token = _GRANTS.set((*_GRANTS.get(), grant))
    try:
        yield grant
    finally:
        _GRANTS.reset(token)


def grant_for(path: Path) -> Grant | None:
    """The grant that covers ``path``'s folder, or None."""
    # A program file lies directly in its folder; a symlink or ``..`` is resolved first, so a
    # link from a trusted folder to an untrusted file is not covered.
    parent = Path(path).resolve().parent
    return next((g for g in reversed(_GRANTS.get()) if g.folder == parent), None)


def require_trust(path: Path, kind: str) -> Grant:
    """The grant covering ``path``, or :class:`Untrusted` naming the file and how to trust it."""
    grant = grant_for(path)
    if grant is None:
        raise Untrusted(
            f"{Path(path).name} is {kind}, which runs code when loaded: not loaded, as its folder is not "
            f"trusted; {HOW_TO_TRUST}"
        )
    return grant
