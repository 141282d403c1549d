"""The master as a daemon: its RPCs over HTTP, the replicated log's Raft
traffic, the periodic check, the status page, the file browser and /metrics.

A standby answers the chunkservers (they heartbeat and report to every
master) and, when asked for them (`stale`), reads marked stale; everything
else it refuses with StandbyError naming the active master. The active
master's replies wait until what they saw is committed (journal.py)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from stackyard.cluster.config import MasterConfig
from stackyard.cluster.tls import server_context
from stackyard.dfs.master import Master
from stackyard.dfs.webhdfs import OWN_AUTH, WebHdfsMaster
from stackyard.errors import StandbyError
from stackyard.net.aio import AioClient
from stackyard.net.auth import Secret
from stackyard.net.server import make_app, rpc, serve
from stackyard.web import pages

log = logging.getLogger("stackyard.master")
ANYWHERE = {"heartbeat", "report", "bad_replica", "cluster"}     # any master answers these
SHADOW_READS = {"stat", "list", "locations", "du", "fsck"}     # a standby's, if asked


def _marked_stale(result, index: int):
    """A standby's answer: maybe a little behind the active master's."""
    if isinstance(result, dict):
        return {**result, "stale": True, "index": index}
    return [{**r, "stale": True} if isinstance(r, dict) else r for r in result]


class MasterDaemon:
    def __init__(self, cfg: MasterConfig):
        self.cfg = cfg
        self.master = Master(cfg, Secret.load(cfg.secret_file, cfg.tls_ca))
        self.app = make_app(self.master.secret, own_auth=OWN_AUTH)
        for name in dir(self.master):
            if name.startswith("rpc_"):
                self.app.router.add_post(f"/rpc/{name[4:]}",
                                         rpc(self._route(name[4:], getattr(self.master, name))))
        self.app.router.add_post("/raft/step", self.master.journal.handle_step)
        self.app.router.add_get("/", self.status)
        self.app.router.add_get("/status", self.status)
        self.app.router.add_get("/browse", self.browse)
        self.app.router.add_get("/metrics", self.metrics)
        WebHdfsMaster(self.master).install(self.app)

    def _route(self, name: str, handler):
        async def call(a: dict):
            m = self.master
            if name in ANYWHERE:
                return handler(a)
            if not m.active:
                if name in SHADOW_READS and a.get("stale") is True:
                    return _marked_stale(handler(a), m.journal.index)
                raise StandbyError(f"{m.cfg.node_id} is a standby master", m.journal.leader)
            result = handler(a)
            await m.journal.acknowledged(read=name in SHADOW_READS)
            return result
        return call

    async def status(self, _request: web.Request) -> web.Response:
        return web.Response(text=pages.master_page(self.master.rpc_cluster({})),
                            content_type="text/html")

    async def browse(self, request: web.Request) -> web.Response:
        path = request.query.get("path", "/")
        m = self.master
        try:
            node = m.ns.get(path)
            if node.is_dir:
                body = pages.directory_page(path, m.rpc_list({"path": path, "user": m.superuser}))
            else:
                locs = m.rpc_locations({"path": path, "user": m.superuser})
                body = pages.file_page(m.stat(node, path), locs["chunks"])
        except (OSError, ValueError) as exc:
            body = pages.error_page(path, exc)
        return web.Response(text=body, content_type="text/html")

    async def metrics(self, _request: web.Request) -> web.Response:
        info = self.master.rpc_cluster({})
        live = sum(1 for s in info["servers"] if s["alive"])
        values = {
            "chunkservers_live": live, "chunkservers_dead": len(info["servers"]) - live,
            "files": info["files"], "chunks_total": sum(info["chunks"].values()),
            "chunks_under_replicated": info["chunks"]["under-replicated"],
            "chunks_corrupt": info["chunks"]["corrupt"],
            "chunks_missing": info["chunks"]["missing"],
            "oplog_txid": info["txid"], "safemode": int(info["safemode"]),
            "leases": info["leases"],
            "capacity_bytes": sum(s["capacity"] for s in info["servers"] if s["alive"]),
            "used_bytes": sum(s["used"] for s in info["servers"] if s["alive"]),
        }
        return web.Response(text=pages.prometheus("stackyard_master", values),
                            content_type="text/plain")

    async def tick_loop(self) -> None:
        period = min(1.0, self.cfg.heartbeat_interval / 2)
        while True:
            await asyncio.sleep(period)
            try:
                self.master.tick()
            except Exception:
                log.exception("periodic check failed")

    async def run(self) -> None:
        async def started(_address: str) -> None:
            self.tasks = [asyncio.create_task(self.tick_loop()),
                          *self.master.journal.start(AioClient(self.master.secret, timeout=2.0),
                                                     self.cfg.tick)]

        try:
            await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                        tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        finally:
            self.master.close()
