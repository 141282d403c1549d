"""The HTML status pages and the Prometheus text every daemon serves.
Plain server-rendered HTML: no scripts, so it works in any browser and curl."""

from __future__ import annotations

import datetime
import html
import posixpath
from urllib.parse import quote

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}.dead{color:#b00}.ok{color:#070}.warn{color:#b60}
.num{text-align:right;font-variant-numeric:tabular-nums}
</style>"""


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title>{_STYLE}</head><body><h1>{html.escape(title)}</h1>{body}"
            f"<p><a href='/status'>overview</a> · <a href='/browse?path=/'>browse</a> · "
            f"<a href='/metrics'>metrics</a></p></body></html>")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def master_page(info: dict) -> str:
    c = info["chunks"]
    role = info.get("role", "active")
    summary = _table(["role", "epoch", "files", "chunks", "under-replicated", "corrupt", "missing",
                      "safe mode", "op log index", "uptime"],
                     [[f"<span class={'ok' if role == 'active' else 'warn'}>{role}</span>",
                       str(info.get("epoch", "")), str(info["files"]), str(sum(c.values())),
                       _flag(c["under-replicated"], "warn"), _flag(c["corrupt"], "dead"),
                       _flag(c["missing"], "dead"), "ON" if info["safemode"] else "off",
                       str(info["txid"]), f"{info['uptime']} s"]])
    rows = []
    for s in info["servers"]:
        state = "<span class=ok>live</span>" if s["alive"] else "<span class=dead>dead</span>"
        admin = s.get("admin_state", "In Service")
        if admin != "In Service":
            state += (f" <span class=warn>{html.escape(admin)}"
                      + (f": {s['pending']} chunks to copy" if s.get("pending") else "") + "</span>")
        rows.append([html.escape(s["address"]), s["id"], html.escape(s["rack"]), state,
                     str(s["chunks"]), human(s["used"]), human(s["capacity"]), human(s["free"]),
                     f"{s['last_seen']} s ago"])
    live = sum(1 for s in info["servers"] if s["alive"])
    servers = _table(["address", "id", "rack", "state", "chunks", "used", "capacity", "free",
                      "last heartbeat"], rows)
    standby = "" if role == "active" else (
        "<p>A standby: what it shows may be a little behind the active master"
        + (f" at {html.escape(info['active_master'])}" if info.get("active_master") else "")
        + ".</p>")
    return _page("Stackyard master", standby + summary +
                 f"<h2>Chunkservers: {live} live, {len(info['servers']) - live} dead</h2>" + servers)


def _flag(n: int, cls: str) -> str:
    return f"<span class={cls}>{n}</span>" if n else "0"


def directory_page(path: str, entries: list[dict]) -> str:
    rows = []
    if path != "/":
        rows.append(["d", f"<a href='/browse?path={quote(posixpath.dirname(path))}'>..</a>",
                     "", "", "", "", ""])
    for e in entries:
        link = f"<a href='/browse?path={quote(e['path'])}'>{html.escape(e['name'])}</a>"
        rows.append([e["permission"], link, html.escape(e["owner"]), html.escape(e["group"]),
                     human(e["length"]) if e["type"] == "file" else "",
                     str(e["replication"] or ""), _time(e["mtime"])])
    return _page(f"Browse {path}", _table(
        ["permission", "name", "owner", "group", "size", "replication", "modified"], rows))


def file_page(st: dict, chunks: list[dict]) -> str:
    info = _table(["path", "size", "replication", "chunk size", "owner", "permission"],
                  [[html.escape(st["path"]), human(st["length"]), str(st["replication"]),
                    human(st["chunk_size"]), html.escape(st["owner"]), st["permission"]]])
    rows = [[str(c["index"]), c["handle"], str(c["version"]), human(c["length"]),
             ", ".join(html.escape(loc["address"]) for loc in c["locations"]) or
             "<span class=dead>none</span>"] for c in chunks]
    up = f"<p><a href='/browse?path={quote(posixpath.dirname(st['path']))}'>up</a></p>"
    return _page(f"File {st['path']}", info + "<h2>Chunks</h2>" + _table(
        ["#", "handle", "version", "length", "replicas"], rows) + up)


def error_page(path: str, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return _page("Browse", f"<p class=dead>{html.escape(path)}: {html.escape(reason)}</p>")


def chunkserver_page(info: dict, master: str) -> str:
    rows = [[html.escape(str(k)), html.escape(human(v) if k in ("used", "capacity", "free")
                                               else str(v))] for k, v in info.items()]
    return _page("Stackyard chunkserver", f"<p>master: {html.escape(master)}</p>" +
                 _table(["", ""], rows))


def prometheus(prefix: str, values: dict[str, int | float]) -> str:
    lines = []
    for k, v in values.items():
        name = f"{prefix}_{k}"
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {v}")
    return "\n".join(lines) + "\n"


def _time(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else ""
