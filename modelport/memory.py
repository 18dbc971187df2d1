"""Letting a big model's copies go at once, and how much memory there is to take.

torch.fx graph modules (a loaded ``.pt2``, an export's graphs) sit in reference cycles, so a closed
session's weights stay until the cycle collector runs. For a 3 GB model that is a second copy held
while the next artifact loads; a full collection costs 0.2 to 1 s in a process that holds torch,
so it runs only when the bytes at stake are large.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

__all__ = ["COLLECT_ABOVE", "available_memory", "let_go", "module_bytes"]

COLLECT_ABOVE = 256 << 20


def let_go(nbytes: int) -> None:
    """Collect reference cycles now when ``nbytes`` of tensors were just released (or are about to be)."""
    if nbytes >= COLLECT_ABOVE:
        gc.collect()


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (what can be allocated without swapping), or None off Linux."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def module_bytes(module: Any) -> int:
    """The bytes a ``torch.nn.Module``'s parameters and buffers hold (what a run sizes its disk and memory by)."""
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
