"""Ports for a local cluster's daemons, chosen once and saved in their
configs."""

from __future__ import annotations

import os
import random
import socket
import tempfile
import time

CLAIMS = os.path.join(tempfile.gettempdir(), "stackyard-ports")
CLAIM_SECONDS = 300.0    # a port handed out is left alone this long by other clusters


class Ports:
    """Free ports for the daemons of one cluster, each handed out once: the
    socket that found a port stays bound until the configs are written, so
    the kernel cannot give the same port twice, and ports the cluster's saved
    configs already name are never handed out again."""

    def __init__(self, host: str, taken: set[int] = frozenset()):
        self.host = host
        self.taken = set(taken)
        self._held: list[socket.socket] = []

    def take(self) -> int:
        lo, hi = _listen_range()
        for _ in range(200):
            port = random.randint(lo, hi)
            if port in self.taken:
                continue
            if not _claim(port):
                continue        # another cluster on this machine was just given it
            s = socket.socket()
            try:
                s.bind((self.host, port))
            except OSError:
                s.close()
                continue
            self._held.append(s)
            self.taken.add(port)
            return port
        raise RuntimeError(f"no free port in {lo}-{hi} on {self.host}")

    def release(self) -> None:
        for s in self._held:
            s.close()
        self._held.clear()


def _claim(port: int) -> bool:
    """Claim PORT machine-wide for CLAIM_SECONDS: between the configs being
    written and the daemon binding, the port is free, and a cluster started
    beside this one (tests run several at once) must not be given it too."""
    try:
        os.makedirs(CLAIMS, exist_ok=True)
        path = os.path.join(CLAIMS, str(port))
        try:
            if time.time() - os.stat(path).st_mtime < CLAIM_SECONDS:
                return False
            os.unlink(path)             # an old claim: its daemon bound long ago, or never
        except FileNotFoundError:
            pass
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        return False
    except OSError:
        return True                     # no claims directory to be had: the kernel decides


def _listen_range() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range: a saved port is free between
    `cluster up` writing it and the daemon binding it, and an outgoing
    connection's local port (taken from the ephemeral range) must not land on
    it then."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    if first < 12000:
        return 40000, 49151
    return max(1024, first - 12000), first - 1
