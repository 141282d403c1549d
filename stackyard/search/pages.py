"""The search server's pages: its shard copies (role, documents, segments,
refresh and merge activity) and the cluster's indices, and /metrics."""

from __future__ import annotations

import time
from html import escape

from aiohttp import web

from stackyard.search import coordinator
from stackyard.web import pages


def status_page(d) -> web.Response:
    node = d.node
    if node is None:
        return web.Response(text="starting", status=503)
    rows = []
    for key, info in sorted(coordinator.node_stats(node).items()):
        age = time.time() - info["last_refresh"] if info["last_refresh"] else None
        rows.append([escape(key), "primary" if info["primary"] else "replica",
                     str(info["docs"]), str(info["deleted"]), str(info["segments"]),
                     str(info["buffered"]), pages.human(info["bytes"]), str(info["refreshes"]),
                     "-" if age is None else f"{age:.1f} s ago", str(info["merges"]),
                     str(info["flushes"]), str(info["max_seq"]), str(info["term"])])
    table = pages._table(["shard", "role", "docs", "deleted", "segments", "buffered", "size",
                          "refreshes", "last refresh", "merges", "flushes", "max seq_no",
                          "term"], rows)
    health = d.coord_api.health()
    indices = []
    for name, r in sorted(node.routing.items()):
        for sid, e in sorted(r["shards"].items(), key=lambda kv: int(kv[0])):
            replicas = ", ".join(f"{escape(s)}{'' if a in e['in_sync'] else ' (recovering)'}"
                                 for s, a in e["replicas"]) or "-"
            indices.append([escape(name), sid, escape(e["primary"] or "unassigned"), replicas,
                            str(e["term"])])
    routing = pages._table(["index", "shard", "primary", "replicas", "term"], indices)
    body = (f"<p>cluster <b>{health['status']}</b>; {len(node.servers)} search servers; "
            f"this one {'is' if node.is_master else 'is not'} the master; REST on "
            f"{escape(d.http)}</p><h2>Copies here</h2>{table}<h2>Routing</h2>{routing}")
    return web.Response(text=pages._page(f"search server {node.name}", body),
                        content_type="text/html")


def metrics(d) -> web.Response:
    values = {}
    if d.node is not None:
        stats = coordinator.node_stats(d.node).values()
        values = {"copies": len(stats), "docs": sum(s["docs"] for s in stats),
                  "segments": sum(s["segments"] for s in stats),
                  "refreshes_total": sum(s["refreshes"] for s in stats),
                  "merges_total": sum(s["merges"] for s in stats),
                  "flushes_total": sum(s["flushes"] for s in stats),
                  "indexed_total": sum(s["indexed"] for s in stats)}
    return web.Response(text=pages.prometheus("stackyard_searchserver", values),
                        content_type="text/plain")
