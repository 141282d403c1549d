"""The HTTP side every daemon shares: authentication, msgpack RPC, lifecycle.

A control call is `POST /rpc/<name>` with a msgpack body; the reply is a
msgpack body, or an error body (errors.to_wire) with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
from aiohttp import web

from stackyard import errors
from stackyard.net.auth import Secret

log = logging.getLogger(__name__)

MSGPACK = "application/x-msgpack"
_STATUS = {"ENOENT": 404, "EAUTH": 401, "EACCES": 403, "EINVAL": 400, "EEXIST": 409,
           "EBUSY": 409, "ESAFEMODE": 503, "EREMOTE": 500}


def error_response(exc: BaseException) -> web.Response:
    body = errors.to_wire(exc)
    status = _STATUS.get(body["error"], 400)
    headers = {"WWW-Authenticate": 'Basic realm="stackyard"'} if status == 401 else None
    return web.Response(body=msgpack.packb(body), status=status, content_type=MSGPACK,
                        headers=headers)


def auth_middleware(secret: Secret, own_auth: tuple[str, ...] = ()):
    """Every request must carry the secret, except under OWN_AUTH: path
    prefixes whose handlers authenticate in their own protocol's way."""
    @web.middleware
    async def check(request: web.Request, handler):
        if own_auth and request.path.startswith(own_auth):
            return await handler(request)
        reason = secret.check_header(request.method, request.path_qs,
                                     request.headers.get("Authorization"))
        if reason is not None:
            exc = errors.AuthError(f"authentication failed: {reason}")
            if request.path.startswith(("/rpc/", "/chunk/")):
                return error_response(exc)
            return web.Response(status=401, text=f"401 {exc}\n",
                                headers={"WWW-Authenticate": 'Basic realm="stackyard"'})
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
        except (OSError, ValueError, errors.StackyardError, PermissionError) as exc:
            return error_response(exc)
        except KeyError as exc:
            return error_response(ValueError(f"missing argument {exc.args[0]!r}"))
        except Exception as exc:  # a bug: keep the daemon up, tell the caller
            log.exception("rpc %s failed", request.path)
            return error_response(errors.RemoteError(f"{type(exc).__name__}: {exc}"))
        return web.Response(body=msgpack.packb(result), content_type=MSGPACK)

    return route


def make_app(secret: Secret, own_auth: tuple[str, ...] = ()) -> web.Application:
    return web.Application(middlewares=[auth_middleware(secret, own_auth)],
                           client_max_size=1024 ** 3)


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
                on_started: Callable[[str], Awaitable[None]] | None = None) -> None:
    """Serve APP until SIGTERM / SIGINT. Writes "host:port" to ADDR_FILE once bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0]
    address = f"{bound[0]}:{bound[1]}"
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
