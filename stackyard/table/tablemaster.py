"""The `tablemaster` daemon (HBase's HMaster): table schemas, tablet
assignment, recovery from dead tablet servers, balancing. Never on the data
path: clients find tablets through the coordination cell and METADATA.

One master is active: the holder of the election lock `/yard-table/master`.
Others wait in line behind it (standbys) and answer admin calls with
"not the active master". A master whose session is lost stops at once
(Bigtable's master kills itself when its Chubby session expires).

Every `check_interval` the active master reconciles what is with what should
be: live servers (ephemeral nodes), what each serves (asked), METADATA's
rows. A server gone from the cell has its log split by tablet before any of
its tablets opens elsewhere; the METADATA tablet goes first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import msgpack
from aiohttp import web

from stackyard import errors
from stackyard.cluster.tls import server_context
from stackyard.coord.client import CoordClient
from stackyard.coord.recipes import Election
from stackyard.coord.tree import NodeExists, NoNode
from stackyard.dfs.client import FileSystem
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool
from stackyard.net.server import make_app, rpc, serve
from stackyard.table import files, logsplit, meta, normalizer
from stackyard.table.master_pages import master_page
from stackyard.table.model import Kind, Schema, TabletInfo, check_name
from stackyard.web import pages

log = logging.getLogger("stackyard.tablemaster")
ADMIN = ("create", "delete", "enable", "disable", "list", "describe", "alter", "tablets",
         "split", "merge", "flush", "compact", "status", "truncate", "grant", "revoke")


class NotActive(errors.StackyardError):
    pass


class TableMasterDaemon:
    def __init__(self, cfg):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.app = make_app(self.secret)
        for name in ADMIN:
            self.app.router.add_post(f"/rpc/{name}", rpc(self._threaded(name)))
        self.app.router.add_get("/", self.page)
        self.app.router.add_get("/status", self.page)
        self.app.router.add_get("/metrics", self.metrics)
        self.pool = HttpPool(self.secret, timeout=120.0)
        # a paused server accepts connections and says nothing: ask it briefly
        self.status_pool = HttpPool(self.secret, timeout=min(5.0, cfg.session_timeout))
        self.fs: FileSystem | None = None
        self.coord: CoordClient | None = None
        self.active = False
        self.lock = threading.RLock()
        self.live: dict[str, str] = {}
        self.server_status: dict[str, dict] = {}
        self.recoveries = 0
        self.merges = 0
        self._first_seen: dict[str, float] = {}    # tablet id -> when this master saw it
        self.silent: set[str] = set()
        self.address = ""
        self.became_active: float | None = None

    def _threaded(self, name: str):
        fn = getattr(self, f"rpc_{name}")

        async def call(a: dict):
            if not self.active:
                raise errors.NotServingError(
                    f"table master {self.address} is a standby, not the active master")
            return await asyncio.to_thread(self._locked, fn, a)
        return call

    def _locked(self, fn, a):
        with self.lock:
            return fn(a)

    # -- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        async def started(address: str) -> None:
            self.address = address
            threading.Thread(target=self._campaign, daemon=True, name="master-election").start()

        await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                    tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))

    def _campaign(self) -> None:
        self.fs = FileSystem(self.cfg.master, self.secret, user=None)
        self.coord = CoordClient(self.cfg.coords.split(","), self.secret,
                                 session_timeout=self.cfg.session_timeout)
        self.coord.start_session()
        for path in (meta.COORD, meta.SERVERS, meta.SCHEMAS):
            try:
                self.coord.create(path)
            except NodeExists:
                pass
        Election(self.coord, meta.MASTER, self.address).campaign()
        if self.coord.expired:
            self._fatal("its session expired while it waited to lead")
        log.info("table master %s is active", self.address)
        self.active, self.became_active = True, time.time()
        while True:
            if self.coord.expired:
                self._fatal("its coordination session expired (another master may lead)")
            try:
                with self.lock:
                    self.reconcile()
            except (errors.StackyardError, OSError, ValueError) as exc:
                log.warning("reconcile: %s", exc)
            except Exception:  # noqa: BLE001 - the master must keep going
                log.exception("reconcile failed")
            time.sleep(self.cfg.check_interval)

    def _fatal(self, why: str) -> None:
        log.critical("table master %s stops: %s", self.address, why)
        logging.shutdown()
        os._exit(70)

    # -- what is ------------------------------------------------------------------------

    def _live_servers(self) -> dict[str, str]:
        out = {}
        for name in self.coord.children(meta.SERVERS):
            try:
                out[name] = meta.parse_server_node(
                    self.coord.get(f"{meta.SERVERS}/{name}")[0])["address"]
            except NoNode:
                pass
        return out

    def _root(self) -> dict | None:
        try:
            return msgpack.unpackb(self.coord.get(meta.ROOT)[0], raw=False)
        except NoNode:
            return None

    def schema(self, table: str) -> Schema:
        try:
            data, _ = self.coord.get(f"{meta.SCHEMAS}/{table}")
        except NoNode:
            raise errors.TableNotFoundError(f"table {table!r} does not exist") from None
        return Schema.from_dict(msgpack.unpackb(data, raw=False))

    def _save_schema(self, schema: Schema, create: bool = False) -> None:
        data = msgpack.packb(schema.to_dict())
        path = f"{meta.SCHEMAS}/{schema.name}"
        if create:
            try:
                self.coord.create(path, data)
            except NodeExists:
                raise errors.TableExistsError(f"table {schema.name!r} already exists") from None
        else:
            self.coord.set(path, data)

    def meta_rows(self, table: str | None = None) -> list[dict]:
        root = self._root()
        if root is None:
            raise errors.NotServingError("the METADATA tablet is not assigned yet")
        start, stop = meta.table_range(table) if table else (b"", b"")
        out, after = [], False
        while True:
            r = self.pool.call(root["address"], "scan", tablet=meta.META_TABLET, start=start,
                               stop=stop, limit=1000, after=after)
            for row, cells in r["rows"]:
                out.append({"key": row, **meta.parse(cells)})
            if not r["more"]:
                return out
            start, after = r["rows"][-1][0], True

    def _meta_write(self, info: TabletInfo, server: str, address: str) -> None:
        root = self._root()
        self.pool.call(root["address"], "mutate", tablet=meta.META_TABLET,
                       row=meta.row_key(info.table, info.end),
                       edits=meta.edits(info, server, address))

    def _meta_delete(self, key: bytes) -> None:
        root = self._root()
        self.pool.call(root["address"], "mutate", tablet=meta.META_TABLET, row=key,
                       edits=[[meta.FAMILY, b"", None, int(Kind.DELETE_FAMILY), b""]])

    # -- reconciling ------------------------------------------------------------------------

    def reconcile(self) -> None:
        self.live = self._live_servers()
        serving: dict[str, str] = {}            # tablet id -> server
        silent = self.silent = set()   # hold their lock but do not answer: their tablets stay put
        for name, address in list(self.live.items()):
            try:
                st = self.status_pool.call(address, "status")
            except (errors.StackyardError, OSError) as exc:
                log.info("tablet server %s did not answer: %s", name, exc)
                silent.add(name)
                continue
            self.server_status[name] = st
            for t in st["tablets"]:
                serving[t["tablet"]["tablet_id"]] = name
        for gone in set(self.server_status) - set(self.live):
            self.server_status.pop(gone, None)
        self._split_dead_logs()
        if not self.live:
            return
        root = self._root()
        if root is not None and root.get("server") in silent:
            return            # METADATA's server holds its lock: wait for it, or for its end
        if root is None or serving.get(meta.META_TABLET) != root.get("server"):
            if meta.META_TABLET in serving:
                name = serving[meta.META_TABLET]
                self._set_root(name, self.live[name])
            else:
                self._assign_meta()
            root = self._root()
        rows = self.meta_rows()
        self._finish_splits(rows)
        self._finish_merges(rows)
        for row in rows:
            info: TabletInfo = row["tablet"]
            try:
                schema = self.schema(info.table)
            except errors.TableNotFoundError:
                continue
            where = serving.get(info.tablet_id)
            if not schema.enabled or row.get("server") in silent:
                continue
            if where is None:
                self._assign(info, schema, serving)
            elif where != row.get("server"):
                self._meta_write(info, where, self.live[where])
        self._balance(rows, serving)
        self._normalize(rows, serving)

    def _split_dead_logs(self) -> None:
        try:
            dirs = [e["path"].rsplit("/", 1)[-1] for e in self.fs.ls(files.WAL)]
        except FileNotFoundError:
            return
        for d in dirs:
            server = d[:-len(logsplit.SUFFIX)] if d.endswith(logsplit.SUFFIX) else d
            if server in self.live:
                continue
            logsplit.split(self.fs, server, self._table_exists)
            self.recoveries += 1

    def _table_exists(self, table: str) -> bool:
        return table == meta.META_TABLE or \
            self.coord.exists(f"{meta.SCHEMAS}/{table}") is not None

    def _least_loaded(self, serving: dict[str, str]) -> str:
        counts = {name: 0 for name in self.live if name not in self.silent}
        if not counts:
            raise errors.ClusterUnavailable("no tablet server answers")
        for server in serving.values():
            if server in counts:
                counts[server] += 1
        return min(counts, key=lambda n: (counts[n], n))

    def _assign_meta(self) -> None:
        name = self._least_loaded({})
        self.pool.call(self.live[name], "open", tablet=meta.meta_tablet().to_dict(),
                       schema=meta.meta_schema().to_dict())
        self._set_root(name, self.live[name])
        log.info("METADATA tablet assigned to %s", name)

    def _set_root(self, name: str, address: str) -> None:
        data = msgpack.packb({"tablet": meta.meta_tablet().to_dict(), "server": name,
                              "address": address})
        try:
            self.coord.set(meta.ROOT, data)
        except NoNode:
            self.coord.create(meta.ROOT, data)

    def _assign(self, info: TabletInfo, schema: Schema, serving: dict[str, str],
                to: str | None = None) -> None:
        name = to or self._least_loaded(serving)
        self.pool.call(self.live[name], "open", tablet=info.to_dict(), schema=schema.to_dict())
        serving[info.tablet_id] = name
        self._meta_write(info, name, self.live[name])
        log.info("tablet %s of %s assigned to %s", info.tablet_id, info.table, name)

    def _finish_splits(self, rows: list[dict]) -> None:
        """A server that died between the two METADATA writes of a split left
        the left child's row (naming its sibling) beside the parent's row."""
        by_id = {r["tablet"].tablet_id: r for r in rows}
        for r in list(rows):
            parent, sibling = r.get("parent"), r.get("sibling")
            if parent and sibling and parent in by_id:
                right = TabletInfo.from_dict(sibling)
                self._meta_write(right, "", "")
                rows.remove(by_id[parent])
                rows.append({"key": meta.row_key(right.table, right.end), "tablet": right})
                log.info("finished the split of %s", parent)

    def _finish_merges(self, rows: list[dict]) -> None:
        """A server that died between a merge's two METADATA writes left the
        left tablet's row beside the merged one that names it."""
        by_id = {r["tablet"].tablet_id: r for r in rows}
        for r in list(rows):
            for gone in r.get("merged") or []:
                if gone in by_id and by_id[gone] in rows:
                    self._meta_delete(by_id[gone]["key"])
                    rows.remove(by_id[gone])
                    log.info("finished the merge into %s", r["tablet"].tablet_id)

    def _normalize(self, rows: list[dict], serving: dict[str, str]) -> None:
        """At most one merge (or the move that brings a pair together) a round."""
        if not self.cfg.merge_bytes:
            return
        by_table = normalizer.by_table([r["tablet"] for r in rows], self.server_status,
                                       serving, self._first_seen, time.monotonic())
        for table, served in by_table.items():
            pair = normalizer.pick_merge(served, self.cfg.merge_bytes, self.cfg.merge_min_age)
            schema = self.schema(table) if pair is not None else None
            if schema is not None and schema.enabled and schema.merge:
                self.merge(pair[0].info, pair[1].info, serving)
                return

    def merge(self, left: TabletInfo, right: TabletInfo, serving: dict[str, str]) -> None:
        """Merge two adjacent tablets, first moving the right one beside the left."""
        src, dst = serving.get(right.tablet_id), serving.get(left.tablet_id)
        if src is None or dst is None:
            raise errors.NotServingError("both tablets must be served to merge them")
        if src != dst:
            self.move(right, src, dst, serving)
        merged = self.pool.call(self.live[dst], "merge", left=left.tablet_id,
                                right=right.tablet_id)
        serving.pop(left.tablet_id, None)
        serving.pop(right.tablet_id, None)
        serving[merged["tablet_id"]] = dst
        self.merges += 1
        log.info("merged %s and %s of %s into %s", left.tablet_id, right.tablet_id,
                 left.table, merged["tablet_id"])

    def _balance(self, rows: list[dict], serving: dict[str, str]) -> None:
        if len(self.live) < 2:
            return
        counts = {name: [] for name in self.live}
        for tid, server in serving.items():
            if server in counts and tid != meta.META_TABLET:
                counts[server].append(tid)
        most = max(counts, key=lambda n: len(counts[n]))
        least = min(counts, key=lambda n: len(counts[n]))
        if len(counts[most]) - len(counts[least]) <= 1:
            return
        tid = counts[most][0]
        row = next((r for r in rows if r["tablet"].tablet_id == tid), None)
        if row is None:
            return
        self.move(row["tablet"], most, least, serving)

    def move(self, info: TabletInfo, src: str, dst: str, serving: dict[str, str]) -> None:
        """Flush and close at SRC, open at DST: no write is lost (the close
        flushes all that SRC acknowledged; writes after it are refused there
        and retried by clients against DST)."""
        self.pool.call(self.live[src], "close", tablet=info.tablet_id)
        self._assign(info, self.schema(info.table), serving, to=dst)
        log.info("moved tablet %s from %s to %s", info.tablet_id, src, dst)

    # -- admin RPCs ------------------------------------------------------------------------

    def _serving_map(self) -> dict[str, str]:
        out = {}
        for name, st in self.server_status.items():
            for t in st["tablets"]:
                out[t["tablet"]["tablet_id"]] = name
        return out

    def rpc_create(self, a: dict):
        schema = Schema.from_dict(a["schema"]).validate()
        if schema.name.startswith("yard."):
            raise ValueError(f"table name {schema.name!r}: names starting 'yard.' are the system's")
        schema.owner = schema.owner or a.get("user", "")
        splits = sorted({bytes(s) for s in a.get("splits") or []})
        if b"" in splits:
            raise ValueError("SPLITS: an empty split key")
        self._save_schema(schema, create=True)
        bounds = [b""] + splits + [b""]
        serving = self._serving_map()
        self.live = self._live_servers()
        if not self.live:
            raise errors.ClusterUnavailable("no tablet server is running")
        for i in range(len(bounds) - 1):
            info = TabletInfo(schema.name, f"{int(time.time() * 1000)}{i:05d}", bounds[i],
                              bounds[i + 1])
            self._assign(info, schema, serving)
        return True

    def _check_admin(self, a: dict, schema: Schema) -> None:
        user = a.get("user", "")
        if not schema.allowed(user, "admin"):
            raise PermissionError(f"user {user!r} may not administer table {schema.name}")

    def rpc_delete(self, a: dict):
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        if schema.enabled:
            raise errors.TableDisabledError(f"table {schema.name} is enabled: disable it first")
        for row in self.meta_rows(schema.name):
            self._meta_delete(row["key"])
        self.coord.delete(f"{meta.SCHEMAS}/{schema.name}")
        base = f"{files.DATA}/{schema.name}"
        if self.fs.exists(base):
            self.fs.rm(base, recursive=True)
        return True

    def rpc_disable(self, a: dict):
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        if not schema.enabled:
            raise errors.TableDisabledError(f"table {schema.name} is already disabled")
        schema.enabled = False
        self._save_schema(schema)
        serving = self._serving_map()
        for row in self.meta_rows(schema.name):
            where = serving.get(row["tablet"].tablet_id)
            if where in self.live:
                self.pool.call(self.live[where], "close", tablet=row["tablet"].tablet_id)
            self._meta_write(row["tablet"], "", "")
        self.reconcile_status()
        return True

    def reconcile_status(self) -> None:
        for name, address in self._live_servers().items():
            try:
                self.server_status[name] = self.status_pool.call(address, "status")
            except (errors.StackyardError, OSError):
                pass

    def rpc_enable(self, a: dict):
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        if schema.enabled:
            raise ValueError(f"table {schema.name} is already enabled")
        schema.enabled = True
        self._save_schema(schema)
        self.live = self._live_servers()
        serving = self._serving_map()
        for row in self.meta_rows(schema.name):
            if row["tablet"].tablet_id not in serving:
                self._assign(row["tablet"], schema, serving)
        self.reconcile_status()
        return True

    def rpc_truncate(self, a: dict):
        schema = self.schema(a["table"])
        splits = [r["tablet"].start for r in self.meta_rows(schema.name) if r["tablet"].start]
        if schema.enabled:
            self.rpc_disable(a)
        self.rpc_delete(a)
        schema.enabled = True
        return self.rpc_create({**a, "schema": schema.to_dict(),
                                "splits": splits if a.get("keep_splits") else []})

    def rpc_list(self, _a: dict):
        return sorted(self.coord.children(meta.SCHEMAS))

    def rpc_describe(self, a: dict):
        return self.schema(a["table"]).to_dict()

    def rpc_alter(self, a: dict):
        """Add or change families (FAMILIES: [family dicts]) and drop some (DROP)."""
        from stackyard.table.model import Family
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        for f in a.get("families") or []:
            fam = Family(**{**(schema.families[f["name"]].__dict__
                               if f["name"] in schema.families else {}), **f}).validate()
            schema.families[fam.name] = fam
        for name in a.get("drop") or []:
            schema.family(name)
            if len(schema.families) == 1:
                raise ValueError(f"table {schema.name}: cannot drop its only family")
            del schema.families[name]
        if "durability" in a:
            schema.durability = a["durability"]
        schema.validate()
        self._save_schema(schema)
        self._push_schema(schema)
        return schema.to_dict()

    def _push_schema(self, schema: Schema) -> None:
        for address in self._live_servers().values():
            self.pool.call(address, "schema", schema=schema.to_dict())

    def rpc_grant(self, a: dict):
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        rights = sorted(set(a["rights"]))
        for r in rights:
            if r not in ("read", "write", "admin"):
                raise ValueError(f"rights: {r!r} is not one of read, write, admin")
        if a.get("family"):
            schema.family(a["family"])
            schema.family_acl.setdefault(a["family"], {})[a["to"]] = rights
        else:
            schema.acl[a["to"]] = rights
        self._save_schema(schema)
        self._push_schema(schema)
        return True

    def rpc_revoke(self, a: dict):
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        if a.get("family"):
            schema.family_acl.get(a["family"], {}).pop(a["to"], None)
        else:
            schema.acl.pop(a["to"], None)
        self._save_schema(schema)
        self._push_schema(schema)
        return True

    def rpc_tablets(self, a: dict):
        check_name("table", a["table"])
        self.schema(a["table"])
        return [{"tablet": r["tablet"].to_dict(), "server": r.get("server", ""),
                 "address": r.get("address", "")} for r in self.meta_rows(a["table"])]

    def _each_tablet(self, a: dict, rpc_name: str, **extra):
        schema = self.schema(a["table"])
        self._check_admin(a, schema)
        row = a.get("row")
        done = 0
        for r in self.meta_rows(schema.name):
            info = r["tablet"]
            if row is not None and not info.contains(bytes(row)):
                continue
            if r.get("address"):
                self.pool.call(r["address"], rpc_name, tablet=info.tablet_id, **extra)
                done += 1
        return done

    def rpc_flush(self, a: dict):
        return self._each_tablet(a, "flush")

    def rpc_compact(self, a: dict):
        return self._each_tablet(a, "compact", major=bool(a.get("major")))

    def rpc_split(self, a: dict):
        if a.get("row") is None:
            return self._each_tablet(a, "split")
        return self._each_tablet(a, "split", at=bytes(a["row"]))

    def rpc_merge(self, a: dict):
        """Merge adjacent tablets LEFT and RIGHT (ids; HBase's merge_region)."""
        rows = {r["tablet"].tablet_id: r["tablet"] for r in self.meta_rows(a.get("table"))}
        left, right = rows.get(a["left"]), rows.get(a["right"])
        if left is None or right is None:
            raise ValueError(f"no tablet {a['left'] if left is None else a['right']!r}")
        if left.table != right.table:
            raise ValueError(f"tablets {left.tablet_id} and {right.tablet_id} are of two tables")
        schema = self.schema(left.table)
        self._check_admin(a, schema)
        if left.start > right.start:
            left, right = right, left
        if left.end != right.start:
            raise ValueError(f"tablets {left.tablet_id} and {right.tablet_id} are not adjacent")
        self.merge(left, right, self._serving_map())
        return True

    def rpc_status(self, _a: dict):
        self.reconcile_status()
        return {"active": self.address, "servers": {n: self.server_status.get(n, {})
                                                    for n in self._live_servers()},
                "tables": sorted(self.coord.children(meta.SCHEMAS)),
                "recoveries": self.recoveries, "merges": self.merges, "since": self.became_active,
                "root": self._root() is not None and meta.META_TABLET in self._serving_map()}

    # -- pages -----------------------------------------------------------------------------

    async def page(self, _request: web.Request) -> web.Response:
        if not self.active:
            return web.Response(text=f"table master {self.address}: standby", status=200)
        st = await asyncio.to_thread(self._locked, self.rpc_status, {})
        return web.Response(text=master_page(st), content_type="text/html")

    async def metrics(self, _request: web.Request) -> web.Response:
        servers = dict(self.server_status)
        values = {"active": int(self.active), "servers_live": len(self.live),
                  "tablets": sum(len(s.get("tablets", [])) for s in servers.values()),
                  "requests_total": sum(s.get("requests", 0) for s in servers.values()),
                  "compactions_total": sum(s.get("compactions", 0) for s in servers.values()),
                  "recoveries_total": self.recoveries}
        return web.Response(text=pages.prometheus("stackyard_tablemaster", values),
                            content_type="text/plain")
