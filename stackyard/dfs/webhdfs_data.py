"""WebHDFS on a chunkserver: the data half (OPEN, CREATE, APPEND,
GETFILECHECKSUM) that the master redirects to, as a DataNode serves it.

The chunkserver acts as a DFS client on the caller's behalf (the user named
by the delegation token the redirect carries), with the ordinary blocking
client run in threads so that the event loop keeps serving chunk traffic,
including the writes this very request pipes to it.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web

from stackyard.dfs.client import FileSystem
from stackyard.dfs.webhdfs import (
    boolean,
    checksum_body,
    identify,
    no_such_op,
    number,
    remote_exception,
    request_path,
    unix_groups,
)
from stackyard.net.auth import REDIRECT_TOKEN, Secret
from stackyard.net.server import stream_file

PIECE = 1 << 20


class WebHdfsData:
    def __init__(self, secret: Secret, master: str):
        self.secret, self.master = secret, master

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/webhdfs/v1{path:[\\s\\S]*}", self.handle)

    def _client(self, user: str) -> FileSystem:
        fs = FileSystem(self.master, self.secret, user)
        fs.groups = unix_groups(user)   # the caller's groups, not this daemon's
        return fs

    async def handle(self, request: web.Request) -> web.StreamResponse:
        fs = None
        try:
            user, _tok = identify(self.secret, request, "nobody", kinds=(REDIRECT_TOKEN,))
            op = request.query.get("op", "").upper()
            action = {("GET", "OPEN"): self.open, ("PUT", "CREATE"): self.create,
                      ("POST", "APPEND"): self.append,
                      ("GET", "GETFILECHECKSUM"): self.checksum}.get((request.method, op))
            if action is None:
                raise no_such_op(request.method, op)
            fs = self._client(user)
            return await action(request, fs, request_path(request))
        except Exception as exc:   # every failure before the body starts becomes a RemoteException
            return remote_exception(exc)
        finally:
            if fs is not None:
                fs.close()

    async def open(self, request: web.Request, fs: FileSystem, path: str) -> web.StreamResponse:
        q = request.query
        offset = number(q.get("offset"), "offset", 0)
        f = await asyncio.to_thread(fs.open, path, "rb")
        try:
            size = f.raw.length
            if offset > size:
                raise ValueError(f"Offset={offset} out of the range [0, {size}); OPEN, path={path}")
            length = number(q.get("length"), "length")
            end = size if length is None else min(size, offset + length)
            await asyncio.to_thread(f.seek, offset)
            return await stream_file(request, f, end - offset, PIECE)
        finally:
            f.close()

    async def create(self, request: web.Request, fs: FileSystem, path: str) -> web.Response:
        q = request.query
        overwrite = boolean(q.get("overwrite"), "overwrite")
        replication = number(q.get("replication"), "replication")
        chunk_size = number(q.get("blocksize"), "blocksize")
        mode = number(q.get("permission"), "permission", None, base=8)
        f = await asyncio.to_thread(fs.open, path, "wb" if overwrite else "xb", replication or None,
                                    chunk_size or None)
        await self._pour(request, f)
        if mode is not None:
            await asyncio.to_thread(fs.chmod, path, mode)
        return web.Response(status=201, headers={
            "Location": f"webhdfs://{q.get('namenoderpcaddress') or self.master}{quote(path)}"})

    async def append(self, request: web.Request, fs: FileSystem, path: str) -> web.Response:
        f = await asyncio.to_thread(fs.open, path, "ab")
        await self._pour(request, f)
        return web.Response(status=200)

    async def _pour(self, request: web.Request, f) -> None:
        """The request body into F, a piece at a time; the file is closed
        (committed) only if the whole body arrived."""
        try:
            buf = bytearray()
            async for data in request.content.iter_chunked(PIECE):
                buf += data
                if len(buf) >= PIECE:
                    await asyncio.to_thread(f.write, bytes(buf))
                    buf.clear()
            if buf:
                await asyncio.to_thread(f.write, bytes(buf))
            await asyncio.to_thread(f.close)
        except BaseException:
            await asyncio.to_thread(f.abort)
            raise

    async def checksum(self, request: web.Request, fs: FileSystem, path: str) -> web.Response:
        st = await asyncio.to_thread(fs.stat, path)
        result = await asyncio.to_thread(fs.checksum, path)
        return web.json_response(checksum_body(result, st["chunk_size"]))
