"""The user's cache folder for runtime installs and builds: npm packages, compiled C++ programs.

``$MODELPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelport``, else ``~/.cache/modelport``. Entries
are keyed by what they were made from (a source hash, compiler and library versions), so a second
run reuses them and a change rebuilds them; a half-made entry is never used (built under a
temporary name, renamed into place when complete).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["cache_dir", "key"]


def cache_dir() -> Path:
    explicit = os.environ.get("MODELPORT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "modelport"


def key(parts: Iterable[str | bytes]) -> str:
    """A short stable key over everything an entry is made from."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:16]
