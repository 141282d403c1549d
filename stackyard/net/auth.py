"""The cluster secret, request signatures and chunk access tokens.

Every request carries `Authorization: Yard <ts>:<hex hmac>` where the HMAC
(SHA-256, keyed by the cluster secret) covers "METHOD\\nPATH?QUERY\\nTS". The
body is not signed: chunk data is streamed and carries its own CRC32C. A
signature older or newer than `MAX_SKEW` seconds is refused, which bounds
replay. People and Prometheus may instead send the secret itself as HTTP
Basic auth (any user name) or as a Bearer token.

A chunk access token (HDFS's block access token) lets its bearer read or
write one chunk until it expires: "handle:mode:expiry:hmac". The master
issues them; chunkservers check them with the same secret, so a client that
knows the secret but was never told about a chunk by the master still cannot
guess a token without computing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

MAX_SKEW = 300.0


class Secret:
    """The shared key. Its repr never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("secret: must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    @classmethod
    def generate(cls) -> Secret:
        return cls(secrets.token_hex(32).encode())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Secret:
        p = Path(path)
        try:
            key = p.read_bytes().strip()
        except FileNotFoundError:
            raise FileNotFoundError(2, "cluster secret file not found", str(p)) from None
        return cls(key)

    def save(self, path: str | os.PathLike) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._key + b"\n")
        os.chmod(p, 0o600)

    def mac(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def matches(self, candidate: bytes) -> bool:
        return hmac.compare_digest(self._key, candidate)

    # -- request signatures -------------------------------------------------

    def sign(self, method: str, path_qs: str, now: float | None = None) -> str:
        ts = f"{(time.time() if now is None else now):.3f}"
        message = f"{method.upper()}\n{path_qs}\n{ts}"
        return f"Yard {ts}:{self.mac(message)}"

    def check_header(self, method: str, path_qs: str, header: str | None,
                     now: float | None = None) -> str | None:
        """None if HEADER authenticates the request, else the reason it does not."""
        if not header:
            return "missing credentials: this cluster requires its secret"
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "yard":
            ts, _, sig = value.partition(":")
            try:
                age = abs((time.time() if now is None else now) - float(ts))
            except ValueError:
                return "malformed signature"
            if age > MAX_SKEW:
                return "signature expired (clocks more than 300 s apart?)"
            want = self.mac(f"{method.upper()}\n{path_qs}\n{ts}")
            return None if hmac.compare_digest(want, sig) else "wrong cluster secret"
        if scheme == "basic":
            try:
                _user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return "malformed basic credentials"
            return None if self.matches(password.encode()) else "wrong cluster secret"
        if scheme == "bearer":
            return None if self.matches(value.strip().encode()) else "wrong cluster secret"
        return f"unsupported authorization scheme {scheme!r}"

    # -- chunk access tokens ------------------------------------------------

    def chunk_token(self, handle: str, mode: str, lifetime: float, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + lifetime)
        body = f"{handle}:{mode}:{expiry}"
        return f"{body}:{self.mac(body)}"

    def check_chunk_token(self, token: str | None, handle: str, mode: str,
                          now: float | None = None) -> str | None:
        """None if TOKEN grants MODE on HANDLE now, else why not."""
        if not token:
            return "missing chunk access token"
        parts = token.split(":")
        if len(parts) != 4:
            return "malformed chunk access token"
        t_handle, t_mode, t_expiry, sig = parts
        if not hmac.compare_digest(self.mac(f"{t_handle}:{t_mode}:{t_expiry}"), sig):
            return "invalid chunk access token"
        if t_handle != handle or mode not in t_mode:
            return f"chunk access token does not grant {mode!r} on chunk {handle}"
        try:
            expired = int(t_expiry) < (time.time() if now is None else now)
        except ValueError:
            return "malformed chunk access token"
        return "chunk access token expired" if expired else None

    # -- delegation tokens (WebHDFS) ------------------------------------------

    def delegation_token(self, user: str, lifetime: float, now: float | None = None) -> str:
        """A token naming USER that any daemon of the cluster accepts until it
        expires: what a WebHDFS client passes as `delegation=`. URL-safe."""
        expiry = int((time.time() if now is None else now) + lifetime)
        name = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        return f"{name}.{expiry}.{self.mac(f'delegation:{user}:{expiry}')}"

    def check_delegation_token(self, token: str, now: float | None = None
                               ) -> tuple[str | None, str | None]:
        """(user, None) if TOKEN is good, else (None, why not)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None, "malformed delegation token"
        name, expiry, sig = parts
        try:
            user = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            expired = int(expiry) < (time.time() if now is None else now)
        except (ValueError, UnicodeDecodeError):
            return None, "malformed delegation token"
        if not hmac.compare_digest(self.mac(f"delegation:{user}:{expiry}"), sig):
            return None, "invalid delegation token (signed with another secret?)"
        return (None, "delegation token expired") if expired else (user, None)
