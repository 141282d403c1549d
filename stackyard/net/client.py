"""The blocking HTTP client that user code talks to the cluster through.

It speaks the same wire as the aiohttp daemons (signed requests, msgpack
bodies, streamed chunk data) but on the standard library's http.client,
because user code calls it synchronously, from threads, and from processes
forked by the job engine, where an event loop running in a helper thread
would not survive the fork. Connections are kept alive per thread and per
process.
"""

from __future__ import annotations

import http.client
import os
import threading
from urllib.parse import urlencode

import msgpack

from stackyard import errors
from stackyard.net.auth import STREAMED, Secret, body_digest

MSGPACK = "application/x-msgpack"
_RETRY_ON_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                   http.client.CannotSendRequest, http.client.BadStatusLine)


class HttpPool:
    """Keep-alive connections, one per (address, thread), reset after fork."""

    def __init__(self, secret: Secret, timeout: float = 60.0):
        self.secret = secret
        self.timeout = timeout
        self._local = threading.local()

    def _conns(self) -> dict:
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            self._local.pid = pid
            self._local.conns = {}
        return self._local.conns

    def _connection(self, address: str) -> tuple[http.client.HTTPConnection, bool]:
        conns = self._conns()
        conn = conns.get(address)
        if conn is not None:
            return conn, True
        host, _, port = address.rpartition(":")
        tls = self.secret.client_tls()
        conn = (http.client.HTTPSConnection(host, int(port), timeout=self.timeout, context=tls)
                if tls is not None else
                http.client.HTTPConnection(host, int(port), timeout=self.timeout))
        conns[address] = conn
        return conn, False

    def drop(self, address: str) -> None:
        conn = self._conns().pop(address, None)
        if conn is not None:
            conn.close()

    def request(self, address: str, method: str, path: str, query: dict | None = None,
                body=None, headers: dict | None = None,
                streamed: bool = False) -> http.client.HTTPResponse:
        """Send one request; the caller reads (and must finish reading) the
        response. The signature covers BODY's digest, unless STREAMED says the
        daemon checks the body against a checksum in the (signed) query."""
        path_qs = path + ("?" + urlencode(query) if query else "")
        digest = STREAMED if streamed else body_digest(body)
        for attempt in (0, 1):
            conn, reused = self._connection(address)
            hdrs = {"Authorization": self.secret.sign(method, path_qs, address, digest)}
            if headers:
                hdrs.update(headers)
            try:
                conn.request(method, path_qs, body=body, headers=hdrs)
                return conn.getresponse()
            except _RETRY_ON_STALE as exc:
                self.drop(address)
                if reused and attempt == 0 and not hasattr(body, "read"):
                    continue
                raise errors.ClusterUnavailable(f"connection to {address} lost: {exc}") from None
            except (ConnectionRefusedError, TimeoutError, OSError) as exc:
                self.drop(address)
                reason = exc.strerror or str(exc) or type(exc).__name__
                raise errors.ClusterUnavailable(f"cannot reach {address}: {reason}") from None
        raise AssertionError("unreachable")

    def call(self, address: str, name: str, /, **args) -> object:
        """One msgpack RPC; raises the daemon's error as its exception class."""
        try:
            packed = msgpack.packb(args)
        except (OverflowError, TypeError) as exc:       # a caller's argument, not the wire
            raise ValueError(f"{name}: an argument cannot be sent ({exc})") from None
        resp = self.request(address, "POST", f"/rpc/{name}", body=packed,
                            headers={"Content-Type": MSGPACK})
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.drop(address)
            raise errors.ClusterUnavailable(f"connection to {address} lost: {exc}") from None
        return decode_reply(resp.status, data, address)

    def close(self) -> None:
        for conn in self._conns().values():
            conn.close()
        self._conns().clear()


def raise_refusal(status: int, data: bytes, address: str) -> None:
    """A non-200 answer to a data request: raise the daemon's error (or RemoteError)."""
    decode_reply(status, data, address)
    raise errors.RemoteError(f"{address} answered HTTP {status}")


def decode_reply(status: int, data: bytes, address: str) -> object:
    try:
        body = msgpack.unpackb(data) if data else None
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        body = None
    if status >= 400:
        if isinstance(body, dict) and "error" in body:
            exc = errors.from_wire(body)
            if isinstance(exc, errors.AuthError):
                exc = errors.AuthError(f"{exc} (refused by {address})")
            raise exc
        raise errors.RemoteError(f"{address} answered HTTP {status}")
    return body
