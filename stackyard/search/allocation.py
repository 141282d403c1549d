"""Shard allocation, as a pure decision the elected master takes over the
cluster's state in the coordination cell (Elasticsearch's allocation
service): which server holds each shard's primary and replicas.

A shard's routing entry:
    {"primary": server | None, "paid": allocation id of the primary,
     "replicas": [[server, allocation id], ...], "in_sync": [allocation id, ...],
     "term": primary term}

Rules: a primary whose server is gone is replaced by an in-sync replica
(the term goes up, so the old primary's late writes are refused); a shard
with no copy left is given to a live server, which recovers it from the
DFS; copies are added until there are number_of_replicas replicas, each on
a server holding no other copy of that shard, least-loaded first. A replica
joins `in_sync` once its server reports it recovered under that allocation
id."""

from __future__ import annotations


def new_routing(shards: int) -> dict:
    return {"shards": {str(i): {"primary": None, "paid": 0, "replicas": [], "in_sync": [],
                                "term": 0} for i in range(shards)}, "next_aid": 1}


def allocate(routing: dict, replicas: int, live: dict[str, dict]) -> tuple[dict, bool]:
    """LIVE: server -> its report {"shards": {"<shard>": {"aid", "state"}}}
    for this index. The new routing and whether it changed."""
    changed = False
    load = {s: 0 for s in live}
    for entry in routing["shards"].values():
        for s in [entry["primary"], *(r[0] for r in entry["replicas"])]:
            if s in load:
                load[s] += 1

    def aid() -> int:
        nonlocal changed
        routing["next_aid"] = routing.get("next_aid", 1) + 1
        return routing["next_aid"] - 1

    for sid, e in sorted(routing["shards"].items(), key=lambda kv: int(kv[0])):
        before = repr(e)
        e["replicas"] = [r for r in e["replicas"] if r[0] in live]
        e["in_sync"] = [a for a in e["in_sync"] if a in {r[1] for r in e["replicas"]}]
        if e["primary"] is not None and e["primary"] not in live:
            e["primary"] = None
        if e["primary"] is None:
            synced = [r for r in e["replicas"] if r[1] in e["in_sync"]]
            if synced:
                server, a = synced[0]
                e["replicas"] = [r for r in e["replicas"] if r[1] != a]
                e["in_sync"] = [x for x in e["in_sync"] if x != a]
                e["primary"], e["paid"] = server, a
                e["term"] += 1
            elif live:
                # no in-sync copy: a fresh primary recovers from the DFS (its last
                # commit and the translog there hold every acknowledged write)
                e["replicas"], e["in_sync"] = [], []
                server = min(live, key=lambda s: (load[s], s))
                e["primary"], e["paid"] = server, aid()
                load[server] += 1
                e["term"] += 1
        holders = {e["primary"], *(r[0] for r in e["replicas"])}
        while e["primary"] is not None and len(e["replicas"]) < replicas:
            free = [s for s in live if s not in holders]
            if not free:
                break
            server = min(free, key=lambda s: (load[s], s))
            e["replicas"].append([server, aid()])
            holders.add(server)
            load[server] += 1
        for server, a in e["replicas"]:
            report = live.get(server, {}).get("shards", {}).get(sid)
            if report and report.get("aid") == a and report.get("state") == "started" \
                    and a not in e["in_sync"]:
                e["in_sync"].append(a)
        if repr(e) != before:
            changed = True
    return routing, changed


def copies(routing: dict, server: str) -> dict[str, tuple[str, int, int]]:
    """The copies SERVER should hold: shard -> (role, allocation id, term)."""
    out = {}
    for sid, e in routing["shards"].items():
        if e["primary"] == server:
            out[sid] = ("primary", e["paid"], e["term"])
        for s, a in e["replicas"]:
            if s == server:
                out[sid] = ("replica", a, e["term"])
    return out


def health(routings: dict[str, dict], replicas: dict[str, int]) -> str:
    status = "green"
    for index, r in routings.items():
        for e in r["shards"].values():
            if e["primary"] is None:
                return "red"
            if len(e["in_sync"]) < replicas.get(index, 0):
                status = "yellow"
    return status
