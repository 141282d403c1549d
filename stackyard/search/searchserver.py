"""The `searchserver` daemon (an Elasticsearch node): shard copies opened
from the DFS, our RPC between servers on `port` (Elasticsearch's transport
port, 9300) and Elasticsearch's REST API on `http_port` (9200).

Its lock is the ephemeral node /yard-search/servers/<name>; when its
session is lost it stops at once, since the master will hand its primaries
to replicas (as a tablet server does)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from aiohttp import web

from stackyard import errors
from stackyard.cluster.tls import server_context
from stackyard.coord.client import CoordClient
from stackyard.coord.recipes import Election, watch_lock
from stackyard.coord.recipes import _ensure as ensure_path
from stackyard.dfs.client import FileSystem
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool
from stackyard.net.server import make_app, rpc, serve
from stackyard.search import coordinator, pages, rest
from stackyard.search.node import MASTER, SERVERS, Node

log = logging.getLogger("stackyard.searchserver")


class SearchServerDaemon:
    def __init__(self, cfg):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.app = make_app(self.secret)
        for name in ("write", "replicate", "recover", "search", "get", "admin",
                     "replica_refresh", "stats", "rewrite", "adopt", "adopt_replica"):
            self.app.router.add_post(f"/rpc/{name}", rpc(self._threaded(name)))
        self.app.router.add_get("/", self.page)
        self.app.router.add_get("/metrics", self.metrics)
        self.node: Node | None = None
        self.coord_api: coordinator.Coordinator | None = None
        self.address = self.http = ""
        self.started = time.time()
        self.pool = HttpPool(self.secret, timeout=60)
        self._runner = None

    def _threaded(self, name: str):
        fn = getattr(self, f"rpc_{name}")

        async def call(a: dict):
            if self.node is None:
                raise errors.NotServingError("search server starting")
            return await asyncio.to_thread(fn, a)
        return call

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        async def started(address: str) -> None:
            self.address = address
            await self._start_rest()
            await asyncio.to_thread(self._start, address)

        await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                    tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        if self._runner is not None:
            await self._runner.cleanup()

    async def _start_rest(self) -> None:
        app = rest.make_app(self)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.http_port,
                           ssl_context=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.http = f"{host}:{port}"
        if self.cfg.http_addr_file:
            tmp = self.cfg.http_addr_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(self.http)
            os.replace(tmp, self.cfg.http_addr_file)

    def _start(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        name = f"{host},{port},{int(self.started * 1000)}"
        fs = FileSystem(self.cfg.master, self.secret, user=None)
        coord = CoordClient(self.cfg.coords.split(","), self.secret,
                            session_timeout=self.cfg.session_timeout)
        coord.start_session()
        ensure_path(coord, SERVERS)
        node = Node(name, fs, coord, self.pool, self.cfg.replication or None)
        coord.create(f"{SERVERS}/{name}", b"{}", ephemeral=True)
        node.report(self.address, self.http)
        self.node = node
        self.coord_api = coordinator.Coordinator(node)
        for target, what in ((self._follow, "follow"), (self._housekeep, "housekeeping"),
                             (self._campaign, "election"), (self._watch_lock, "lock-watch")):
            threading.Thread(target=target, daemon=True, name=what).start()
        log.info("search server %s up; REST on %s", name, self.http)

    def _follow(self) -> None:
        while True:
            try:
                self.node.read_state()
                if self.node.is_master:
                    self.node.allocate()
                self.node.reconcile()
                self.node.report(self.address, self.http)
            except (OSError, errors.StackyardError, ValueError) as exc:
                log.warning("following the cluster state: %s", exc)
            except Exception:  # noqa: BLE001 - a bug must not stop the follower
                log.exception("following the cluster state")
            time.sleep(self.cfg.state_interval)

    def _housekeep(self) -> None:
        while True:
            time.sleep(self.cfg.refresh_interval)
            try:
                self.node.tick(self.cfg.flush_ops, self.cfg.flush_seconds)
            except Exception:  # noqa: BLE001
                log.exception("housekeeping")

    def _campaign(self) -> None:
        ensure_path(self.node.coord, MASTER)
        Election(self.node.coord, MASTER, self.node.name).campaign()
        self.node.is_master = True
        log.info("search server %s is the master (allocates shards)", self.node.name)

    def _watch_lock(self) -> None:
        watch_lock(self.node.coord, f"{SERVERS}/{self.node.name}", self.cfg.session_timeout,
                   self.fatal)

    def fatal(self, why: str) -> None:
        log.critical("search server %s stops: %s", self.node.name, why)
        logging.shutdown()
        os._exit(70)

    # -- RPCs -------------------------------------------------------------------------------

    def rpc_write(self, a):
        return self.node.write(a["index"], a["shard"], a["requests"])

    def rpc_replicate(self, a):
        return self.node.replicate(a["index"], a["shard"], a["term"], a["aid"], a["ops"])

    def rpc_recover(self, a):
        return self.node.recover(a["index"], a["shard"], a["server"], a["aid"])

    def rpc_search(self, a):
        return coordinator.search_shards(self.node, a["shards"], a["body"])

    def rpc_get(self, a):
        return self.node.copy(a["index"], a["shard"]).shard.get(a["id"])

    def rpc_admin(self, a):
        return coordinator.admin(self.node, a["index"], a["shard"], a["action"], a.get("n", 1))

    def rpc_replica_refresh(self, a):
        self.node.copy(a["index"], a["shard"]).shard.refresh()
        return True

    def rpc_rewrite(self, a):
        self.node.copy(a["index"], a["shard"], "primary").shard.flush(rewrite=True)
        return True

    def rpc_adopt(self, a):
        return self.node.adopt(a["index"], a["shard"], a["segment"])

    def rpc_adopt_replica(self, a):
        return self.node.adopt_replica(a["index"], a["shard"], a["aid"], a["segment"])

    def rpc_stats(self, a):
        return coordinator.node_stats(self.node)

    # -- pages --------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        return await asyncio.to_thread(pages.status_page, self)

    async def metrics(self, request: web.Request) -> web.Response:
        return await asyncio.to_thread(pages.metrics, self)
