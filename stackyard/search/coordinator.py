"""The coordinating node's work: every REST request is taken by some server,
which routes writes to the primaries of the shards their ids hash to and
scatters searches to one started copy of each shard, then gathers the
shards' top hits and partial aggregations into one answer."""

from __future__ import annotations

import fnmatch
import itertools
import logging
import time
import uuid

import crc32c

from stackyard import errors
from stackyard.search import aggs, allocation
from stackyard.search.node import INDICES, ROUTING, Node
from stackyard.search.query import QueryError
from stackyard.search.searcher import Sort, _order, parse_sort

log = logging.getLogger("stackyard.search.coordinator")
WAIT_PRIMARY = 30.0          # as Elasticsearch's 1m wait for an active primary, shorter
_NAME_BAD = set('\\/*?"<>| ,#:')


class SearchError(Exception):
    """An Elasticsearch error: its type, reason and HTTP status."""

    def __init__(self, kind: str, reason: str, status: int = 400, **extra):
        super().__init__(reason)
        self.kind, self.reason, self.status, self.extra = kind, reason, status, extra


def not_found(index: str) -> SearchError:
    return SearchError("index_not_found_exception", f"no such index [{index}]", 404,
                       index=index, **{"resource.type": "index_or_alias",
                                       "resource.id": index})


def base64_id(raw: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _seconds(spec: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for u in ("ms", "s", "m", "h", "d"):
        if spec.endswith(u) and spec[:-len(u)].isdigit():
            return int(spec[:-len(u)]) * units[u]
    raise SearchError("illegal_argument_exception", f"failed to parse [{spec}] as a time value")


def shard_of(doc_id: str, shards: int) -> int:
    return crc32c.crc32c(doc_id.encode()) % shards


class Coordinator:
    def __init__(self, node: Node):
        self.node = node
        self._rr = itertools.count()
        self.scrolls: dict[str, dict] = {}

    # -- indices -------------------------------------------------------------------------

    def indices(self, pattern: str | None, must_exist: bool = True) -> list[str]:
        names = sorted(self.node.indices)
        if pattern in (None, "", "_all", "*"):
            return names
        out = []
        for p in pattern.split(","):
            if "*" in p:
                out += [n for n in names if fnmatch.fnmatchcase(n, p)]
            elif p in self.node.indices:
                out.append(p)
            elif must_exist:
                self.node.read_state()
                if p not in self.node.indices:
                    raise not_found(p)
                out.append(p)
        return list(dict.fromkeys(out))

    def create_index(self, name: str, body: dict) -> dict:
        if name != name.lower() or name.startswith(("_", "-", "+")) or \
                set(name) & _NAME_BAD or name in (".", ".."):
            raise SearchError("invalid_index_name_exception",
                              f"Invalid index name [{name}], must be lowercase and must not "
                              "start with '_', '-' or '+' nor contain \\, /, *, ?, \", <, >, |, "
                              "space, comma, #, :", 400, index=name)
        settings = dict(body.get("settings") or {})
        index = dict(settings.pop("index", {}) or {})
        for k, v in settings.items():
            index[k.removeprefix("index.")] = v
        index.setdefault("number_of_shards", 1)
        index.setdefault("number_of_replicas", 1)
        index = {k: (str(v) if k.startswith("number_of") else v) for k, v in index.items()}
        if int(index["number_of_shards"]) < 1:
            raise SearchError("illegal_argument_exception",
                              "Failed to parse value [0] for setting [index.number_of_shards] "
                              "must be >= 1")
        from stackyard.search.schema import Schema
        mappings = body.get("mappings") or {}
        try:
            Schema(mappings, {"index": index})
        except ValueError as exc:
            raise SearchError(getattr(exc, "kind", "mapper_parsing_exception"), str(exc)) \
                from None
        meta = {"name": name, "uuid": uuid.uuid4().hex[:12], "created": time.time(),
                "settings": {"index": {**index, "uuid": "", "provided_name": name}},
                "mappings": mappings}
        from stackyard.coord.tree import NodeExists
        try:
            self.node.create_index(name, meta)
        except NodeExists:
            raise SearchError("resource_already_exists_exception",
                              f"index [{name}/{self._uuid(name)}] already exists", 400,
                              index=name) from None
        ok = self.wait_active(name, 30.0)
        return {"acknowledged": True, "shards_acknowledged": ok, "index": name}

    def _uuid(self, name: str) -> str:
        self.node.read_state()
        e = self.node.indices.get(name)
        return e["meta"]["uuid"] if e else "_na_"

    def wait_active(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.node.read_state()
            r = self.node.routing.get(name)
            if r and all(self._started(name, sid, e["primary"]) for sid, e in r["shards"].items()):
                return True
            time.sleep(0.1)
        return False

    def _started(self, index: str, sid: str, server: str | None) -> bool:
        if server is None:
            return False
        rep = self.node.servers.get(server, {}).get("copies", {}).get(index, {}).get(sid)
        return bool(rep) and rep.get("state") == "started"

    def delete_index(self, pattern: str) -> dict:
        for name in self.indices(pattern):
            for p in (f"{INDICES}/{name}", f"{ROUTING}/{name}"):
                try:
                    self.node.coord.delete(p)
                except Exception:  # noqa: BLE001 - gone already
                    pass
            meta = self.node.indices.get(name, {}).get("meta")
            if meta:
                try:
                    self.node.fs.rm(f"/stackyard/search/{name}-{meta['uuid']}", recursive=True)
                except OSError:
                    pass
        self.node.read_state()
        return {"acknowledged": True}

    # -- calling shards ------------------------------------------------------------------

    def _on_primary(self, index: str, sid: str, rpc: str, **args):
        deadline = time.monotonic() + WAIT_PRIMARY
        while True:
            r = self.node.routing.get(index)
            server = r["shards"][sid]["primary"] if r else None
            try:
                if server is None or not self._started(index, sid, server):
                    raise errors.NotServingError(f"primary of [{index}][{sid}] not active")
                if server == self.node.name:
                    return self._local(rpc, index=index, shard=sid, **args)
                addr = self.node.servers[server]["address"]
                return self.node.pool.call(addr, rpc, index=index, shard=sid, **args)
            except (errors.NotServingError, errors.ClusterUnavailable, ConnectionError,
                    KeyError) as exc:
                if time.monotonic() > deadline:
                    raise SearchError("unavailable_shards_exception",
                                      f"[{index}][{sid}] primary shard is not active: {exc}",
                                      503) from None
                time.sleep(0.2)
                self.node.read_state()

    def _local(self, rpc: str, **args):
        n = self.node
        if rpc == "write":
            return n.write(args["index"], args["shard"], args["requests"])
        if rpc == "get":
            return n.copy(args["index"], args["shard"]).shard.get(args["id"])
        if rpc == "adopt":
            return n.adopt(args["index"], args["shard"], args["segment"])
        if rpc == "admin":
            return admin(n, args["index"], args["shard"], args["action"], args.get("n", 1))
        raise ValueError(rpc)

    def _nshards(self, index: str) -> int:
        return int(self.node.indices[index]["meta"]["settings"]["index"]["number_of_shards"])

    # -- documents -----------------------------------------------------------------------

    def write(self, index: str, requests: list[dict], create_missing: bool = True
              ) -> list[dict]:
        """REQUESTS in order, grouped by shard; results in the same order."""
        if index not in self.node.indices:
            self.node.read_state()
        if index not in self.node.indices:
            if not create_missing:
                raise not_found(index)
            try:
                self.create_index(index, {})
            except SearchError as exc:
                if exc.kind != "resource_already_exists_exception":
                    raise
        n = self._nshards(index)
        by_shard: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            if r.get("id") is None:
                r["id"] = uuid.uuid4().hex[:20]
            by_shard.setdefault(str(shard_of(r.get("routing") or r["id"], n)), []).append(i)
        out: list = [None] * len(requests)
        for sid, idx in by_shard.items():
            got = self._on_primary(index, sid, "write", requests=[requests[i] for i in idx])
            for i, res in zip(idx, got, strict=True):
                out[i] = {"_index": index, "_id": requests[i]["id"], **res}
        return out

    def get(self, index: str, doc_id: str, routing: str | None = None) -> dict | None:
        self.indices(index)
        sid = str(shard_of(routing or doc_id, self._nshards(index)))
        return self._on_primary(index, sid, "get", id=doc_id)

    def import_segment(self, index: str, segment: str) -> dict:
        """Every shard's primary takes in its batch-built SEGMENT."""
        self.indices(index)
        if not segment.startswith("_import") or not segment[7:].isalnum():
            raise SearchError("illegal_argument_exception", f"not an import segment: {segment}")
        counts = {sid: self._on_primary(index, sid, "adopt", segment=segment)
                  for sid in self.node.routing[index]["shards"]}
        return {"acknowledged": True, "shards": counts, "docs": sum(counts.values())}

    def admin(self, pattern: str | None, action: str, n: int = 1) -> dict:
        total = ok = 0
        for index in self.indices(pattern):
            for sid in self.node.routing.get(index, {}).get("shards", {}):
                total += 1
                self._on_primary(index, sid, "admin", action=action, n=n)
                ok += 1
        return {"_shards": {"total": total, "successful": ok, "failed": 0}}

    # -- search --------------------------------------------------------------------------

    def search(self, pattern: str | None, body: dict, count_only: bool = False) -> dict:
        started = time.monotonic()
        names = self.indices(pattern)
        body = dict(body or {})
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        shard_body = {**body, "from": 0, "size": 0 if count_only else start + size}
        if count_only:
            shard_body.pop("aggs", None)
            shard_body.pop("aggregations", None)
        plan: dict[str, list] = {}
        total_shards = 0
        for index in names:
            r = self.node.routing.get(index)
            if r is None:
                continue
            for sid, e in r["shards"].items():
                total_shards += 1
                server = self._pick(index, sid, e)
                plan.setdefault(server, []).append([index, sid])
        results, failures = [], []
        for server, shards in plan.items():
            got, failed = self._on_server(server, shards, shard_body)
            results += got
            for index, sid, why in failed:       # the shard's other copies, in turn
                e = self.node.routing[index]["shards"][sid]
                others = [s for s in [e["primary"], *(r for r, a in e["replicas"]
                                                      if a in e["in_sync"])]
                          if s and s != server]
                for other in others:
                    got, again = self._on_server(other, [[index, sid]], shard_body)
                    if got:
                        results += got
                        break
                else:
                    failures.append({"shard": int(sid), "index": index, "node": server,
                                     "reason": {"type": "node_not_connected_exception",
                                                "reason": why}})
        for r in results:
            if "error" in r:
                raise SearchError(r["error"]["type"], r["error"]["reason"], 400)
        total = sum(r["total"] for r in results)
        if count_only:
            return {"count": total, "_shards": {"total": total_shards,
                                                "successful": total_shards - len(failures),
                                                "skipped": 0, "failed": len(failures)}}
        sorts = parse_sort(body.get("sort")) or [Sort("_score")]
        cands = []
        for si, r in enumerate(results):
            for rank, h in enumerate(r["hits"]):
                values = h.get("sort") if "sort" in h else [h["_score"]]
                cands.append((values, si, rank, h))
        ordered = _order([(c[0], c[1], c[2], 0.0) for c in cands], sorts)
        by_key = {(c[1], c[2]): c[3] for c in cands}
        hits = []
        for _values, si, rank, _ in ordered[start:start + size]:
            h = by_key[(si, rank)]
            h.pop("_shard_doc", None)
            hits.append({"_index": results[si]["index"], **h})
        scores = [r["max_score"] for r in results if r["max_score"] is not None]
        limit = body.get("track_total_hits", 10_000)
        relation = "eq"
        shown = total
        if limit is not True and isinstance(limit, int) and total > limit:
            shown, relation = limit, "gte"
        out = {"took": int((time.monotonic() - started) * 1000), "timed_out": False,
               "_shards": {"total": total_shards, "successful": total_shards - len(failures),
                           "skipped": 0, "failed": len(failures)},
               "hits": {"total": {"value": shown, "relation": relation},
                        "max_score": None if body.get("sort") else (max(scores) if scores
                                                                    else None),
                        "hits": hits}}
        if failures:
            out["_shards"]["failures"] = failures
        spec = body.get("aggs") or body.get("aggregations")
        if spec:
            out["aggregations"] = aggs.reduce(spec, [r.get("aggs", {}) for r in results])
        return out

    # -- scroll ----------------------------------------------------------------------------
    # A scroll pages through one query's hits by searching again from the next
    # offset (no point-in-time snapshot: writes between pages may shift them).

    def scroll_start(self, pattern, body: dict, keep: str) -> dict:
        import secrets
        body = {**body, "from": 0}
        size = int(body.get("size", 10))
        out = self.search(pattern, {**body, "_scroll": True})
        scroll_id = base64_id(secrets.token_bytes(12))
        self.scrolls[scroll_id] = {"pattern": pattern, "body": body, "next": size,
                                   "until": time.monotonic() + _seconds(keep)}
        out["_scroll_id"] = scroll_id
        return out

    def scroll_next(self, scroll_id: str) -> dict:
        now = time.monotonic()
        for k in [k for k, v in self.scrolls.items() if v["until"] < now]:
            del self.scrolls[k]
        ctx = self.scrolls.get(scroll_id)
        if ctx is None:
            raise SearchError("search_context_missing_exception",
                              f"No search context found for id [{scroll_id}]", 404)
        size = int(ctx["body"].get("size", 10))
        out = self.search(ctx["pattern"], {**ctx["body"], "from": ctx["next"], "_scroll": True})
        ctx["next"] += size
        out["_scroll_id"] = scroll_id
        return out

    def _on_server(self, server: str, shards: list, body: dict) -> tuple[list, list]:
        """SHARDS searched on SERVER: (results, [(index, shard, why) that failed])."""
        try:
            if server == self.node.name:
                return search_shards(self.node, shards, body), []
            addr = self.node.servers[server]["address"]
            return self.node.pool.call(addr, "search", shards=shards, body=body), []
        except QueryError:
            raise
        except errors.RemoteError as exc:
            raise SearchError("search_phase_execution_exception", str(exc), 400) from None
        except (OSError, errors.StackyardError, KeyError) as exc:
            return [], [(index, sid, str(exc)) for index, sid in shards]

    def _pick(self, index: str, sid: str, e: dict) -> str:
        """A started copy: the primary or an in-sync replica, in turn."""
        copies = [e["primary"]] if e["primary"] else []
        copies += [s for s, a in e["replicas"] if a in e["in_sync"]]
        copies = [s for s in copies if self._started(index, sid, s)] or copies
        if not copies:
            raise SearchError("search_phase_execution_exception",
                              f"all shards failed: [{index}][{sid}] has no active copy", 503)
        if self.node.name in copies:
            return self.node.name
        return copies[next(self._rr) % len(copies)]

    def health(self, pattern: str | None = None) -> dict:
        self.node.read_state()
        names = self.indices(pattern) if pattern else sorted(self.node.indices)
        routings = {n: self.node.routing[n] for n in names if n in self.node.routing}
        reps = {n: int(self.node.indices[n]["meta"]["settings"]["index"]["number_of_replicas"])
                for n in routings}
        status = allocation.health(routings, reps)
        active_p = sum(1 for r in routings.values() for e in r["shards"].values()
                       if e["primary"])
        active = active_p + sum(len(e["in_sync"]) for r in routings.values()
                                for e in r["shards"].values())
        wanted = sum(len(r["shards"]) * (1 + reps[n]) for n, r in routings.items())
        return {"cluster_name": "stackyard", "status": status, "timed_out": False,
                "number_of_nodes": len(self.node.servers),
                "number_of_data_nodes": len(self.node.servers),
                "active_primary_shards": active_p, "active_shards": active,
                "relocating_shards": 0, "initializing_shards": 0,
                "unassigned_shards": max(0, wanted - active), "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
                "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0 * active / wanted if wanted else 100.0}

    def stats(self) -> dict:
        """Per index: documents and bytes over primaries, from every server."""
        out: dict = {}
        for server, info in self.node.servers.items():
            try:
                got = node_stats(self.node) if server == self.node.name else \
                    self.node.pool.call(info["address"], "stats")
            except (OSError, errors.StackyardError):
                continue
            for key, s in got.items():
                index, sid = key.split("/")
                e = out.setdefault(index, {"docs": 0, "deleted": 0, "bytes": 0, "copies": []})
                if s["primary"]:
                    e["docs"] += s["docs"]
                    e["deleted"] += s["deleted"]
                    e["bytes"] += s["bytes"]
                e["copies"].append({"shard": sid, "server": server, **s})
        return out


def search_shards(node: Node, shards: list, body: dict) -> list[dict]:
    from stackyard.search.searcher import search
    out = []
    for index, sid in shards:
        c = node.copy(index, sid)
        schema = node.indices[index]["schema"]
        try:
            r = search(schema, c.shard.searchable(), body, shard=int(sid))
        except (QueryError, ValueError) as exc:
            r = {"error": {"type": getattr(exc, "kind", "illegal_argument_exception"),
                           "reason": str(exc)}}
        r["index"] = index
        out.append(r)
    return out


def admin(node: Node, index: str, sid: str, action: str, n: int = 1):
    c = node.copy(index, sid, "primary")
    s = c.shard
    if action == "refresh":
        s.refresh()
    elif action == "flush":
        s.flush()
    elif action == "forcemerge":
        s.refresh()
        s.maybe_merge(force_to=max(int(n), 1))
        s.flush()
    else:
        raise ValueError(f"unknown shard action {action!r}")
    # replicas refresh too, so a search after _refresh sees the writes on any copy
    for server, _aid in list(c.targets.items()):
        addr = node.servers.get(server, {}).get("address")
        if addr and action == "refresh":
            try:
                node.pool.call(addr, "replica_refresh", index=index, shard=sid)
            except (OSError, errors.StackyardError):
                pass
    return True


def node_stats(node: Node) -> dict:
    return {f"{i}/{s}": c.shard.info() for (i, s), c in list(node.copies.items())}
