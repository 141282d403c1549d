"""What every `yard` command shares: finding the cluster, sizes, and turning
expected errors into one line on stderr and a non-zero exit code."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import click

from stackyard import errors

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'1048576', '1m', '64MiB', '1g' -> bytes (binary units, as Hadoop's)."""
    m = _SIZE.match(str(text))
    if not m:
        raise click.BadParameter(f"not a size: {text!r} (use e.g. 1m, 64MiB, 1048576)")
    unit = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * unit)


def human(n: float) -> str:
    """Hadoop's -h format: 1.5 K, 64 M, 1 G."""
    for unit in ("", " K", " M", " G", " T", " P"):
        if abs(n) < 1024 or unit == " P":
            return f"{n:.0f}" if unit == "" else (f"{n:.1f}".rstrip("0").rstrip(".") + unit)
        n /= 1024
    return str(n)


def fail(verb: str, exc: BaseException) -> int:
    click.echo(f"{verb}: {errors.describe(exc)}", err=True)
    return 1


EXPECTED = (OSError, errors.StackyardError, ValueError, TimeoutError, KeyError, RuntimeError)


def guarded(verb: str, fn: Callable[[], int | None]) -> int:
    """Run FN; an expected error becomes `VERB: message` and exit code 1."""
    try:
        return fn() or 0
    except BrokenPipeError:
        return 0
    except EXPECTED as exc:
        if isinstance(exc, KeyError):
            exc = ValueError(exc.args[0] if exc.args else "missing value")
        return fail(verb, exc)
    except KeyboardInterrupt:
        click.echo(f"{verb}: interrupted", err=True)
        return 130


def connect_fs(home: str | None):
    """The file system of the cluster under HOME; never starts an embedded one
    (a CLI user expects `yard dfs` to talk to the cluster they started)."""
    from stackyard.connect import connect
    return connect(home=home, embedded=False).fs


def exit_with(code: int) -> None:
    sys.exit(code)


class History:
    """An interactive shell's readline history in FILE, kept between sessions
    (nothing when this Python has no readline)."""

    def __init__(self, file: str):
        self.path = os.path.expanduser(file)
        try:
            import readline
        except ImportError:
            readline = None
        self.readline = readline

    def __enter__(self) -> History:
        if self.readline is not None:
            try:
                self.readline.read_history_file(self.path)
            except OSError:
                pass
        return self

    def __exit__(self, *exc) -> None:
        if self.readline is not None:
            try:
                self.readline.write_history_file(self.path)
            except OSError:
                pass
