"""A search server's shard copies and the cluster state they follow.

The coordination cell holds, under /yard-search:
    servers/<name>     ephemeral: this server's addresses and the copies it holds
    master/            the election of the server that allocates shards
    indices/<index>    settings and mappings (JSON)
    routing/<index>    where each shard's primary and replicas are (allocation.py)

Every server follows routing: it opens the copies assigned to it and closes
the others. A primary makes each write durable in its translog and on
every tracked replica before acknowledging it; a replica that cannot take
a write is removed from routing first, so it can never be promoted with a
gap. A replica recovers by asking the primary, under the shard's lock, for
the commit to load and every operation since, and is tracked from that
moment on."""

from __future__ import annotations

import json
import logging
import threading
import time

from stackyard import errors
from stackyard.coord.tree import CoordError, NodeExists, NoNode
from stackyard.search import allocation
from stackyard.search.schema import Schema
from stackyard.search.shard import Shard

log = logging.getLogger("stackyard.search.node")
ROOT = "/yard-search"
SERVERS, MASTER, INDICES, ROUTING = (f"{ROOT}/{n}" for n in ("servers", "master", "indices",
                                                             "routing"))
DATA = "/stackyard/search"


class DocumentMissing(ValueError):
    kind = "document_missing_exception"


def _deep_merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def shard_path(meta: dict, sid: str) -> str:
    return f"{DATA}/{meta['name']}-{meta['uuid']}/{sid}"


class Copy:
    def __init__(self, index: str, sid: str, role: str, aid: int, term: int, shard: Shard):
        self.index, self.sid, self.role, self.aid, self.term = index, sid, role, aid, term
        self.shard = shard
        self.state = "recovering"
        self.targets: dict[str, int] = {}      # a primary's tracked replicas: server -> aid
        self.pending: list[list] = []          # ops forwarded while recovering
        self.last_flush = time.monotonic()


class Node:
    """What one server holds and knows; the daemon adds the network."""

    def __init__(self, name: str, fs, coord, pool, replication: int | None = None):
        self.name, self.fs, self.coord, self.pool = name, fs, coord, pool
        self.replication = replication
        self.lock = threading.RLock()
        self.copies: dict[tuple[str, str], Copy] = {}
        self.indices: dict[str, dict] = {}     # name -> {"meta", "schema", "version"}
        self.routing: dict[str, dict] = {}
        self.servers: dict[str, dict] = {}
        self.is_master = False
        self.report_data = b""

    # -- cluster state ------------------------------------------------------------------

    def read_state(self) -> None:
        servers = {}
        for n in self._children(SERVERS):
            try:
                servers[n] = json.loads(self.coord.get(f"{SERVERS}/{n}")[0])
            except (NoNode, ValueError):
                continue
        indices, routing = {}, {}
        for n in self._children(INDICES):
            try:
                data, stat = self.coord.get(f"{INDICES}/{n}")
                indices[n] = (json.loads(data), stat["version"])
                rdata, rstat = self.coord.get(f"{ROUTING}/{n}")
                routing[n] = json.loads(rdata)
            except NoNode:
                continue
        with self.lock:
            self.servers = servers
            for n, (meta, version) in indices.items():
                have = self.indices.get(n)
                if have is None or have["meta"]["uuid"] != meta["uuid"]:
                    self.indices[n] = {"meta": meta, "schema": Schema(meta["mappings"],
                                                                      meta["settings"]),
                                       "version": version}
                elif have["version"] != version:
                    have["schema"].mapping.merge(meta["mappings"])
                    have["meta"], have["version"] = meta, version
            for n in list(self.indices):
                if n not in indices:
                    del self.indices[n]
            self.routing = routing

    def _children(self, path: str) -> list[str]:
        try:
            return self.coord.children(path)
        except NoNode:
            return []

    def allocate(self) -> None:
        """The master's part: routing for every index from the live servers."""
        for index, meta_entry in list(self.indices.items()):
            replicas = int(meta_entry["meta"]["settings"]["index"]["number_of_replicas"])
            path = f"{ROUTING}/{index}"
            try:
                data, stat = self.coord.get(path)
            except NoNode:
                continue
            routing = json.loads(data)
            live = {s: {"shards": info.get("copies", {}).get(index, {})}
                    for s, info in self.servers.items()}
            routing, changed = allocation.allocate(routing, replicas, live)
            if changed:
                try:
                    self.coord.set(path, json.dumps(routing).encode(), version=stat["version"])
                    self.routing[index] = routing
                except CoordError as exc:
                    log.info("routing of %s changed under the master (%s); next round",
                             index, exc)

    def update_routing(self, index: str, fn) -> None:
        """Apply FN to INDEX's routing entry in the cell (compare-and-set, retried)."""
        path = f"{ROUTING}/{index}"
        for _ in range(50):
            data, stat = self.coord.get(path)
            routing = json.loads(data)
            fn(routing)
            try:
                self.coord.set(path, json.dumps(routing).encode(), version=stat["version"])
                with self.lock:
                    self.routing[index] = routing
                return
            except CoordError:
                time.sleep(0.02)
        raise errors.ClusterUnavailable(f"could not update the routing of {index}")

    def report(self, address: str, http: str) -> None:
        copies: dict = {}
        with self.lock:
            for (index, sid), c in self.copies.items():
                copies.setdefault(index, {})[sid] = {"aid": c.aid, "state": c.state,
                                                     "role": c.role}
        data = json.dumps({"address": address, "http": http, "copies": copies},
                          sort_keys=True).encode()
        if data != self.report_data:
            self.coord.set(f"{SERVERS}/{self.name}", data)
            self.report_data = data

    # -- following routing -----------------------------------------------------------------

    def reconcile(self) -> None:
        want = {}
        with self.lock:
            for index, routing in self.routing.items():
                if index not in self.indices:
                    continue
                for sid, (role, aid, term) in allocation.copies(routing, self.name).items():
                    want[(index, sid)] = (role, aid, term)
            have = dict(self.copies)
        for key, c in have.items():
            w = want.get(key)
            if w is None or w[1] != c.aid and not (w[0] == "primary" and c.role == "replica"):
                self._close(key)
        for key, (role, aid, term) in want.items():
            c = self.copies.get(key)
            try:
                if c is None:
                    self._open(key, role, aid, term)
                elif role == "primary" and c.role == "replica":
                    self._promote(c, aid, term)
                elif role == "primary":
                    self._track(c, key)
            except (OSError, errors.StackyardError, ValueError) as exc:
                log.warning("copy %s/%s (%s) did not open: %s", key[0], key[1], role, exc)
                with self.lock:
                    self.copies.pop(key, None)
                if isinstance(exc, errors.CorruptDataError):
                    if role == "primary":
                        self._give_up_primary(key, str(exc))
                    else:
                        self._ask_rewrite(key, str(exc))

    def _give_up_primary(self, key, why: str) -> None:
        """A primary that cannot open (a corrupt file) is handed to a replica."""
        index, sid = key

        def drop(r):
            e = r["shards"][sid]
            if e["primary"] == self.name and e["replicas"]:
                e["primary"] = None
        log.error("primary %s/%s: %s; giving it up to a replica", index, sid, why)
        self.update_routing(index, drop)

    def _ask_rewrite(self, key, why: str) -> None:
        """A replica refused a corrupt file: the primary, whose copy is good,
        writes its segments anew, and the replica tries again."""
        index, sid = key
        primary = self.routing[index]["shards"][sid]["primary"]
        addr = self.servers.get(primary, {}).get("address")
        log.error("replica %s/%s: %s; asking the primary for new files", index, sid, why)
        if addr is not None:
            try:
                self.pool.call(addr, "rewrite", index=index, shard=sid)
            except (OSError, errors.StackyardError) as exc:
                log.warning("primary of %s/%s did not rewrite: %s", index, sid, exc)

    def _schema(self, index: str) -> tuple[dict, Schema]:
        entry = self.indices[index]
        return entry["meta"], entry["schema"]

    def _open(self, key, role: str, aid: int, term: int) -> None:
        index, sid = key
        meta, schema = self._schema(index)
        path = shard_path(meta, sid)
        self.fs.mkdir(path)
        if role == "primary":
            shard = Shard(self.fs, path, schema, int(sid), True, term, self.replication)
            shard.open()
            c = Copy(index, sid, role, aid, term, shard)
            shard.flush(rewrite=False)
            c.state = "started"
            with self.lock:
                self.copies[key] = c
            log.info("primary %s/%s open (term %d, %d docs)", index, sid, term,
                     shard.doc_count())
            return
        primary = self.routing[index]["shards"][sid]["primary"]
        addr = self.servers.get(primary, {}).get("address")
        if addr is None:
            return
        shard = Shard(self.fs, path, schema, int(sid), False, term, self.replication)
        c = Copy(index, sid, role, aid, term, shard)
        with self.lock:
            self.copies[key] = c
        got = self.pool.call(addr, "recover", index=index, shard=sid, server=self.name, aid=aid)
        shard.open_replica(got["commit"], got["ops"], f"{path}/replica-{self.name}")
        with shard.lock:
            shard.replica_apply(c.pending)
            c.pending = []
            # an operation's delete of a segment's document shows at once, the
            # document replacing it only after a refresh; a started copy is searched
            # (and counts toward green) at once, so it must not wait for the next tick
            shard.refresh()
            c.state = "started"
        log.info("replica %s/%s recovered (%d docs)", index, sid, shard.doc_count())

    def _promote(self, c: Copy, aid: int, term: int) -> None:
        s = c.shard
        with s.lock:
            s.close()
            s.primary, s.term = True, term
            s.tl_dir = f"{s.path}/translog"
            from stackyard.search import translog
            gens = translog.generations(self.fs, s.tl_dir)
            s.tlog = translog.Translog(self.fs, s.tl_dir, (gens[-1] + 1) if gens else 1,
                                       self.replication)
            s.flush(rewrite=True)
            c.role, c.aid, c.term = "primary", aid, term
            c.targets = {}
        log.info("replica %s/%s promoted to primary (term %d)", c.index, c.sid, term)

    def _track(self, c: Copy, key) -> None:
        """Stop forwarding to replicas routing no longer names."""
        entry = self.routing[key[0]]["shards"][key[1]]
        named = {s: a for s, a in entry["replicas"]}
        with c.shard.lock:
            for s in list(c.targets):
                if named.get(s) != c.targets[s]:
                    del c.targets[s]

    def _close(self, key) -> None:
        with self.lock:
            c = self.copies.pop(key, None)
        if c is not None:
            c.shard.close()
            log.info("copy %s/%s closed", *key)

    # -- the primary's and replica's sides of a write ----------------------------------------

    def copy(self, index: str, sid: str, role: str | None = None) -> Copy:
        c = self.copies.get((index, str(sid)))
        if c is None or (role and c.role != role) or c.state != "started":
            raise errors.NotServingError(f"[{index}][{sid}] is not open here"
                                         f"{' as ' + role if role else ''}")
        return c

    def write(self, index: str, sid: str, requests: list[dict]) -> list[dict]:
        c = self.copy(index, sid, "primary")
        s = c.shard
        ops, results = [], []
        fields_before = len(s.schema.mapping.fields)
        for r in requests:
            try:
                if r["kind"] == "update":
                    with s.lock:
                        r = self._updated(s, r)
                    if r.get("noop"):
                        results.append(r["noop"])
                        continue
                op, res = s.prepare(r["kind"], r["id"], r.get("source"), r.get("op_type",
                                                                               "index"),
                                    r.get("if_seq_no"), r.get("if_primary_term"),
                                    r.get("version"))
                ops.append(op)
                results.append({**res, "_primary_term": s.term})
            except ValueError as exc:
                results.append({"error": {"type": getattr(exc, "kind",
                                                          "mapper_parsing_exception"),
                                          "reason": str(exc)}})
        if ops:
            s.log(ops)
            self._replicate(c, ops)
        if len(s.schema.mapping.fields) != fields_before:
            self.publish_mapping(index)
        return results

    @staticmethod
    def _updated(s: Shard, r: dict) -> dict:
        """An update as the index request it becomes (the shard's lock held)."""
        cur = s.get(r["id"])
        if cur is None:
            if r.get("upsert") is not None:
                return {**r, "kind": "index", "source": r["upsert"]}
            if r.get("doc_as_upsert") and r.get("doc") is not None:
                return {**r, "kind": "index", "source": r["doc"]}
            raise DocumentMissing(f"[{r['id']}]: document missing")
        merged = _deep_merge(cur["_source"], r.get("doc") or {})
        if merged == cur["_source"] and r.get("detect_noop", True):
            return {"noop": {"result": "noop", "_version": cur["_version"],
                             "_seq_no": cur["_seq_no"], "_primary_term": cur["_primary_term"]}}
        return {**r, "kind": "index", "source": merged, "op_type": "index",
                "if_seq_no": r.get("if_seq_no"), "if_primary_term": r.get("if_primary_term")}

    def _replicate(self, c: Copy, ops: list[list]) -> None:
        for server, aid in list(c.targets.items()):
            addr = self.servers.get(server, {}).get("address")
            try:
                if addr is None:
                    raise errors.ClusterUnavailable(f"{server} is gone")
                self.pool.call(addr, "replicate", index=c.index, shard=c.sid, term=c.term,
                               aid=aid, ops=ops)
            except (OSError, errors.StackyardError) as exc:
                log.warning("replica %s of %s/%s failed a write (%s); removing it",
                            server, c.index, c.sid, exc)
                c.targets.pop(server, None)

                def drop(r, server=server, aid=aid):
                    e = r["shards"][c.sid]
                    e["replicas"] = [x for x in e["replicas"] if x[1] != aid]
                    e["in_sync"] = [x for x in e["in_sync"] if x != aid]
                self.update_routing(c.index, drop)

    def replicate(self, index: str, sid: str, term: int, aid: int, ops: list[list]) -> bool:
        c = self.copies.get((index, str(sid)))
        if c is None or c.role != "replica" or c.aid != aid:
            raise errors.NotServingError(f"[{index}][{sid}] has no replica {aid} here")
        if term < c.term:
            raise errors.NotServingError(f"[{index}][{sid}]: a write of primary term {term}, "
                                    f"but the term is {c.term}")
        with c.shard.lock:
            if c.state != "started":
                c.pending.extend(ops)
                return True
        c.shard.replica_apply(ops)
        return True

    def adopt(self, index: str, sid: str, segment: str) -> int:
        """A batch-built segment into the primary and its replicas, then a commit."""
        c = self.copy(index, sid, "primary")
        with c.shard.lock:
            for server, aid in list(c.targets.items()):
                addr = self.servers.get(server, {}).get("address")
                try:
                    self.pool.call(addr, "adopt_replica", index=index, shard=sid, aid=aid,
                                   segment=segment)
                except (OSError, errors.StackyardError, TypeError) as exc:
                    log.warning("replica %s could not take %s (%s); removing it", server,
                                segment, exc)
                    c.targets.pop(server, None)

                    def drop(r, aid=aid):
                        e = r["shards"][sid]
                        e["replicas"] = [x for x in e["replicas"] if x[1] != aid]
                        e["in_sync"] = [x for x in e["in_sync"] if x != aid]
                    self.update_routing(index, drop)
            n = c.shard.adopt(segment)
            c.shard.flush()
        return n

    def adopt_replica(self, index: str, sid: str, aid: int, segment: str) -> int:
        c = self.copies.get((index, str(sid)))
        if c is None or c.role != "replica" or c.aid != aid or c.state != "started":
            raise errors.NotServingError(f"[{index}][{sid}] has no started replica {aid} here")
        return c.shard.adopt(segment)

    def recover(self, index: str, sid: str, server: str, aid: int) -> dict:
        c = self.copy(index, sid, "primary")
        with c.shard.lock:
            c.targets[server] = aid
            return {"commit": c.shard.commit_gen, "ops": list(c.shard.since_commit)}

    def publish_mapping(self, index: str) -> None:
        path = f"{INDICES}/{index}"
        _, schema = self._schema(index)
        for _ in range(50):
            data, stat = self.coord.get(path)
            meta = json.loads(data)
            merged = Schema(meta["mappings"]).mapping
            try:
                merged.merge(schema.mapping.to_dict())
            except ValueError as exc:
                log.warning("mapping of %s: %s", index, exc)
                return
            meta["mappings"] = merged.to_dict()
            try:
                self.coord.set(path, json.dumps(meta).encode(), version=stat["version"])
                return
            except CoordError:
                time.sleep(0.02)

    # -- housekeeping ---------------------------------------------------------------------

    def tick(self, flush_ops: int, flush_seconds: float) -> None:
        """Refresh every copy, merge where the policy says, flush busy primaries."""
        for c in list(self.copies.values()):
            if c.state != "started":
                continue
            try:
                c.shard.refresh()
                c.shard.maybe_merge()
                if c.role == "primary" and c.shard.since_commit and (
                        len(c.shard.since_commit) >= flush_ops
                        or time.monotonic() - c.last_flush > flush_seconds):
                    c.shard.flush()
                    c.last_flush = time.monotonic()
            except (OSError, errors.StackyardError) as exc:
                log.warning("housekeeping of %s/%s: %s", c.index, c.sid, exc)

    def create_index(self, name: str, meta: dict) -> None:
        for p in (ROOT, INDICES, ROUTING):
            try:
                self.coord.create(p)
            except NodeExists:
                pass
        shards = int(meta["settings"]["index"]["number_of_shards"])
        self.coord.create(f"{ROUTING}/{name}",
                          json.dumps(allocation.new_routing(shards)).encode())
        self.coord.create(f"{INDICES}/{name}", json.dumps(meta).encode())
