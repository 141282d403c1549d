"""The nonces a daemon has seen, so that no signed request is acted on twice.

A signature is good for MAX_SKEW seconds either side of its timestamp, so a
nonce must be remembered until its timestamp is that old; after that the
timestamp alone refuses it. Nonces are kept in buckets of BUCKET seconds by
the timestamp they were signed with, and whole buckets are dropped as they
age out: memory is bounded by the request rate times the window, and by
LIMIT, past which new requests are refused rather than remembered badly.
Only requests whose signature checked are recorded, so nobody without the
secret can fill it.
"""

from __future__ import annotations

BUCKET = 10.0


class ReplayWindowFull(Exception):
    """More signed requests in one window than the daemon will remember."""


class NonceCache:
    def __init__(self, window: float, limit: int = 2_000_000):
        self.window = window
        self.limit = limit
        self.buckets: dict[int, set[str]] = {}
        self.size = 0
        self._pruned = float("-inf")

    def first_use(self, nonce: str, ts: float, now: float) -> bool:
        """Record NONCE (signed at TS); False if it was used before."""
        if now - self._pruned > BUCKET:
            self._prune(now)
        key = int(ts // BUCKET)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = set()
        elif nonce in bucket:
            return False
        if self.size >= self.limit:
            raise ReplayWindowFull(f"more than {self.limit} signed requests within "
                                   f"{self.window:.0f} s; try again shortly")
        bucket.add(nonce)
        self.size += 1
        return True

    def _prune(self, now: float) -> None:
        self._pruned = now
        oldest = int((now - self.window) // BUCKET) - 1
        for key in [k for k in self.buckets if k < oldest]:
            self.size -= len(self.buckets.pop(key))
