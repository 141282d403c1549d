"""Which connections a daemon keeps: a bounded number that have not yet sent
one authenticated request, each closed by the server's keep-alive timer if
it idles or stops half-way through its headers.

aiohttp's handler starts its keep-alive timer as a connection opens, so an
idle or half-sent connection is closed after KEEPALIVE seconds. What aiohttp
does not bound is how many such connections may be open at once: a peer
could open thousands and hold each for that long. `AdmittedSite` counts the
connections that have not proved they hold the secret (the Guard strikes a
connection off once a request on it authenticates, and closes it after a
refusal) and, beyond `MAX_UNTRUSTED`, closes the oldest of them: a real
client authenticates within milliseconds of connecting, so a flood of
connections that never do pushes out only its own.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

# seconds a connection may idle, or take over its headers (an operator may
# set STACKYARD_IDLE_TIMEOUT in the daemons' environment)
KEEPALIVE = float(os.environ.get("STACKYARD_IDLE_TIMEOUT", "30"))
MAX_UNTRUSTED = 256       # open connections that have not yet authenticated


class Admission:
    """The set of open connections (their transports) not yet authenticated."""

    def __init__(self, limit: int = MAX_UNTRUSTED):
        self.limit = limit
        self.untrusted: dict[asyncio.BaseTransport, None] = {}    # oldest first
        self.evicted = 0

    def opened(self, transport: asyncio.BaseTransport) -> None:
        while len(self.untrusted) >= self.limit:
            oldest = next(iter(self.untrusted))
            del self.untrusted[oldest]
            self.evicted += 1
            oldest.abort()
        self.untrusted[transport] = None

    def forget(self, transport: asyncio.BaseTransport | None) -> None:
        """TRANSPORT authenticated, or closed: it no longer counts."""
        self.untrusted.pop(transport, None)


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted while untrusted."""

    def __init__(self, inner: asyncio.Protocol, admission: Admission):
        self.inner, self.admission, self.transport = inner, admission, None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.admission.opened(transport)
        self.inner.connection_made(transport)

    def connection_lost(self, exc) -> None:
        self.admission.forget(self.transport)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class AdmittedSite(web.TCPSite):
    """aiohttp's TCP site whose connections pass through ADMISSION."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, admission: Admission,
                 **kwargs):
        super().__init__(runner, host, port, reuse_address=True, **kwargs)
        self.admission = admission

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        self._server = await loop.create_server(
            lambda: _Counted(server(), self.admission), self._host, self._port,
            ssl=self._ssl_context, backlog=self._backlog, reuse_address=True)
        self._bound_port = self._server.sockets[0].getsockname()[1]
