"""Running a dataset program as a command: a context on the cluster (or the
embedded default), stopped at the end, and the errors a user can expect (a
missing path, a bad argument, an unreachable cluster, a failed job) said in
one line on stderr with exit code 1 instead of a Python traceback (a failed
job's message carries the task's own traceback)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from stackyard.compute.client import JobFailed
from stackyard.errors import StackyardError


def run(app_name: str, body: Callable[[object], None]) -> int:
    """BODY(context) with a context named APP_NAME; the process's exit code."""
    import stackyard as sy
    try:
        with sy.connect().context(app_name) as sc:
            body(sc)
    except (FileNotFoundError, ValueError, StackyardError, JobFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
