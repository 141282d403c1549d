"""The job engine's pages: the scheduler's jobs and workers, one job's
stages and tasks with every attempt, a worker's slots."""

from __future__ import annotations

import html
from urllib.parse import quote

from stackyard.web.pages import _STYLE, _table

_STATE = {"succeeded": "ok", "running": "warn", "pending": "", "failed": "dead", "killed": "dead"}


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = "<meta http-equiv=refresh content=2>" if refresh else ""
    return (f"<!doctype html><html><head><meta charset=utf-8>{meta}<title>{html.escape(title)}"
            f"</title>{_STYLE}</head><body><h1>{html.escape(title)}</h1>{body}"
            f"<p><a href='/status'>jobs</a> · <a href='/groups'>SQL and job groups</a> · "
            f"<a href='/metrics'>metrics</a></p></body></html>")


def _state(s: str) -> str:
    return f"<span class='{_STATE.get(s, '')}'>{html.escape(s)}</span>"


def _bar(fraction: float) -> str:
    pct = round(100 * fraction)
    return (f"<span style='display:inline-block;width:8em;background:#eee'>"
            f"<span style='display:inline-block;width:{pct}%;background:#7a7'>&nbsp;</span>"
            f"</span> {pct}%")


def _shown_state(job: dict) -> str:
    """A job's state, and why when it did not succeed (a cancelled job says
    who cancelled it)."""
    why = job["error"].strip().splitlines()[0] if job["error"].strip() else ""
    state = "cancelled" if job["state"] == "killed" else job["state"]
    return _state(job["state"]).replace(f">{html.escape(job['state'])}<",
                                        f">{html.escape(state)}<") + (
        f"<br><small>{html.escape(why[:200])}</small>" if why else "")


def scheduler_page(jobs: list[dict], workers: list[dict], apps: list[list[str]] = ()) -> str:
    rows = [[f"<a href='/job?id={quote(j['id'])}'>{html.escape(j['id'])}</a>",
             html.escape(j["name"]), html.escape(j["user"]), _shown_state(j),
             "<br>".join(f"{html.escape(s['name'])} {_bar(s['progress'])}" for s in j["stages"])]
            for j in reversed(jobs)]
    wrows = [[html.escape(w["name"]), html.escape(w["address"]), html.escape(w["chunkserver"]),
              "<span class=ok>live</span>" if w["alive"] else "<span class=dead>lost</span>",
              f"{w['running']} / {w['slots']}", str(w.get("blocks", 0)),
              f"{w['last_seen']} s ago"] for w in workers]
    live = sum(w["alive"] for w in workers)
    return _page("Stackyard scheduler",
                 f"<h2>Workers: {live} live, {len(workers) - live} lost</h2>"
                 + _table(["name", "address", "beside chunkserver", "state", "busy slots",
                           "cached partitions", "last heartbeat"], wrows)
                 + "<h2>Jobs</h2>" + _table(["job", "name", "user", "state", "stages"], rows)
                 + (f"<h2>Dataset applications</h2>{_table(['application', 'cached partitions'], apps)}"
                    if apps else ""),
                 refresh=any(j["state"] == "running" for j in jobs))


def job_page(summary: dict, tasks: list[dict]) -> str:
    stages = _table(["stage", "tasks", "succeeded", "running", "progress", "reads from"],
                    [[html.escape(s["name"]), str(s["tasks"]), str(s["succeeded"]),
                      str(s["running"]), _bar(s["progress"]),
                      ", ".join(summary["stages"][p]["name"] for p in s["parents"]) or "input"]
                     for s in summary["stages"]])
    rows = []
    for t in tasks:
        history = "<br>".join(
            f"{html.escape(a['id'].rsplit('_', 1)[-1])} on {html.escape(a['worker'])}: "
            f"{_state(a['state'])} {a['seconds']} s"
            + (" (backup)" if a["speculative"] else "") + (" (data-local)" if a["local"] else "")
            + (f" <span class=dead>{html.escape(a['error'])}</span>" if a["error"] else "")
            for a in t["attempts"])
        rows.append([html.escape(t["stage"]), str(t["task"]), _state(t["state"]), history])
    counters = _table(["counter", "value"], [[html.escape(k), str(v)] for k, v in
                                             sorted(summary["counters"].items())])
    error = (f"<h2>Error</h2><pre class=dead>{html.escape(summary['error'])}</pre>"
             if summary["error"] else "")
    return _page(f"Job {summary['id']} ({summary['name']}): {summary['state']}",
                 error + "<h2>Stages</h2>" + stages + "<h2>Tasks</h2>"
                 + _table(["stage", "task", "state", "attempts"], rows)
                 + "<h2>Counters</h2>" + counters, refresh=summary["state"] == "running")


def worker_page(info: dict) -> str:
    rows = [[html.escape(k), html.escape(", ".join(v) if isinstance(v, list) else str(v))]
            for k, v in info.items()]
    return _page(f"Stackyard worker {info['name']}", _table(["", ""], rows))


def groups_page(jobs: list[dict]) -> str:
    """Jobs by job group (a SQL statement is one: its broadcasts and its
    query are jobs of one group, described by the statement's text), as
    Spark's SQL tab: text, state, duration, and every stage with progress,
    and the rows and bytes the group's tasks read and wrote."""
    groups: dict[tuple, list[dict]] = {}
    for j in jobs:
        if j.get("group"):
            groups.setdefault((j["app"], j["group"]), []).append(j)
    rows = []
    for (_app, group), js in sorted(groups.items(), key=lambda g: -max(
            j["submitted"] for j in g[1])):
        states = {j["state"] for j in js}
        state = next((s for s in ("running", "failed", "killed") if s in states), "succeeded")
        start = min(j["submitted"] for j in js)
        ends = [j["finished"] for j in js if j["finished"]]
        took = (max(ends) - start) if state != "running" and ends else None
        totals: dict[str, float] = {}
        for j in js:
            for k, v in j["counters"].items():
                if "rows" in k or "bytes" in k or "records" in k:
                    totals[k] = totals.get(k, 0) + v
        stages = "<br>".join(
            f"<a href='/job?id={quote(j['id'])}'>{html.escape(s['name'])}</a> "
            f"{s['succeeded']}/{s['tasks']} {_bar(s['progress'])}"
            for j in js for s in j["stages"])
        rows.append([html.escape(group), html.escape(js[-1]["name"][:300]), _state(state),
                     f"{took:.2f} s" if took is not None else "…", stages,
                     "<br>".join(f"{html.escape(k)}: {int(v):,}" for k, v in sorted(totals.items()))])
    return _page("SQL statements and job groups",
                 _table(["group", "statement", "state", "duration", "stages", "rows and bytes"],
                        rows) if rows else "<p>No job groups yet.</p>",
                 refresh=any(r[2].find(">running<") >= 0 for r in rows))
