"""The progress bar long-running commands show on a terminal (stderr)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

__all__ = ["progress_bar"]

err = Console(stderr=True)


class progress_bar:
    """A rich progress bar (stderr by default); yields ``advance(done, total)``."""

    def __init__(self, label: str, console: Console | None = None, unit: str = "events") -> None:
        self._bar = Progress(
            TextColumn(label),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),  # copes with a total not known yet
            TextColumn(unit),
            TimeRemainingColumn(),
            console=console or err,
            transient=True,
        )
        self._task = self._bar.add_task(label, total=None)

    def __enter__(self) -> Callable[[int, int], None]:
        self._bar.start()
        return lambda done, total: self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
