"""Keeping exporters' warnings and log lines out of the user's output, and into the report."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from modelport.errors import one_line

__all__ = ["TORCH_EXPORT_LOGGERS", "collect_warnings"]

# What torch.export logs while it traces (guards, symbolic shapes, dynamo): whole tracebacks
# on the user's terminal for an error that modelport reports itself.
TORCH_EXPORT_LOGGERS = (
    "torch._export",
    "torch.export",
    "torch._dynamo",
    "torch._guards",
    "torch.fx",
    "torch._subclasses",
)


@contextlib.contextmanager
def collect_warnings(
    notes: list[str] | None,
    *,
    drop: Callable[[warnings.WarningMessage], bool] = lambda w: False,
    loggers: tuple[str, ...] = (),
    capture_output: bool = False,
) -> Iterator[None]:
    """Catch every warning raised inside; append each distinct one not ``drop``-ped to ``notes``.

    ``loggers`` are silenced (set to CRITICAL) for the duration. ``capture_output`` swallows
    what Python code prints to stdout/stderr (torch.export dumps whole graphs on failure).
    """
    silenced = [logging.getLogger(name) for name in loggers]
    levels = [logger.level for logger in silenced]
    for logger in silenced:
        logger.setLevel(logging.CRITICAL)
    sink = io.StringIO()
    try:
        with contextlib.ExitStack() as stack:
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always")
            if capture_output:
                stack.enter_context(contextlib.redirect_stdout(sink))
                stack.enter_context(contextlib.redirect_stderr(sink))
            yield
    finally:
        for logger, level in zip(silenced, levels, strict=True):
            logger.setLevel(level)
    if notes is None:
        return
    for w in caught:
        text = f"{w.category.__name__}: {one_line(str(w.message), 400)}"
        if "/torch/" not in w.filename and "site-packages" not in w.filename:
            text += f" (at {Path(w.filename).name}:{w.lineno})"  # the user's own line, e.g. a traced branch
        if not drop(w) and text not in notes:
            notes.append(text)
