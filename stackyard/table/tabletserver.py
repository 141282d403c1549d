"""The `tabletserver` daemon (HBase's RegionServer): serves the tablets the
master assigns it, over our RPC; holds its lock in the coordination cell.

Its lock is an ephemeral node `/yard-table/servers/<name>` in a session of
its own. When the session is lost the server stops at once, because the
master will give its tablets to others (Bigtable: a tablet server that
loses its Chubby lock kills itself). Independently of timing, the master
fences a dead server's log by renaming its directory before splitting it:
the old writer's next sync then fails, and a write not synced is never
acknowledged.

Pages: / (tablets, requests, the WAL), /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from stackyard import errors
from stackyard.cluster.tls import server_context
from stackyard.coord.client import CoordClient
from stackyard.coord.recipes import _ensure as ensure_path
from stackyard.coord.recipes import watch_lock
from stackyard.coord.tree import NoNode
from stackyard.dfs.client import FileSystem
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool
from stackyard.net.server import make_app, rpc, serve
from stackyard.table import filters, meta
from stackyard.table.model import LATEST, Kind, Schema, TabletInfo, check_row
from stackyard.table.serving import Serving
from stackyard.web import pages

log = logging.getLogger("stackyard.tabletserver")
MAX_BATCH_ROWS = 10_000


class TabletServerDaemon:
    def __init__(self, cfg):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.app = make_app(self.secret)
        for name in ("open", "close", "mutate", "mutate_rows", "increment", "append", "get", "scan", "flush",
                     "compact", "split", "merge", "status", "schema"):
            self.app.router.add_post(f"/rpc/{name}", rpc(self._threaded(name)))
        self.app.router.add_get("/", self.page)
        self.app.router.add_get("/status", self.page)
        self.app.router.add_get("/metrics", self.metrics)
        self.serving: Serving | None = None
        self.coord: CoordClient | None = None
        self.name = ""
        self.address = ""
        self.started = time.time()
        self.pool = HttpPool(self.secret)
        self._batch_pool = ThreadPoolExecutor(16, thread_name_prefix="batch")
        self._samples: deque = deque()
        self._samples_lock = threading.Lock()

    def _threaded(self, name: str):
        fn = getattr(self, f"rpc_{name}")

        async def call(a: dict):
            if self.serving is None:
                raise errors.NotServingError("tablet server starting")
            return await asyncio.to_thread(fn, a)
        return call

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        # RPC handlers block on the log's group commit: asyncio's default pool
        # (a few threads on a small machine) would cap how many writes share
        # one sync. HBase's region servers run 30 handlers.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(self.cfg.handlers, thread_name_prefix="rpc"))

        async def started(address: str) -> None:
            await asyncio.to_thread(self._start, address)

        await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                    tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        if self.serving is not None:
            self.serving.stop()

    def _start(self, address: str) -> None:
        self.address = address
        host, _, port = address.rpartition(":")
        self.name = f"{host},{port},{int(self.started * 1000)}"
        fs = FileSystem(self.cfg.master, self.secret, user=None)
        fs.prefer = self.cfg.chunkserver or None      # its files' local replicas first
        self.coord = CoordClient(self.cfg.coords.split(","), self.secret,
                                 session_timeout=self.cfg.session_timeout)
        self.coord.start_session()
        # the lock before the log: a log directory whose server holds no lock is a
        # dead server's, for the master to split
        ensure_path(self.coord, meta.SERVERS)
        self.coord.create(f"{meta.SERVERS}/{self.name}",
                          meta.server_node(address, self.cfg.chunkserver), ephemeral=True)
        serving = Serving(fs, self.name, self.cfg.flush_bytes, self.cfg.split_bytes,
                          self.cfg.block_cache_bytes, self.cfg.wal_roll_bytes,
                          self.cfg.replication or None)
        serving.on_fatal = self.fatal
        serving.on_split = self._record_split
        serving.on_merge = self._record_merge
        self.serving = serving
        threading.Thread(target=self._watch_lock, daemon=True, name="lock-watch").start()
        log.info("tablet server %s holds its lock", self.name)

    def _watch_lock(self) -> None:
        watch_lock(self.coord, f"{meta.SERVERS}/{self.name}", self.cfg.session_timeout,
                   self.fatal)

    def fatal(self, why: str) -> None:
        log.critical("tablet server %s stops: %s (its tablets will be served elsewhere)",
                     self.name, why)
        logging.shutdown()
        os._exit(70)

    # -- RPCs -----------------------------------------------------------------------------

    def _schema_check(self, a: dict, tablet: str, right: str, families) -> None:
        h = self.serving.get_hosted(tablet)
        user = a.get("user") or ""
        schema = h.core.schema
        for fam in families or [None]:
            if not schema.allowed(user, right, fam):
                raise PermissionError(f"user {user!r} may not {right} "
                                      f"{schema.name}{':' + fam if fam else ''}")

    def rpc_open(self, a: dict):
        self.serving.open(TabletInfo.from_dict(a["tablet"]), Schema.from_dict(a["schema"]))
        return True

    def rpc_close(self, a: dict):
        self.serving.close(a["tablet"])
        return True

    def rpc_schema(self, a: dict):
        self.serving.set_schema(Schema.from_dict(a["schema"]))
        return True

    def rpc_mutate(self, a: dict):
        row = check_row(a["row"])
        edits = a["edits"]
        families = {e[0] for e in edits}
        if "*" in families:             # a whole-row delete touches every family
            families = set(self.serving.get_hosted(a["tablet"]).core.schema.families)
        self._schema_check(a, a["tablet"], "write", families)
        return self.serving.mutate(a["tablet"], row, edits, a.get("check"))

    def rpc_mutate_rows(self, a: dict):
        """Many rows' mutations in one call (HBase's multi), each row atomic on
        its own. They are applied side by side, so the log syncs them together.
        Every row must be in the tablet (else "not serving" before any is
        applied); timestamps come from the client, so a batch sent again after
        a lost reply writes the very same cells."""
        batch = a["rows"]
        if not isinstance(batch, list) or len(batch) > MAX_BATCH_ROWS:
            raise ValueError(f"rows: a list of at most {MAX_BATCH_ROWS} [row, edits]")
        tablet = a["tablet"]
        rows = [(check_row(r), edits) for r, edits in batch]
        families = {e[0] for _r, edits in rows for e in edits}
        if "*" in families:
            families = set(self.serving.get_hosted(tablet).core.schema.families)
        self._schema_check(a, tablet, "write", families)
        for r, _edits in rows:
            self.serving.serving(tablet, r)
        list(self._batch_pool.map(lambda re: self.serving.mutate(tablet, re[0], re[1]), rows))
        return len(rows)

    def rpc_increment(self, a: dict):
        self._schema_check(a, a["tablet"], "write", {e[0] for e in a["amounts"]})
        return self.serving.increment(a["tablet"], check_row(a["row"]), a["amounts"])

    def rpc_append(self, a: dict):
        self._schema_check(a, a["tablet"], "write", {e[0] for e in a["parts"]})
        return self.serving.append(a["tablet"], check_row(a["row"]), a["parts"])

    def _read_args(self, a: dict) -> dict:
        columns = a.get("columns")
        self._schema_check(a, a["tablet"], "read", list(columns) if columns else None)
        f = a.get("filter")
        versions = int(a.get("versions", 1))
        if versions < 1:
            raise ValueError("versions: must be 1 or more")
        return {"columns": columns, "min_ts": int(a.get("min_ts", 0)),
                "max_ts": int(a.get("max_ts", LATEST)), "versions": versions,
                "filt": filters.parse(f) if f else None}

    def rpc_get(self, a: dict):
        return self.serving.get(a["tablet"], check_row(a["row"]), **self._read_args(a))

    def rpc_scan(self, a: dict):
        limit = int(a.get("limit", 100))
        if not 1 <= limit <= 100_000:
            raise ValueError("limit: 1 to 100000 rows a call")
        rows, more, stopped = self.serving.scan(
            a["tablet"], bytes(a.get("start", b"")), bytes(a.get("stop", b"")),
            limit=limit, reverse=bool(a.get("reverse")), after=bool(a.get("after")),
            **self._read_args(a))
        return {"rows": rows, "more": more, "stopped": stopped}

    def rpc_flush(self, a: dict):
        self.serving.flush(a["tablet"])
        return True

    def rpc_compact(self, a: dict):
        self.serving.compact(a["tablet"], major=bool(a.get("major")))
        return True

    def rpc_split(self, a: dict):
        at = a.get("at")
        children = self.serving.split(a["tablet"], bytes(at) if at else None)
        return [c.to_dict() for c in children]

    def _rate(self, requests: int) -> float:
        """Requests a second over the last half minute or so of status calls
        (the master asks every second)."""
        now = time.monotonic()
        samples = self._samples
        with self._samples_lock:
            samples.append((now, requests))
            while len(samples) > 2 and now - samples[1][0] >= 30:
                samples.popleft()
            t0, r0 = samples[0]
        return round((requests - r0) / (now - t0), 1) if now - t0 >= 0.5 else 0.0

    def rpc_merge(self, a: dict):
        return self.serving.merge(a["left"], a["right"]).to_dict()

    def rpc_status(self, _a: dict):
        s = self.serving
        return {"name": self.name, "address": self.address, "tablets": s.status(),
                "requests": s.requests, "requests_per_second": self._rate(s.requests), "flushes": s.flushes, "compactions": s.compactions,
                "wal": {"number": s.log.number, "syncs": s.log.syncs,
                        "records": s.log.synced_records, "seq": s.log.seq},
                "cache": {"hits": s.cache.hits, "misses": s.cache.misses, "bytes": s.cache.used},
                "started": self.started}

    # -- splits: recorded in METADATA by the server that split (as Bigtable's) --------------

    def _record_split(self, parent: TabletInfo, children: list[TabletInfo], schema) -> None:
        for child in children:
            self.serving.open(child, schema)
        left, right = children
        meta_at = self._meta_address()
        # the left child's row first, naming its sibling, so a crash between the
        # two writes leaves what the master needs to finish the split
        self.pool.call(meta_at, "mutate", tablet=meta.META_TABLET,
                       row=meta.row_key(left.table, left.end),
                       edits=meta.edits(left, self.name, self.address,
                                        {"sibling": right.to_dict(), "parent": parent.tablet_id}))
        self.pool.call(meta_at, "mutate", tablet=meta.META_TABLET,
                       row=meta.row_key(right.table, right.end),
                       edits=meta.edits(right, self.name, self.address))
        log.info("split tablet %s into %s and %s at %r", parent.tablet_id, left.tablet_id,
                 right.tablet_id, left.end)

    def _record_merge(self, parts: list[TabletInfo], merged: TabletInfo, schema) -> None:
        left, right = parts
        self.serving.open(merged, schema)
        meta_at = self._meta_address()
        # the merged tablet's row replaces the right one's (same end key) and
        # names the left one, whose row goes next: a crash between the two
        # leaves what the master needs to finish the merge
        try:
            self.pool.call(meta_at, "mutate", tablet=meta.META_TABLET,
                           row=meta.row_key(merged.table, merged.end),
                           edits=meta.edits(merged, self.name, self.address,
                                            {"merged": [left.tablet_id]}))
        except BaseException:
            self.serving.close(merged.tablet_id)
            raise
        try:
            self.pool.call(meta_at, "mutate", tablet=meta.META_TABLET,
                           row=meta.row_key(left.table, left.end),
                           edits=[[meta.FAMILY, b"", None, int(Kind.DELETE_FAMILY), b""]])
        except (errors.StackyardError, OSError) as exc:
            log.warning("merge of %s: the left row stays for the master to remove (%s)",
                        merged.tablet_id, exc)
        log.info("merged tablets %s and %s into %s", left.tablet_id, right.tablet_id,
                 merged.tablet_id)

    def _meta_address(self) -> str:
        import msgpack
        try:
            data, _ = self.coord.get(meta.ROOT)
        except NoNode:
            raise errors.NotServingError("the METADATA tablet is not assigned yet") from None
        return msgpack.unpackb(data, raw=False)["address"]

    # -- pages ------------------------------------------------------------------------------

    async def page(self, _request: web.Request) -> web.Response:
        if self.serving is None:
            return web.Response(text="starting", status=503)
        st = await asyncio.to_thread(self.rpc_status, {})
        return web.Response(text=_page(st), content_type="text/html")

    async def metrics(self, _request: web.Request) -> web.Response:
        s = self.serving
        values = {} if s is None else {
            "tablets": len(s.tablets), "requests_total": s.requests, "flushes_total": s.flushes,
            "compactions_total": s.compactions, "wal_syncs_total": s.log.syncs,
            "memtable_bytes": sum(h.core.mem_bytes for h in list(s.tablets.values())),
            "block_cache_hits_total": s.cache.hits, "block_cache_misses_total": s.cache.misses}
        return web.Response(text=pages.prometheus("stackyard_tabletserver", values),
                            content_type="text/plain")


def _page(st: dict) -> str:
    from html import escape
    rows = "".join(
        f"<tr><td>{escape(t['tablet']['table'])}</td><td>{escape(t['tablet']['tablet_id'])}</td>"
        f"<td>{escape(repr(t['tablet']['start']))}</td><td>{escape(repr(t['tablet']['end']))}</td>"
        f"<td>{pages.human(t['size'])}</td><td>{pages.human(t['memtable'])}</td>"
        f"<td>{t['files']}</td><td>{t['writes']}</td></tr>" for t in st["tablets"])
    w = st["wal"]
    return (f"<!doctype html><title>tablet server {escape(st['name'])}</title>"
            f"<h1>Tablet server {escape(st['name'])}</h1>"
            f"<p>{st['requests']} requests ({st.get('requests_per_second', 0):.1f}/s), "
            f"{st['flushes']} flushes, {st['compactions']} "
            f"compactions; log {w['number']}, {w['syncs']} syncs for {w['records']} records; "
            f"block cache {st['cache']['hits']} hits, {st['cache']['misses']} misses</p>"
            "<table border=1><tr><th>table</th><th>tablet</th><th>start</th><th>end</th>"
            f"<th>size</th><th>memtable</th><th>files</th><th>writes</th></tr>{rows}</table>")
