"""The scheduler daemon: SchedulerCore behind HTTP.

RPCs (msgpack, signed like every other call):
    submit {spec, payload}        -> {"job": id}     payload: opaque bytes, never unpickled here
    payload {job}                 -> bytes           for workers, once per job
    heartbeat {worker, address, chunkserver, slots, reports, running, blocks, wait}
                                  -> {"launch", "kill", "cleanup", "drop"}
                                  with `wait`, an idle worker's heartbeat is held
                                  until there is work (a long poll), so a new
                                  job starts at once
    results {job, stage, forget}  -> each task's returned bytes (opaque); forget:
                                     drop them once read
    blocks {prefix | prefixes} / drop_blocks {prefix}
                                  -> where cached partitions are / forget them
    app_alive {app} / app_ended {app}
                                  -> a dataset driver renews its lease (the
                                     reply: its length) / is done; an expired
                                     one's cached partitions are dropped
    status {job} / jobs {}        -> summaries
    map_outputs {job, stage, partitions}
                                  -> where a stage's outputs are, for reducers
                                     (only those holding data for PARTITIONS)
    commit {attempt, task}        -> bool, the output-commit permission
    kill {job}
    release {app, job}            -> a finished job's kept shuffle outputs are
                                     deleted (no dataset of the driver reads them)
    cancel {app, group}           -> the ids of the application's running jobs
                                     (of its job group) now cancelled
Pages: /status (jobs), /job?id= (stages, tasks, attempts), /metrics.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
import uuid
from collections import OrderedDict

from aiohttp import web

from stackyard import errors
from stackyard.cluster.config import SchedulerConfig
from stackyard.cluster.tls import server_context
from stackyard.compute.sched_core import RUNNING, SchedulerCore
from stackyard.net.auth import Secret
from stackyard.net.server import make_app, rpc, serve
from stackyard.web import engine_pages, pages

log = logging.getLogger("stackyard.scheduler")
KEEP_FINISHED = 200        # finished jobs remembered for status pages


class SchedulerDaemon:
    def __init__(self, cfg: SchedulerConfig):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.core = SchedulerCore(dead_after=cfg.worker_dead_after,
                                  speculative_slowdown=cfg.speculative_slowdown,
                                  speculative_min_seconds=cfg.speculative_min_seconds,
                                  app_lease=cfg.app_lease, locality_wait=cfg.locality_wait,
                                  group_seconds=cfg.task_group_seconds)
        self.payloads: OrderedDict[str, bytes] = OrderedDict()
        self.history = None
        if cfg.master:
            from stackyard.compute.history import JobHistory
            from stackyard.dfs.client import FileSystem
            self.history = JobHistory(FileSystem(cfg.master, self.secret, user=None),
                                      cfg.history_days)
        self.recorded: set[str] = set()
        self.changed = asyncio.Event()
        self.app = make_app(self.secret)
        for name in ("submit", "payload", "heartbeat", "status", "jobs", "map_outputs",
                     "commit", "kill", "workers", "detail", "results", "blocks", "drop_blocks",
                     "app_alive", "app_ended", "cancel", "release"):
            self.app.router.add_post(f"/rpc/{name}", rpc(getattr(self, f"rpc_{name}")))
        self.app.router.add_get("/", self.page_status)
        self.app.router.add_get("/status", self.page_status)
        self.app.router.add_get("/job", self.page_job)
        self.app.router.add_get("/groups", self.page_groups)
        self.app.router.add_get("/metrics", self.metrics)

    # -- RPCs -------------------------------------------------------------------

    def rpc_submit(self, a: dict) -> dict:
        payload = a["payload"]
        if not isinstance(payload, bytes):
            raise ValueError("payload: must be bytes")
        job_id = time.strftime("job_%Y%m%d%H%M%S_") + uuid.uuid4().hex[:6]
        job = self.core.submit(job_id, a["spec"], time.monotonic())
        job.payload_bytes = len(payload)
        self.payloads[job_id] = payload
        log.info("job %s (%s) submitted by %s: %s", job_id, job.name, job.user,
                 ", ".join(f"{s.name}[{len(s.tasks)}]" for s in job.stages))
        self._forget_old()
        self._changed()
        return {"job": job_id}

    def _forget_old(self) -> None:
        finished = [j for j in self.core.jobs.values() if j.state != RUNNING]
        for job in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self.core.jobs[job.id]
            self.payloads.pop(job.id, None)
            for stage in job.stages:
                for t in stage.tasks:
                    for at in t.attempts:
                        self.core.attempts.pop(at.id, None)

    def rpc_payload(self, a: dict) -> bytes:
        try:
            return self.payloads[a["job"]]
        except KeyError:
            raise FileNotFoundError(2, "no such job", a["job"]) from None

    async def rpc_heartbeat(self, a: dict) -> dict:
        name = a["worker"]
        out = self.core.heartbeat(name, a["address"], a.get("chunkserver", ""),
                                  int(a["slots"]), a.get("reports") or [],
                                  a.get("running") or [], time.monotonic(), a.get("blocks"),
                                  a.get("blocks_added") or [], a.get("blocks_removed") or [])
        if a.get("reports"):
            self._changed()
        # an idle worker waits here for work instead of asking again later; the
        # wait stays well inside the time after which it would be declared lost
        wait = min(float(a.get("wait") or 0), self.cfg.worker_dead_after / 4)
        deadline = time.monotonic() + wait
        while (not any(out.values()) and not self.core.workers[name].running
               and (left := deadline - time.monotonic()) > 0):
            try:
                # look again at least twice a second: a task's locality wait
                # running out is no event
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass
            worker = self.core.workers.get(name)
            if worker is None or not worker.alive:
                break
            out = self.core.assign(name, time.monotonic())
        return out

    def _job(self, job_id: str):
        job = self.core.jobs.get(job_id)
        if job is None:
            raise FileNotFoundError(2, "no such job", job_id)
        return job

    def _past(self, job_id: str) -> dict | None:
        """A job this scheduler no longer holds, from the job history."""
        if job_id in self.core.jobs or self.history is None:
            return None
        return self.history.jobs.get(job_id)

    async def rpc_status(self, a: dict) -> dict:
        """The job's summary; with `wait`, first wait up to that many seconds
        for something to change (a long poll, so progress displays are live)."""
        if (past := self._past(a["job"])) is not None:
            return past["summary"]
        job = self._job(a["job"])
        wait = float(a.get("wait") or 0)
        if wait and job.state == RUNNING:
            try:
                await asyncio.wait_for(self.changed.wait(), min(wait, 30.0))
            except TimeoutError:
                pass
        return self.core.summary(job)

    def rpc_detail(self, a: dict) -> list[dict]:
        """Every task of the job with its attempts (worker, state, backup or not)."""
        if (past := self._past(a["job"])) is not None:
            return past["detail"]
        return self.core.detail(self._job(a["job"]))

    def rpc_jobs(self, _a: dict) -> list[dict]:
        live = [self._walled(self.core.summary(j)) for j in self.core.jobs.values()]
        past = [e["summary"] for i, e in (self.history.jobs.items() if self.history else [])
                if i not in self.core.jobs]
        # job ids begin with their submission time: older jobs first
        return sorted(past, key=lambda s: s["id"]) + live

    @staticmethod
    def _walled(summary: dict) -> dict:
        """SUMMARY with wall-clock times beside the monotonic ones."""
        skew = time.time() - time.monotonic()
        return {**summary, "submitted_at": summary["submitted"] + skew,
                "finished_at": summary["finished"] + skew if summary["finished"] else None}

    async def _keep_history(self) -> None:
        """Read the last days' jobs at start (the DFS may still be coming up),
        then write each job that finishes."""
        for _ in range(120):
            try:
                n = await asyncio.to_thread(self.history.load)
                pruned = await asyncio.to_thread(self.history.prune)
                log.info("job history: %d jobs of the last %g days (%d older days removed)",
                         n, self.cfg.history_days, pruned)
                break
            except (OSError, errors.StackyardError) as exc:
                log.debug("job history not readable yet: %s", exc)
                await asyncio.sleep(1.0)
        while True:
            await asyncio.sleep(1.0)
            for job in [j for j in self.core.jobs.values()
                        if j.state != RUNNING and j.id not in self.recorded]:
                self.recorded.add(job.id)
                summary, detail = self._walled(self.core.summary(job)), self.core.detail(job)
                try:
                    await asyncio.to_thread(self.history.record, summary, detail)
                except (OSError, errors.StackyardError) as exc:
                    log.warning("job history: %s not written yet (%s)", job.id, exc)
                    self.recorded.discard(job.id)       # tried again next time

    def rpc_workers(self, _a: dict) -> list[dict]:
        now = time.monotonic()
        return [{"name": w.name, "address": w.address, "chunkserver": w.chunkserver,
                 "slots": w.slots, "running": len(w.running), "alive": w.alive,
                 "blocks": len(w.blocks),
                 "last_seen": round(now - w.last_seen, 1)} for w in self.core.workers.values()]

    def rpc_map_outputs(self, a: dict) -> dict:
        self._job(a["job"])
        parts = a.get("partitions")
        return self.core.map_outputs(a["job"], int(a["stage"]),
                                     None if parts is None else [int(p) for p in parts])

    def rpc_results(self, a: dict) -> list:
        self._job(a["job"])
        return self.core.results(a["job"], int(a["stage"]), bool(a.get("forget")))

    def rpc_blocks(self, a: dict) -> dict:
        prefixes = a.get("prefixes")
        if prefixes is not None:
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                raise ValueError("prefixes: must be a list of strings")
            return self.core.block_locations(tuple(prefixes)) if prefixes else {}
        return self.core.block_locations(str(a.get("prefix") or ""))

    def rpc_drop_blocks(self, a: dict) -> bool:
        prefix = str(a.get("prefix") or "")
        if not prefix:
            raise ValueError("prefix: must name an application's blocks")
        self.core.drop_blocks(prefix)
        self._changed()
        return True

    def rpc_app_alive(self, a: dict) -> float:
        return self.core.app_alive(str(a["app"]), time.monotonic())

    def rpc_app_ended(self, a: dict) -> bool:
        for job in self.core.app_ended(str(a["app"]), time.monotonic()):
            log.info("job %s cancelled: its application %s ended", job, a["app"])
        self._changed()
        return True

    def rpc_release(self, a: dict) -> bool:
        """A driver no longer needs a finished job's shuffle outputs."""
        self.core.release(str(a["app"]), str(a["job"]))
        return True

    def rpc_cancel(self, a: dict) -> list[str]:
        app = str(a.get("app") or "")
        if not app:
            raise ValueError("app: must name the application whose jobs to cancel")
        group = a.get("group")
        reason = str(a.get("reason") or "cancelled by its driver")[:500]
        jobs = self.core.cancel(time.monotonic(), app, None if group is None else str(group),
                                reason)
        for job in jobs:
            log.info("job %s cancelled by its driver", job)
        self._changed()
        return jobs

    def rpc_commit(self, a: dict) -> bool:
        task = a.get("task")
        return self.core.commit(a["attempt"], None if task is None else int(task))

    def rpc_kill(self, a: dict) -> bool:
        self._job(a["job"])
        self.core.kill_job(a["job"], time.monotonic(),
                           str(a.get("reason") or "killed by the user")[:500])
        self._changed()
        return True

    def _changed(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # -- pages ------------------------------------------------------------------

    async def page_status(self, _request: web.Request) -> web.Response:
        held = self.core.block_locations("")
        apps = [[html.escape(app), str(sum(b.startswith(app + "/") for b in held))]
                for app in sorted(self.core.apps)]
        return web.Response(text=engine_pages.scheduler_page(self.rpc_jobs({}), self.rpc_workers({}),
                                                             apps), content_type="text/html")

    async def page_groups(self, _request: web.Request) -> web.Response:
        return web.Response(text=engine_pages.groups_page(self.rpc_jobs({})),
                            content_type="text/html")

    async def page_job(self, request: web.Request) -> web.Response:
        job = self.core.jobs.get(request.query.get("id", ""))
        if job is None:
            return web.Response(text=pages.error_page(request.query.get("id", ""),
                                                      FileNotFoundError("no such job")),
                                content_type="text/html", status=404)
        return web.Response(text=engine_pages.job_page(self.core.summary(job), self.core.detail(job)),
                            content_type="text/html")

    async def metrics(self, _request: web.Request) -> web.Response:
        jobs = list(self.core.jobs.values())
        workers = list(self.core.workers.values())
        values = {"jobs_running": sum(j.state == RUNNING for j in jobs),
                  "jobs_total": len(jobs),
                  "workers_live": sum(w.alive for w in workers),
                  "workers_dead": sum(not w.alive for w in workers),
                  "slots_total": sum(w.slots for w in workers if w.alive),
                  "slots_busy": sum(len(w.running) for w in workers if w.alive)}
        return web.Response(text=pages.prometheus("stackyard_scheduler", values),
                            content_type="text/plain")

    # -- lifecycle ----------------------------------------------------------------

    async def tick_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.cfg.worker_dead_after / 4))
            apps = set(self.core.apps)
            lost = self.core.tick(time.monotonic())
            if gone := apps - set(self.core.apps):
                log.warning("application(s) %s stopped renewing their lease: their jobs are "
                            "cancelled, their cached partitions dropped", ", ".join(sorted(gone)))
                self._changed()          # idle workers learn what to drop and kill
            for name in lost:
                log.warning("worker %s lost: its running tasks and map outputs are re-queued", name)
            if lost:
                self._changed()

    async def run(self) -> None:
        async def started(_address: str) -> None:
            asyncio.create_task(self.tick_loop())
            if self.history is not None:
                asyncio.create_task(self._keep_history())

        await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                        tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
