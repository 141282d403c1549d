"""Progress bars for long transfers (rich, on stderr, only on a terminal)."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

BAR_FROM = 8 << 20   # smaller transfers finish before a bar helps


@contextlib.contextmanager
def transfer_progress(label: str, total: int):
    """Yield a callback taking a byte count; draw a bar for large transfers."""
    console = Console(stderr=True)
    if total < BAR_FROM or not (console.is_terminal and sys.stderr.isatty()):
        yield lambda _n: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
