"""The chunkserver daemon: stores replicas, serves and accepts chunk data
(only with a master-issued access token), forwards writes down the pipeline,
heartbeats to the master and carries out its commands (replicate, delete,
roll back), and scans its replicas' checksums in the background.

Wire (all requests signed with the cluster secret, see net/auth.py):
    POST /chunk/write?handle&version&offset&length&crc&token&next=A,B
         body: the bytes. Written locally and streamed on to the first of
         `next` while they arrive. Reply (msgpack) {"acked": [server ids
         that made it durable, in pipeline order], "failed": address of the
         first member that did not, or None, "error": why}.
    GET  /chunk/read?handle&offset&length&version&token
         body: CRC32C of each covered 64 KiB block (4 bytes each), then the
         bytes of those whole blocks; headers X-Yard-Start / X-Yard-Count.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
import uuid
from pathlib import Path

import crc32c
from aiohttp import web

from stackyard import errors
from stackyard.cluster.config import BLOCK, ChunkserverConfig, master_list
from stackyard.cluster.tls import server_context
from stackyard.dfs.chunkstore import ChunkStore, ChunkWrite, check_handle
from stackyard.dfs.webhdfs import OWN_AUTH
from stackyard.dfs.webhdfs_data import WebHdfsData
from stackyard.net.aio import AioClient
from stackyard.net.auth import STREAMED, Secret
from stackyard.net.server import BODY_TIMEOUT, error_response, make_app, rpc, serve

log = logging.getLogger("stackyard.chunkserver")
PIECE = 1 << 20


class Chunkserver:
    def __init__(self, cfg: ChunkserverConfig):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.store = ChunkStore(cfg.data_dir)
        self.server_id = self._server_id(Path(cfg.data_dir))
        self.peers = AioClient(self.secret)
        self.address = ""
        self.masters = master_list(cfg.master)
        # confirmed deletions not yet told to each master; the highest epoch an
        # active master has shown (a deposed one's commands are refused)
        self.deleted: dict[str, list[str]] = {m: [] for m in self.masters}
        self.epoch = 0
        self.locks: dict[str, asyncio.Lock] = {}
        self.started = time.time()
        self.counters = {"bytes_written": 0, "bytes_read": 0, "chunks_replicated": 0,
                         "checksum_failures": 0}
        self.app = make_app(self.secret, own_auth=OWN_AUTH, streamed=("/chunk/write",))
        self.app.router.add_post("/chunk/write", self.handle_write)
        self.app.router.add_get("/chunk/read", self.handle_read)
        self.app.router.add_get("/chunk/checksum", self.handle_checksum)
        self.app.router.add_post("/rpc/info", rpc(lambda _a: self.info()))
        self.app.router.add_get("/status", self.handle_status)
        self.app.router.add_get("/metrics", self.handle_metrics)
        WebHdfsData(self.secret, cfg.master).install(self.app)

    @staticmethod
    def _server_id(data_dir: Path) -> str:
        path = data_dir / "server_id"
        if path.exists():
            return path.read_text().strip()
        data_dir.mkdir(parents=True, exist_ok=True)
        sid = uuid.uuid4().hex[:12]
        path.write_text(sid + "\n")
        return sid

    def info(self) -> dict:
        total, free = self.store.disk_usage()
        used = self.store.used_bytes()
        if self.cfg.capacity:           # what it offers, however large the disk
            free = min(free, max(0, self.cfg.capacity - used))
        return {"server_id": self.server_id, "address": self.address, "rack": self.cfg.rack,
                "chunks": len(self.store.report()), "used": used,
                "capacity": self.cfg.capacity or total, "free": free, **self.counters}

    # -- the write pipeline -------------------------------------------------------

    async def handle_write(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            handle = check_handle(q.get("handle", ""))
            version, offset = int(q["version"]), int(q["offset"])
            length, crc = int(q["length"]), int(q["crc"])
            reason = self.secret.check_chunk_token(q.get("token"), handle, "w")
            if reason:
                raise errors.AuthError(reason)
            downstream = [a for a in q.get("next", "").split(",") if a]
            placed = self.secret.token_pipeline(q["token"])
            strays = [a for a in downstream if a not in placed]
            if strays:          # forward only where the master placed the chunk
                raise errors.AuthError(f"chunk {handle}: {', '.join(strays)} is not in the "
                                       "pipeline the master placed")
            session = self.store.begin_write(handle, version, offset)
        except (KeyError, ValueError) as exc:
            await request.read()
            return error_response(ValueError(f"bad write request: {exc}"))
        except (OSError, errors.StackyardError) as exc:
            await request.read()
            return error_response(exc)
        return await self._pipeline(request, session, handle, downstream, length, crc)

    async def _pipeline(self, request, session: ChunkWrite, handle, downstream, length, crc):
        queue: asyncio.Queue = asyncio.Queue(maxsize=16)
        forward = None
        if downstream:
            query = {k: v for k, v in request.query.items() if k != "next"}
            query["next"] = ",".join(downstream[1:])
            forward = asyncio.create_task(self._forward(downstream[0], query, queue, length))
        got, running = 0, 0
        try:
            while True:        # a body that stops half-way is cut off, not waited for
                async with asyncio.timeout(BODY_TIMEOUT):
                    piece = await request.content.read(PIECE)
                if not piece:
                    break
                session.write(piece)
                running = crc32c.crc32c(piece, running)
                got += len(piece)
                if forward is not None and not forward.done():
                    await _put(queue, piece, forward)
        except BaseException as exc:
            session.abort()
            if forward is not None:
                forward.cancel()
            if isinstance(exc, TimeoutError):
                return web.Response(status=408, text=f"408 chunk {handle}: the data stopped "
                                                     f"after {got} of {length} bytes\n")
            raise
        if got != length or running != crc:
            session.abort()
            if forward is not None:
                forward.cancel()
            return error_response(errors.CorruptDataError(
                5, f"chunk {handle}: data damaged in transit ({got} of {length} bytes, crc mismatch)"))
        await asyncio.to_thread(session.finish)
        self.counters["bytes_written"] += got
        acked, failed, why = [self.server_id], None, None
        if forward is not None:
            if not forward.done():
                await _put(queue, None, forward)
            try:
                down = await forward
                acked += down["acked"]
                failed, why = down.get("failed"), down.get("error")
            except Exception as exc:
                failed, why = downstream[0], str(exc) or type(exc).__name__
        return web.json_response({"acked": acked, "failed": failed, "error": why})

    async def _forward(self, address: str, query: dict, queue: asyncio.Queue, length: int) -> dict:
        async def body():
            while True:
                piece = await queue.get()
                if piece is None:
                    return
                yield piece

        url, headers = self.peers.url_and_headers(address, "POST", "/chunk/write", query,
                                                  body=STREAMED)
        headers["Content-Length"] = str(length)
        async with self.peers.session.post(url, data=body(), headers=headers) as resp:
            if resp.status != 200:
                raise errors.RemoteError(f"{address} refused the write: HTTP {resp.status} {await resp.text()}")
            return await resp.json()

    # -- reads ----------------------------------------------------------------------

    def _open_for_reading(self, q, offset: int, length: int):
        """Check the handle's shape and the read token, then open the range."""
        handle = check_handle(q.get("handle", ""))
        reason = self.secret.check_chunk_token(q.get("token"), handle, "r")
        if reason:
            raise errors.AuthError(reason)
        return self.store.open_range(handle, offset, length, int(q.get("version", 0)))

    async def handle_read(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            f, start, count, crcs = self._open_for_reading(q, int(q["offset"]), int(q["length"]))
        except _REQUEST_ERRORS as exc:
            return _refuse(exc)
        with f:
            head = struct.pack(f">{len(crcs)}I", *crcs)
            resp = web.StreamResponse(headers={
                "X-Yard-Start": str(start), "X-Yard-Count": str(count),
                "Content-Type": "application/octet-stream"})
            resp.content_length = len(head) + count
            await resp.prepare(request)
            await resp.write(head)
            left = count
            while left:
                piece = f.read(min(PIECE, left))
                if not piece:
                    break
                await resp.write(piece)
                left -= len(piece)
            self.counters["bytes_read"] += count
        await resp.write_eof()
        return resp

    async def handle_checksum(self, request: web.Request) -> web.Response:
        """MD5 of the CRC32Cs of the blocks of the first `length` bytes."""
        q = request.query
        try:
            length = int(q["length"])
            f, _start, _count, crcs = self._open_for_reading(q, 0, length)
            with f:
                crcs = list(crcs)
                if length % BLOCK:
                    f.seek(len(crcs[:-1]) * BLOCK)
                    crcs[-1] = crc32c.crc32c(f.read(length % BLOCK))
        except _REQUEST_ERRORS as exc:
            return _refuse(exc)
        digest = hashlib.md5(struct.pack(f">{len(crcs)}I", *crcs)).digest()
        return web.Response(body=digest, content_type="application/octet-stream")

    # -- talking to the master ------------------------------------------------------

    async def heartbeat_loop(self, master: str) -> None:
        """Heartbeats and reports go to every master (HDFS HA's design), so a
        standby knows every replica when it becomes active; commands are taken
        only from an active master whose epoch is not below one already seen."""
        last_full = 0.0
        while True:
            deleted, self.deleted[master] = self.deleted[master], []
            try:
                info = self.info()
                reply = await self.peers.call(
                    master, "heartbeat", server_id=self.server_id, address=self.address,
                    rack=self.cfg.rack, capacity=info["capacity"], used=info["used"],
                    free=info["free"], deleted=deleted)
                if reply["register"] or time.time() - last_full > self.cfg.report_interval:
                    await self.peers.call(master, "report", server_id=self.server_id,
                                          entries=self.store.report(), full=True)
                    last_full = time.time()
                epoch = reply.get("epoch", 0)
                if reply.get("active", True) and epoch >= self.epoch:
                    self.epoch = epoch
                    for cmd in reply["commands"]:
                        asyncio.create_task(self.run_command(cmd))
                elif reply["commands"]:
                    log.warning("refused %d commands of master %s (epoch %d < %d)",
                                len(reply["commands"]), master, epoch, self.epoch)
            except errors.AuthError as exc:
                log.error("master %s refused this chunkserver: %s", master, exc)
            except (errors.StackyardError, OSError) as exc:
                log.warning("heartbeat to master %s failed: %s", master, exc)
                self.deleted[master] = deleted + self.deleted[master]
            await asyncio.sleep(self.cfg.heartbeat_interval)

    async def _tell_masters(self, name: str, **args) -> None:
        """A report or a bad replica, to every master; one that is down hears
        it in the next full report."""
        for master in self.masters:
            try:
                await self.peers.call(master, name, server_id=self.server_id, **args)
            except (errors.StackyardError, OSError) as exc:
                log.warning("%s to master %s failed: %s", name, master, exc)

    async def run_command(self, cmd: dict) -> None:
        """Commands on one chunk run in the order the master sent them (a delete
        of a corrupt replica, then a fresh copy); asyncio.Lock is FIFO."""
        kind, handle = cmd["kind"], cmd["handle"]
        lock = self.locks.setdefault(handle, asyncio.Lock())
        async with lock:
            await self._run_command(kind, handle, cmd)
        if not lock.locked() and self.locks.get(handle) is lock:
            del self.locks[handle]

    async def _run_command(self, kind: str, handle: str, cmd: dict) -> None:
        try:
            if kind == "delete":
                self.store.delete(handle)
                for pending in self.deleted.values():
                    pending.append(handle)
            elif kind == "rollback":
                meta = self.store.meta(handle)
                if cmd.get("expect") and (handle in self.store.writing or (
                        meta is not None and meta.version != cmd["expect"])):
                    return          # written since the master looked: the write wins
                self.store.rollback(handle, cmd["version"], cmd["length"])
                await self._report_one(handle)
            elif kind == "replicate":
                await self.replicate(cmd)
        except Exception as exc:
            log.warning("command %s on %s failed: %s", kind, handle, exc)

    async def replicate(self, cmd: dict) -> None:
        handle, version, length = cmd["handle"], cmd["version"], cmd["length"]
        query = {"handle": handle, "offset": 0, "length": length, "version": version,
                 "token": cmd["token"]}
        url, headers = self.peers.url_and_headers(cmd["source"], "GET", "/chunk/read", query)
        session = self.store.begin_write(handle, version, 0)
        try:
            async with self.peers.session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise errors.RemoteError(f"source {cmd['source']} answered {resp.status}")
                nblocks = -(-length // BLOCK)
                crcs = struct.unpack(f">{nblocks}I", await resp.content.readexactly(4 * nblocks))
                for i, want in enumerate(crcs):
                    block = await resp.content.readexactly(min(BLOCK, length - i * BLOCK))
                    if crc32c.crc32c(block) != want:
                        self.counters["checksum_failures"] += 1
                        await self._tell_masters("bad_replica", handle=handle,
                                                 address=cmd["source"])
                        raise errors.CorruptDataError(5, f"source replica of {handle} is corrupt")
                    session.write(block)
        except BaseException:
            session.abort()
            self.store.delete(handle)
            raise
        session.finish()
        self.counters["chunks_replicated"] += 1
        await self._report_one(handle)

    async def _report_one(self, handle: str) -> None:
        meta = self.store.meta(handle)
        if meta is not None:
            await self._tell_masters("report", entries=[(handle, meta.version, meta.length)],
                                     full=False)

    async def scan_loop(self) -> None:
        """Verify every replica now and then, as HDFS's block scanner does, so that
        rot on a replica nobody reads is still found and repaired."""
        while True:
            await asyncio.sleep(self.cfg.scan_interval)
            for handle, _v, _n in self.store.report():
                ok = await asyncio.to_thread(self.store.verify, handle)
                if not ok:
                    self.counters["checksum_failures"] += 1
                    await self._tell_masters("bad_replica", handle=handle, address=self.address)

    # -- pages ------------------------------------------------------------------------

    async def handle_status(self, _request: web.Request) -> web.Response:
        from stackyard.web.pages import chunkserver_page
        return web.Response(text=chunkserver_page(self.info(), self.cfg.master),
                            content_type="text/html")

    async def handle_metrics(self, _request: web.Request) -> web.Response:
        from stackyard.web.pages import prometheus
        info = self.info()
        return web.Response(text=prometheus("stackyard_chunkserver", {
            k: v for k, v in info.items() if isinstance(v, int)}), content_type="text/plain")

    async def run(self) -> None:
        async def started(address: str) -> None:
            self.address = address
            for master in self.masters:
                asyncio.create_task(self.heartbeat_loop(master))
            asyncio.create_task(self.scan_loop())

        try:
            await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                        tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        finally:
            await self.peers.close()


async def _put(queue: asyncio.Queue, item, forward: asyncio.Task) -> None:
    """Queue ITEM for the downstream forwarder unless the forwarder has failed."""
    if not queue.full():
        queue.put_nowait(item)
        return
    put = asyncio.ensure_future(queue.put(item))
    done, _ = await asyncio.wait({put, forward}, return_when=asyncio.FIRST_COMPLETED)
    if put not in done:
        put.cancel()


_REQUEST_ERRORS = (KeyError, ValueError, OSError, errors.StackyardError)


def _refuse(exc: BaseException) -> web.Response:
    if isinstance(exc, KeyError):
        exc = ValueError(f"missing {exc.args[0]}")
    return error_response(exc)
