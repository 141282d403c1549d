"""Ports for a local cluster's daemons, chosen once and saved in their
configs."""

from __future__ import annotations

import random
import socket


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
