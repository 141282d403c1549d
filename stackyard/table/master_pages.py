"""The table master's status page: servers, their tablets, requests,
compactions and each server's write-ahead log."""

from __future__ import annotations

from html import escape

from stackyard.web.pages import human


def master_page(st: dict) -> str:
    servers = []
    tablets = []
    for name, s in sorted(st["servers"].items()):
        w = s.get("wal", {})
        servers.append(
            f"<tr><td>{escape(name)}</td><td>{escape(s.get('address', ''))}</td>"
            f"<td>{len(s.get('tablets', []))}</td><td>{s.get('requests', 0)}</td>"
            f"<td>{s.get('requests_per_second', 0):.1f}</td>"
            f"<td>{s.get('flushes', 0)}</td><td>{s.get('compactions', 0)}</td>"
            f"<td>log {w.get('number', '-')}, seq {w.get('seq', '-')}, "
            f"{w.get('syncs', 0)} syncs</td></tr>")
        for t in s.get("tablets", []):
            i = t["tablet"]
            tablets.append(
                f"<tr><td>{escape(i['table'])}</td><td>{escape(i['tablet_id'])}</td>"
                f"<td>{escape(repr(i['start']))}</td><td>{escape(repr(i['end']))}</td>"
                f"<td>{escape(name)}</td><td>{human(t['size'])}</td>"
                f"<td>{human(t['memtable'])}</td><td>{t['files']}</td></tr>")
    return ("<!doctype html><title>table master</title><h1>Table master "
            f"{escape(st['active'])}</h1><p>{len(st['tables'])} tables, "
            f"{len(st['servers'])} tablet servers, {st['recoveries']} log recoveries, "
            f"{st.get('merges', 0)} merges</p>"
            "<h2>Tablet servers</h2><table border=1><tr><th>server</th><th>address</th>"
            "<th>tablets</th><th>requests</th><th>requests/s</th><th>flushes</th><th>compactions</th>"
            f"<th>write-ahead log</th></tr>{''.join(servers)}</table>"
            "<h2>Tablets</h2><table border=1><tr><th>table</th><th>tablet</th><th>start</th>"
            "<th>end</th><th>server</th><th>size</th><th>memtable</th><th>files</th></tr>"
            f"{''.join(tablets)}</table>")
