"""The cluster secret, request signatures and chunk access tokens.

Every request between our clients and daemons carries

    Authorization: Yard <ts> <nonce> <target> <body> <sender> <hmac>

where the HMAC (SHA-256, keyed by the cluster secret) covers all of the
request that matters: the method, the path and query, the timestamp, a
random nonce, the daemon the request is meant for (its host:port), a digest
of the body and the sender (a Raft peer names itself; "-" for anyone else).
The body field is the hex SHA-256 of the body, "-" for no body, or "stream"
for the data paths whose handler checks the body as it streams, against a
checksum the signed query carries (a chunk write's whole-payload CRC32C).
A daemon refuses a signature meant for another daemon, older or newer than
`MAX_SKEW` seconds, or whose nonce it has seen (net/replay.py): a captured
header can be replayed neither with another body, nor to another daemon,
nor at all. People and Prometheus may instead send the secret itself as
HTTP Basic auth (any user name) or as a Bearer token.

A chunk access token (HDFS's block access token) lets its bearer read or
write one chunk until it expires: "handle:mode:expiry:pipeline:hmac". The
master issues them; chunkservers check them with the same secret, so a
client that knows the secret but was never told about a chunk by the master
still cannot guess a token without computing it. A write token names the
pipeline the master placed, and a chunkserver forwards only within it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

MAX_SKEW = 300.0
NO_BODY = "-"
STREAMED = "stream"
ANYONE = "-"


USER_TOKEN, REDIRECT_TOKEN = "u", "r"
TOKEN_MAX_LIFETIME = 7 * 24 * 3600.0      # HDFS's delegation.token.max-lifetime


@dataclass(frozen=True)
class Delegation:
    user: str
    token_id: str
    issued: int
    expiry: int
    kind: str

    @property
    def max_date(self) -> int:
        """No renewal takes the token past this (seconds since the epoch)."""
        return self.issued + int(TOKEN_MAX_LIFETIME)


def body_digest(body) -> str:
    """The body field of a signature for BODY held in memory."""
    return hashlib.sha256(body).hexdigest() if body else NO_BODY


@dataclass(frozen=True)
class Signed:
    """What a good `Yard` signature vouches for; the daemon checks the rest."""
    ts: float
    nonce: str
    target: str
    body: str
    sender: str


_SPACE = re.compile(r"\s")


def _clean(field: str, what: str) -> str:
    if not field or _SPACE.search(field):
        raise ValueError(f"{what}: must be non-empty without spaces, got {field!r}")
    return field


class Secret:
    """The shared key, and the certificate authority a cluster that runs TLS
    is trusted by (CA_FILE; found as tls/ca.pem beside the secret file when
    not named). Its repr never shows the key."""

    __slots__ = ("_key", "ca_file", "_tls", "_hmac")

    def __init__(self, key: bytes, ca_file: str | None = None):
        if len(key) < 16:
            raise ValueError("secret: must be at least 16 bytes")
        self._key = key
        self.ca_file = ca_file or None
        self._tls = None
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)   # keyed once, copied per use

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    def __reduce__(self):
        return Secret, (self._key, self.ca_file)     # the keyed HMAC and ssl context are rebuilt

    @classmethod
    def generate(cls) -> Secret:
        return cls(secrets.token_hex(32).encode())

    @classmethod
    def load(cls, path: str | os.PathLike, ca_file: str | None = None) -> Secret:
        p = Path(path)
        try:
            key = p.read_bytes().strip()
        except FileNotFoundError:
            raise FileNotFoundError(2, "cluster secret file not found", str(p)) from None
        if not ca_file and (p.parent / "tls" / "ca.pem").exists():
            ca_file = str(p.parent / "tls" / "ca.pem")
        return cls(key).with_ca(ca_file) if ca_file else cls(key)

    def with_ca(self, ca_file: str | os.PathLike) -> Secret:
        """This secret for a cluster whose daemons' certificates CA_FILE signs."""
        if not os.path.exists(ca_file):
            raise FileNotFoundError(2, "cluster CA certificate not found", str(ca_file))
        return Secret(self._key, str(ca_file))

    @property
    def scheme(self) -> str:
        """How this cluster's daemons are reached: "https" when it runs TLS."""
        return "https" if self.ca_file else "http"

    def client_tls(self):
        """The ssl context that verifies the cluster's daemons, or None."""
        if self.ca_file and self._tls is None:
            import ssl
            ctx = ssl.create_default_context(cafile=self.ca_file)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls = ctx
        return self._tls

    def save(self, path: str | os.PathLike) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._key + b"\n")
        os.chmod(p, 0o600)

    def mac(self, message: str) -> str:
        h = self._hmac.copy()
        h.update(message.encode())
        return h.hexdigest()

    def matches(self, candidate: bytes) -> bool:
        return hmac.compare_digest(self._key, candidate)

    # -- request signatures -------------------------------------------------

    def sign(self, method: str, path_qs: str, target: str, body: str = NO_BODY,
             sender: str = ANYONE, now: float | None = None) -> str:
        """The Authorization header of one request to the daemon at TARGET
        (host:port); BODY is body_digest(body), NO_BODY or STREAMED."""
        ts = f"{(time.time() if now is None else now):.3f}"
        nonce = secrets.token_hex(12)
        fields = [ts, nonce, _clean(target, "target"), _clean(body, "body"),
                  _clean(sender, "sender")]
        return f"Yard {' '.join(fields)} {self.mac(_signed_text(method, path_qs, fields))}"

    def check_header(self, method: str, path_qs: str, header: str | None,
                     now: float | None = None) -> tuple[Signed | None, str | None]:
        """(what a Yard signature vouches for, None), (None, None) for the
        secret itself as Basic or Bearer, or (None, the reason it fails).
        The caller checks the target, the nonce and the body."""
        if not header:
            return None, "missing credentials: this cluster requires its secret"
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "yard":
            fields = value.split(" ")
            if len(fields) != 6:
                return None, "malformed signature"
            ts_text, nonce, target, body, sender, sig = fields
            try:
                ts = float(ts_text)
            except ValueError:
                return None, "malformed signature"
            if not math.isfinite(ts):
                return None, "malformed signature (timestamp is not a finite number)"
            if abs((time.time() if now is None else now) - ts) > MAX_SKEW:
                return None, "signature expired (clocks more than 300 s apart?)"
            want = self.mac(_signed_text(method, path_qs, fields[:5]))
            if not hmac.compare_digest(want, sig):
                return None, "wrong cluster secret"
            return Signed(ts, nonce, target, body, sender), None
        if scheme == "basic":
            try:
                _user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, "malformed basic credentials"
            return None, None if self.matches(password.encode()) else "wrong cluster secret"
        if scheme == "bearer":
            return None, None if self.matches(value.strip().encode()) else "wrong cluster secret"
        return None, f"unsupported authorization scheme {scheme!r}"

    # -- chunk access tokens ------------------------------------------------

    def chunk_token(self, handle: str, mode: str, lifetime: float, pipeline: list[str] = (),
                    now: float | None = None) -> str:
        """A token for MODE on HANDLE; a write token names the PIPELINE of
        chunkserver addresses the master placed the chunk on."""
        expiry = int((time.time() if now is None else now) + lifetime)
        pipe = base64.urlsafe_b64encode(",".join(pipeline).encode()).decode().rstrip("=")
        body = f"{handle}:{mode}:{expiry}:{pipe}"
        return f"{body}:{self.mac(body)}"

    def check_chunk_token(self, token: str | None, handle: str, mode: str,
                          now: float | None = None) -> str | None:
        """None if TOKEN grants MODE on HANDLE now, else why not."""
        if not token:
            return "missing chunk access token"
        parts = token.split(":")
        if len(parts) != 5:
            return "malformed chunk access token"
        t_handle, t_mode, t_expiry, _pipe, sig = parts
        if not hmac.compare_digest(self.mac(":".join(parts[:4])), sig):
            return "invalid chunk access token"
        if t_handle != handle or mode not in t_mode:
            return f"chunk access token does not grant {mode!r} on chunk {handle}"
        try:
            expired = int(t_expiry) < (time.time() if now is None else now)
        except ValueError:
            return "malformed chunk access token"
        return "chunk access token expired" if expired else None

    @staticmethod
    def token_pipeline(token: str) -> list[str]:
        """The chunkserver addresses a (checked) write token names."""
        pipe = token.split(":")[3]
        text = base64.urlsafe_b64decode(pipe + "=" * (-len(pipe) % 4)).decode()
        return [a for a in text.split(",") if a]

    # -- delegation tokens (WebHDFS) ------------------------------------------

    def delegation_token(self, user: str, lifetime: float, now: float | None = None,
                         issued: int | None = None, kind: str = USER_TOKEN) -> str:
        """A token naming USER, good for LIFETIME seconds but never past
        TOKEN_MAX_LIFETIME after ISSUED (default now): what a WebHDFS client
        passes as `delegation=`. KIND: USER_TOKEN for people, REDIRECT_TOKEN
        for the short ones the master puts in a redirect. URL-safe."""
        now = time.time() if now is None else now
        issued = int(now) if issued is None else int(issued)
        expiry = min(int(now + lifetime), issued + int(TOKEN_MAX_LIFETIME))
        name = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        body = f"{name}.{secrets.token_hex(8)}.{issued}.{expiry}.{kind}"
        return f"{body}.{self.mac('delegation:' + body)}"

    def parse_delegation_token(self, token: str) -> tuple[Delegation | None, str | None]:
        """(what TOKEN says, None) if this cluster signed it, else (None, why
        not). Its expiry is the caller's to check (a renewal may extend it)."""
        parts = token.split(".")
        if len(parts) != 6:
            return None, "malformed delegation token"
        name, token_id, issued, expiry, kind, sig = parts
        if not hmac.compare_digest(self.mac("delegation:" + ".".join(parts[:5])), sig):
            return None, "invalid delegation token (signed with another secret?)"
        try:
            user = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            tok = Delegation(user, token_id, int(issued), int(expiry), kind)
        except (ValueError, UnicodeDecodeError):
            return None, "malformed delegation token"
        if tok.kind not in (USER_TOKEN, REDIRECT_TOKEN) or tok.expiry > tok.max_date:
            return None, "malformed delegation token"
        return tok, None

    def check_delegation_token(self, token: str, now: float | None = None
                               ) -> tuple[Delegation | None, str | None]:
        """(what TOKEN says, None) if it is good now, else (None, why not)."""
        tok, reason = self.parse_delegation_token(token)
        if tok is not None and tok.expiry < (time.time() if now is None else now):
            return None, "delegation token expired"
        return tok, reason


def _signed_text(method: str, path_qs: str, fields: list[str]) -> str:
    return "\n".join(["yard-request-v2", method.upper(), path_qs, *fields])
