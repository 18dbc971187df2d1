"""The live progress display on a terminal: stage events (``StageEvent``) drive it while ``run`` or ``verify`` works.

Each running stage is a spinner line with its elapsed seconds and its latest progress message
(``onnx  12.3 s  writing model.onnx``); a stage that ends is printed above as a line with its
status and seconds, where it stays. Only on a terminal: on a pipe or a file, in CI (``CI`` set)
or with ``--quiet`` there is no display and no control sequence, and stages print as plain lines
when they end (or not at all with ``--quiet``).

The display never fails the work it shows: an error while drawing turns it off for the rest of
the command (the stage lines still print), and it stops, restoring the cursor, when the command
ends, fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from modelport.pipeline.stages import StageEvent

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from modelport.pipeline.records import StageRecord

__all__ = ["LiveProgress", "fan_out", "live_wanted"]


def live_wanted(console: Console, quiet: bool) -> bool:
    """A live display only for a person at a terminal: not with --quiet, in CI, or on a pipe or a file."""
    if quiet or os.environ.get("CI"):
        return False
    return console.is_terminal and not console.is_dumb_terminal


def fan_out(*callbacks: Callable[[StageEvent], None] | None) -> Callable[[StageEvent], None] | None:
    """One event callback that calls each given one in order (None when none is given)."""
    chosen = [c for c in callbacks if c is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]

    def emit(event: StageEvent) -> None:
        for callback in chosen:
            callback(event)

    return emit


class LiveProgress:
    """A context manager and an event callback: spinners for running stages, a line for each stage that ends.

    ``on_end`` prints a finished stage's line; ``before`` runs once before anything is shown (a
    header, printed only when work has started). With ``live=False`` it only calls those two, ``before``
    at the first stage that ends.
    """

    def __init__(
        self,
        console: Console,
        *,
        live: bool,
        on_end: Callable[[StageRecord], None] | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.console = console
        self.enabled = live
        self._on_end = on_end
        self._before = before
        self._running: dict[str, tuple[float, str | None]] = {}  # stage -> (started, latest message)
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop()  # on success, error and Ctrl-C alike: the cursor comes back, the spinners go

    def __call__(self, event: StageEvent) -> None:
        if self._before is not None and (self.enabled or event.kind == "end"):
            # Before the first spinner; without the display, before the first line (as plain output always was).
            before, self._before = self._before, None
            before()
        if event.kind == "start":
            self._running[event.stage] = (time.perf_counter(), None)
        elif event.kind == "progress" and event.stage in self._running:
            self._running[event.stage] = (self._running[event.stage][0], event.message)
        elif event.kind == "end":
            self._running.pop(event.stage, None)
            self._draw()  # its spinner goes first, so the line below is not followed by a stale frame
            if event.record is not None and self._on_end is not None:
                self._on_end(event.record)  # printed above the spinners (rich's Live keeps them at the bottom)
            return
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        try:
            if self._live is None and self._running:
                from rich.live import Live

                self._live = Live(
                    get_renderable=self._renderable,
                    console=self.console,
                    refresh_per_second=8,
                    transient=True,  # the spinners vanish; the stage lines printed above stay
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self._live.start()
            elif self._live is not None:
                self._live.refresh()
        except Exception:
            # A display that cannot draw (a terminal gone, a bad size) must not fail the stage it shows:
            # it is turned off, and the stage lines go on as plain text.
            self.enabled = False
            self._stop()

    def _renderable(self) -> RenderableType:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.text import Text

        now = time.perf_counter()
        return Group(*(Spinner("dots", text=Text(_line(name, now - t0, m))) for name, (t0, m) in self._items()))

    def _items(self) -> Iterable[tuple[str, tuple[float, str | None]]]:
        return list(self._running.items())

    def _stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            with contextlib.suppress(Exception):  # the terminal is gone: nothing left to restore
                live.stop()


def _line(stage: str, seconds: float, message: str | None) -> str:
    text = f" {stage:<14} {seconds:6.1f} s"
    return f"{text}  {message}" if message else text
