"""The aiohttp client daemons use to talk to each other (heartbeats, the
write pipeline, re-replication): signed requests, msgpack RPC."""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp
import msgpack
from yarl import URL

from stackyard import errors
from stackyard.net.auth import ANYONE, NO_BODY, Secret, body_digest
from stackyard.net.client import MSGPACK, decode_reply


class AioClient:
    def __init__(self, secret: Secret, timeout: float = 30.0):
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            tls = self.secret.client_tls()
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, auto_decompress=False,
                connector=aiohttp.TCPConnector(ssl=tls) if tls is not None else None)
        return self._session

    def url_and_headers(self, address: str, method: str, path: str, query: dict | None,
                        body: str = NO_BODY, sender: str = ANYONE) -> tuple[URL, dict]:
        """The URL exactly as signed (yarl must not re-encode it, or the daemon
        would check the signature against a different string), and the
        signature for ADDRESS over BODY (a body_digest, or STREAMED)."""
        path_qs = path + ("?" + urlencode(query) if query else "")
        return (URL(f"{self.secret.scheme}://{address}{path_qs}", encoded=True),
                {"Authorization": self.secret.sign(method, path_qs, address, body, sender)})

    async def call(self, address: str, name: str, /, **args) -> object:
        data = msgpack.packb(args)
        url, headers = self.url_and_headers(address, "POST", f"/rpc/{name}", None,
                                            body_digest(data))
        headers["Content-Type"] = MSGPACK
        try:
            async with self.session.post(url, data=data, headers=headers) as resp:
                data = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.ClusterUnavailable(f"cannot reach {address}: {exc or type(exc).__name__}") from None
        return decode_reply(status, data, address)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
