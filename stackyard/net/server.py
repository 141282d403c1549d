"""The HTTP side every daemon shares: authentication, msgpack RPC, lifecycle.

A control call is `POST /rpc/<name>` with a msgpack body; the reply is a
msgpack body, or an error body (errors.to_wire) with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
from aiohttp import web

from stackyard import errors
from stackyard.net.admission import KEEPALIVE, Admission, AdmittedSite
from stackyard.net.auth import MAX_SKEW, NO_BODY, STREAMED, Secret, Signed, body_digest
from stackyard.net.replay import NonceCache, ReplayWindowFull

log = logging.getLogger(__name__)

MSGPACK = "application/x-msgpack"
_STATUS = {"ENOENT": 404, "EAUTH": 401, "EACCES": 403, "EINVAL": 400, "EEXIST": 409,
           "EBUSY": 409, "ESAFEMODE": 503, "ESTANDBY": 503, "EREMOTE": 500, "E2BIG": 413,
           "ENOTSERVING": 409, "ENOTABLE": 404, "ETABLEEXISTS": 409, "EDISABLED": 409}
CONTROL_BODY = 64 << 20       # a control call's body; data paths stream or say their own
BODY_TIMEOUT = 60.0           # a signed body must arrive within this


def error_response(exc: BaseException) -> web.Response:
    body = errors.to_wire(exc)
    status = _STATUS.get(body["error"], 400)
    headers = {"WWW-Authenticate": 'Basic realm="stackyard"'} if status == 401 else None
    return web.Response(body=msgpack.packb(body), status=status, content_type=MSGPACK,
                        headers=headers)


class Guard:
    """What a daemon checks of every request before a handler sees it: a
    signature made with the cluster secret, for this daemon, never seen
    before, over the very body that came (Yard signatures, net/auth.py); or
    the secret itself as Basic or Bearer auth, for people's pages and
    Prometheus (GET only). Bodies are bounded: BODY_LIMIT bytes, or
    LIMITS[path prefix] (read whole, then hashed); STREAMED path prefixes take a body their handler
    checks as it streams. OWN_AUTH prefixes authenticate in their own
    protocol's way (WebHDFS)."""

    def __init__(self, secret: Secret, own_auth: tuple[str, ...] = (),
                 streamed: tuple[str, ...] = (), limits: dict[str, int] | None = None,
                 body_limit: int = CONTROL_BODY):
        self.secret = secret
        self.own_auth = tuple(own_auth)
        self.streamed = tuple(streamed)
        self.limits = dict(limits or {})
        self.body_limit = body_limit
        self.nonces = NonceCache(2 * MAX_SKEW)
        self.admission = Admission()
        self.names: set[str] = set()
        self.any_host_port: int | None = None

    def bind(self, host: str, port: int) -> None:
        """The names this daemon answers to once it listens on HOST:PORT."""
        if host in ("", "0.0.0.0", "::"):
            self.any_host_port = port        # every address of this machine
            return
        self.names = {f"{host}:{port}", f"[{host}]:{port}"}
        if host in ("127.0.0.1", "::1", "localhost"):
            self.names |= {f"localhost:{port}", f"127.0.0.1:{port}"}
        for name in (socket.gethostname(), socket.getfqdn()):
            try:
                if host in {a[4][0] for a in socket.getaddrinfo(name, None)}:
                    self.names.add(f"{name}:{port}")
            except OSError:
                pass

    def is_me(self, target: str) -> bool:
        if target in self.names:
            return True
        host, _, port = target.rpartition(":")
        return self.any_host_port is not None and port == str(self.any_host_port) and bool(host)

    def limit(self, path: str) -> int:
        return next((n for prefix, n in self.limits.items() if path.startswith(prefix)),
                    self.body_limit)

    async def admit(self, request: web.Request) -> web.Response | None:
        """None to let REQUEST through, else the refusal to send."""
        signed, reason = self.secret.check_header(request.method, request.path_qs,
                                                  request.headers.get("Authorization"))
        if reason is None and signed is None and request.method not in ("GET", "HEAD"):
            reason = "the secret as a password opens pages only; sign requests that act"
        if reason is None and signed is not None:
            reason = self._check_signed(request, signed)
            if reason is None and signed.body not in (STREAMED, NO_BODY):
                refusal = await self._check_body(request, signed)
                if refusal is not None:
                    return refusal
            if reason is None:
                # spent only by a request that passed every other check, so a
                # forged body cannot use up the genuine request's nonce
                reason = self._first_use(signed)
        if reason is not None:
            return _refuse(request, errors.AuthError(f"authentication failed: {reason}"))
        self.admission.forget(request.transport)
        if signed is not None:
            request["yard.sender"] = signed.sender
        return None

    async def _check_body(self, request: web.Request, signed: Signed) -> web.Response | None:
        length = request.content_length
        if length is None:
            return _closing(web.Response(status=411,
                                         text="411 a signed body needs a Content-Length\n"))
        if length > self.limit(request.path):
            return _refuse(request, errors.RequestTooLarge(
                f"request body of {length} bytes exceeds this path's limit of "
                f"{self.limit(request.path)}"))
        try:
            async with asyncio.timeout(BODY_TIMEOUT):      # no task per request, as wait_for
                body = await request.read()
        except TimeoutError:
            return _closing(web.Response(status=408, text="408 the body did not arrive in time\n"))
        if body_digest(body) != signed.body:
            return _refuse(request, errors.AuthError(
                "authentication failed: the body is not the one that was signed"))
        return None

    def _check_signed(self, request: web.Request, signed: Signed) -> str | None:
        if not self.is_me(signed.target):
            return f"the request was signed for {signed.target}, not for this daemon"
        streamed_path = bool(self.streamed) and request.path.startswith(self.streamed)
        if signed.body == STREAMED and not streamed_path:
            return f"{request.path} takes no streamed body"
        if streamed_path and signed.body not in (STREAMED, NO_BODY):
            return f"{request.path} checks its body as it streams: sign it as {STREAMED!r}"
        if signed.body == NO_BODY and request.body_exists:
            return "the request has a body its signature does not cover"
        return None

    def _first_use(self, signed: Signed) -> str | None:
        try:
            if not self.nonces.first_use(signed.nonce, signed.ts, time.time()):
                return "replayed request (its nonce was used before)"
        except ReplayWindowFull as exc:
            return str(exc)
        return None


def _closing(resp: web.Response) -> web.Response:
    """RESP, after which the connection closes: a refused caller keeps nothing open."""
    resp.force_close()
    return resp


def _refuse(request: web.Request, exc: BaseException) -> web.Response:
    if request.path.startswith(("/rpc/", "/chunk/", "/raft/", "/block", "/shuffle")):
        return _closing(error_response(exc))
    status = _STATUS.get(errors.to_wire(exc)["error"], 400)
    return _closing(web.Response(status=status, text=f"{status} {exc}\n",
                                 headers={"WWW-Authenticate": 'Basic realm="stackyard"'}
                                 if status == 401 else None))


def guard_middleware(guard: Guard):
    @web.middleware
    async def check(request: web.Request, handler):
        if guard.own_auth and request.path.startswith(guard.own_auth):
            resp = await handler(request)
            if resp.status not in (401, 403):     # its protocol's own check passed
                guard.admission.forget(request.transport)
            return resp
        refusal = await guard.admit(request)
        if refusal is not None:
            return refusal
        return await handler(request)

    return check


def rpc(handler: Callable[[dict], Awaitable[object] | object]):
    """Wrap HANDLER(args) -> result as a msgpack-in, msgpack-out route."""

    async def route(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            args = msgpack.unpackb(raw) if raw else {}
            if not isinstance(args, dict):
                raise ValueError("request body must be a map")
            result = handler(args)
            if asyncio.iscoroutine(result):
                result = await result
            body = msgpack.packb(result)
        except (OSError, ValueError, errors.StackyardError, PermissionError) as exc:
            return error_response(exc)
        except KeyError as exc:
            return error_response(ValueError(f"missing argument {exc.args[0]!r}"))
        except (TypeError, AttributeError, IndexError) as exc:   # an argument of the wrong shape
            log.info("rpc %s: malformed request: %s", request.path, exc)
            return error_response(ValueError(f"malformed request: {exc}"))
        except Exception as exc:  # a bug: keep the daemon up, tell the caller
            log.exception("rpc %s failed", request.path)
            return error_response(errors.RemoteError(f"{type(exc).__name__}: {exc}"))
        return web.Response(body=body, content_type=MSGPACK)

    return route


def make_app(secret: Secret, own_auth: tuple[str, ...] = (), streamed: tuple[str, ...] = (),
             limits: dict[str, int] | None = None) -> web.Application:
    guard = Guard(secret, own_auth, streamed, limits)
    app = web.Application(middlewares=[guard_middleware(guard)],
                          client_max_size=max([guard.body_limit, *guard.limits.values()]))
    app["guard"] = guard
    return app


async def stream_file(request: web.Request, f, length: int,
                      piece: int = 1 << 20) -> web.StreamResponse:
    """LENGTH bytes from F's position as the response body, read a piece at a
    time in a thread so that a blocking file (local or DFS) never stalls the
    event loop."""
    resp = web.StreamResponse(headers={"Content-Length": str(length),
                                       "Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    left = length
    while left:
        data = await asyncio.to_thread(f.read, min(piece, left))
        if not data:
            break
        await resp.write(data)
        left -= len(data)
    await resp.write_eof()
    return resp


async def serve(app: web.Application, host: str, port: int, addr_file: str | None,
                on_started: Callable[[str], Awaitable[None]] | None = None,
                tls=None) -> None:
    """Serve APP until SIGTERM / SIGINT, over TLS with the ssl context TLS if
    given. Writes "host:port" to ADDR_FILE once bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=KEEPALIVE)
    await runner.setup()
    guard = app.get("guard")
    site = AdmittedSite(runner, host, port, guard.admission if guard else Admission(),
                        ssl_context=tls)
    await site.start()
    bound = runner.addresses[0]
    address = f"{bound[0]}:{bound[1]}"
    if guard is not None:
        guard.bind(host, bound[1])
    if on_started is not None:
        await on_started(address)
    if addr_file:
        tmp = Path(addr_file + ".tmp")
        tmp.write_text(address)
        os.replace(tmp, addr_file)
    log.info("serving on %s", address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
