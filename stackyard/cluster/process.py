"""Starting and stopping daemon processes by their own pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def spawn(role: str, config: Path, log: Path) -> subprocess.Popen:
    """Start `python -m stackyard daemon ROLE --config CONFIG`, detached from
    the caller's session so that it outlives `yard cluster up`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stackyard", "daemon", role, "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    return proc


def alive(pid: int | None, config: Path | str | None = None) -> bool:
    """True if PID runs, and (when CONFIG is given) is the daemon of that config,
    so that a reused pid is not mistaken for ours."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return config is None
    if config is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        # a zombie leader whose other threads (gRPC's, say) still run cannot be
        # reaped yet: it is gone only once waitpid takes it
        try:
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False
    # an empty cmdline: caught between fork and exec, or exiting; kill(0) said it exists
    return cmdline == [b""] or str(config).encode() in cmdline


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pid: int, config: Path | str | None = None, timeout: float = 10.0,
         sig: int = signal.SIGTERM) -> bool:
    """Signal PID and wait for it to go; SIGKILL after TIMEOUT. False if it was not running."""
    if not alive(pid, config):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while alive(pid, config):
        _reap(pid)
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
        time.sleep(0.02)
    _reap(pid)
    return True


def wait_for_file(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> str:
    """Wait for the daemon PROC to write its address to PATH."""
    pid = proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            raise RuntimeError(f"daemon exited during start-up; last lines of {log}:\n"
                               + "\n".join(tail))
        time.sleep(0.02)
    raise TimeoutError(f"daemon (pid {pid}) did not start within {timeout} s; see {log}")
