"""The master's memory of delegation tokens (HDFS's DelegationTokenSecretManager):
which were renewed, to when, and which were cancelled.

Tokens themselves are signed with the cluster secret and need no state to
check; what needs state is a renewal (the same token string lives longer)
and a cancellation (it stops working before it expires). Both are written
to DATA_DIR/tokens.msgpack, fsync'd and renamed into place, before they are
acknowledged. An entry is dropped once its token's maximum lifetime is over,
since the token's own max date refuses it from then on.

    {"renewed": {token_id: expiry}, "cancelled": {token_id: max_date}}
"""

from __future__ import annotations

import os
from pathlib import Path

import msgpack

from stackyard.errors import AuthError
from stackyard.net.auth import Delegation

RENEW_INTERVAL = 24 * 3600.0           # HDFS's delegation.token.renew-interval


class TokenStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.path = Path(data_dir) / "tokens.msgpack"
        self.renewed: dict[str, int] = {}
        self.cancelled: dict[str, int] = {}
        if self.path.exists():
            state = msgpack.unpackb(self.path.read_bytes())
            self.renewed, self.cancelled = state["renewed"], state["cancelled"]

    def why_not(self, tok: Delegation, now: float) -> str | None:
        """None if TOK may be used now, else the reason it may not."""
        if tok.token_id in self.cancelled:
            return "delegation token cancelled"
        if max(tok.expiry, self.renewed.get(tok.token_id, 0)) < now:
            return "delegation token expired"
        return None

    def renew(self, tok: Delegation, now: float) -> int:
        """Extend TOK by a renew interval, never past its max date; the new expiry."""
        reason = self.why_not(tok, now)
        if reason is not None:
            raise AuthError(f"cannot renew: {reason}")
        expiry = min(int(now + RENEW_INTERVAL), tok.max_date)
        self.renewed[tok.token_id] = max(expiry, self.renewed.get(tok.token_id, 0))
        self._save(now)
        return self.renewed[tok.token_id]

    def cancel(self, tok: Delegation, now: float) -> None:
        self.cancelled[tok.token_id] = tok.max_date
        self.renewed.pop(tok.token_id, None)
        self._save(now)

    def _save(self, now: float) -> None:
        # a renewal is bounded by its max date, so an entry can forget itself there
        self.renewed = {k: v for k, v in self.renewed.items() if v >= now}
        self.cancelled = {k: v for k, v in self.cancelled.items() if v >= now}
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(msgpack.packb({"renewed": self.renewed, "cancelled": self.cancelled}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
