"""The worker daemon: task slots, each a child process; the shuffle server.

It heartbeats to the scheduler with the attempts that ended since the last
one and the ones still running, and starts what the answer hands it (a
heartbeat goes out at once when a task ends, so slots do not idle). Each
attempt runs as `python -m stackyard.compute.runner DIR` in its own process
group, so a kill takes the user's subprocesses too (streaming commands).

The job's code reaches the worker as opaque bytes from the scheduler and is
only unpickled by the runner, after the request that carried it passed the
cluster-secret check. Map outputs stay on this worker's disk and are served
to reducers by `GET /shuffle`.

Layout: DATA_DIR/jobs/JOB/payload.bin, DATA_DIR/jobs/JOB/ATTEMPT/{task.msgpack,
result.msgpack, task.log, out.data, out.index}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import msgpack
from aiohttp import web

from stackyard import errors
from stackyard.cluster.config import WorkerConfig
from stackyard.cluster.tls import server_context
from stackyard.compute import runner
from stackyard.compute.blocks import BlockStore
from stackyard.net.aio import AioClient
from stackyard.net.auth import Secret
from stackyard.net.server import error_response, make_app, serve, stream_file
from stackyard.web import engine_pages, pages

log = logging.getLogger("stackyard.worker")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
LONG_POLL = 5.0       # an idle worker's heartbeat waits this long for work (capped by the scheduler)
HELD = 0.1            # a heartbeat that took longer was held: the scheduler long-polls


PRELOAD = ["stackyard.compute.runner", "stackyard.compute.context", "stackyard.dfs.client",
           "stackyard.mapreduce", "stackyard.dataset", "cloudpickle", "msgpack"]


def block_id(value: str) -> str:
    """APP/NAME, each part a safe id (it names a file when spilled)."""
    app, _, name = value.partition("/")
    return f"{safe_id(app, 'block')}/{safe_id(name, 'block')}"


def safe_id(value: str, what: str) -> str:
    if not value or not set(value) <= _ID_CHARS or len(value) > 120:
        raise ValueError(f"{what}: not a valid id: {value!r}")
    return value


class WorkerDaemon:
    def __init__(self, cfg: WorkerConfig):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.slots = cfg.slots or os.cpu_count() or 1
        self.root = Path(cfg.data_dir) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.client = AioClient(self.secret)
        self.address = ""
        self.procs: dict = {}             # attempt id -> multiprocessing.Process
        # Tasks are forked from a server that has already imported the engine
        # (multiprocessing's forkserver): a task starts in milliseconds
        # instead of paying Python's start-up and imports every time.
        self.forks = multiprocessing.get_context("forkserver")
        self.forks.set_forkserver_preload(PRELOAD)
        self.reports: list[dict] = []
        self.killed: set[str] = set()
        self.wake = asyncio.Event()
        self.beat_lock = asyncio.Lock()
        self.finished = 0
        self.app = make_app(self.secret, limits={"/block": 1 << 30})
        self.blocks = BlockStore(Path(cfg.data_dir) / "blocks", cfg.block_memory)
        self.app.router.add_get("/shuffle", self.handle_shuffle)
        self.app.router.add_get("/block", self.get_block)
        self.app.router.add_put("/block", self.put_block)
        self.app.router.add_get("/", self.page)
        self.app.router.add_get("/status", self.page)
        self.app.router.add_get("/metrics", self.metrics)

    @property
    def name(self) -> str:
        return self.cfg.name or self.address

    # -- heartbeats ---------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        held = False
        while True:
            # an idle worker asks again at once when its last heartbeat was
            # answered with something or held by the scheduler (a long poll):
            # the scheduler paces it
            if not (held and not self.procs):
                try:
                    await asyncio.wait_for(self.wake.wait(), self.cfg.heartbeat_interval)
                except TimeoutError:
                    pass
            self.wake.clear()
            try:
                started = time.monotonic()
                answered = await self.heartbeat()
                held = answered or time.monotonic() - started > HELD
            except errors.StackyardError as exc:
                held = False
                log.warning("heartbeat failed: %s", exc)
                await asyncio.sleep(self.cfg.heartbeat_interval)
            except Exception:
                held = False
                log.exception("heartbeat failed")
                await asyncio.sleep(self.cfg.heartbeat_interval)

    async def heartbeat(self) -> bool:
        """One heartbeat; True when the answer asked for anything."""
        async with self.beat_lock:
            reports, self.reports = self.reports, []
            idle = not self.procs
            try:
                reply = await self.client.call(
                    self.cfg.scheduler, "heartbeat", worker=self.name, address=self.address,
                    chunkserver=self.cfg.chunkserver, slots=self.slots, reports=reports,
                    running=list(self.procs), blocks=self.blocks.ids(),
                    wait=LONG_POLL if idle else 0)
            except BaseException:
                self.reports = reports + self.reports   # not delivered: send them again
                raise
            for aid in reply["kill"]:
                self.kill(aid)
            for job in reply["cleanup"]:
                asyncio.create_task(self.cleanup(job))
            for prefix in reply.get("drop", ()):
                self.blocks.drop(prefix)
            for assignment in reply["launch"]:
                await self.launch(assignment)
            return any(reply.values())

    # -- attempts -------------------------------------------------------------------

    async def launch(self, a: dict) -> None:
        job, aid = safe_id(a["job"], "job"), safe_id(a["attempt"], "attempt")
        jobdir = self.root / job
        adir = jobdir / aid
        adir.mkdir(parents=True, exist_ok=True)
        payload = jobdir / "payload.bin"
        try:
            if not payload.exists():
                data = await self.client.call(self.cfg.scheduler, "payload", job=job)
                tmp = jobdir / f"payload.{aid}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, payload)
        except (errors.StackyardError, OSError) as exc:
            self.reports.append({"attempt": aid, "state": "failed", "killed": True,
                                 "error": f"worker {self.name} could not get the job's code: {exc}"})
            self.wake.set()
            return
        (adir / "task.msgpack").write_bytes(msgpack.packb({
            **a, "master": self.cfg.master, "scheduler": self.cfg.scheduler,
            "secret_file": str(Path(self.cfg.secret_file).resolve()),
            "ca_file": self.secret.ca_file,
            "chunkserver": self.cfg.chunkserver, "worker": self.name,
            "worker_address": self.address, "payload": str(payload)}))
        proc = self.forks.Process(target=runner.run_attempt, args=(str(adir),),
                                  name=f"yard-task-{aid}")
        await asyncio.to_thread(proc.start)
        self.procs[aid] = proc
        log.info("started %s (pid %d)", aid, proc.pid)
        asyncio.create_task(self.reap(aid, proc, adir))

    async def reap(self, aid: str, proc, adir: Path) -> None:
        await asyncio.to_thread(proc.join)
        code = proc.exitcode
        self.procs.pop(aid, None)
        self.finished += 1
        if aid in self.killed:
            self.killed.discard(aid)
            return          # the scheduler already counts it as killed
        result_file = adir / "result.msgpack"
        if result_file.exists():
            result = msgpack.unpackb(result_file.read_bytes())
        else:
            tail = ""
            try:
                tail = (adir / "task.log").read_text(errors="replace")[-2000:]
            except OSError:
                pass
            result = {"state": "failed",
                      "error": f"task process exited with code {code} without a result\n{tail}"}
        result["attempt"] = aid
        log.info("%s %s", aid, result["state"])
        self.reports.append(result)
        self.wake.set()

    def kill(self, aid: str) -> None:
        proc = self.procs.get(aid)
        if proc is None:
            return
        self.killed.add(aid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.info("killed %s", aid)

    async def cleanup(self, job: str) -> None:
        await asyncio.sleep(1.0)    # let reducers of a just-finished job complete fetches
        shutil.rmtree(self.root / safe_id(job, "job"), ignore_errors=True)

    # -- shuffle -----------------------------------------------------------------------

    async def handle_shuffle(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            adir = self.root / safe_id(q.get("job", ""), "job") / safe_id(q.get("attempt", ""),
                                                                        "attempt")
            index = json.loads((adir / "out.index").read_text())
            p = int(q["partition"])
            if not 0 <= p < len(index):
                raise ValueError(f"partition: {p} out of range 0..{len(index) - 1}")
            offset, length = index[p]
            f = open(adir / "out.data", "rb")
        except FileNotFoundError:
            return error_response(FileNotFoundError(2, "no such map output here", q.get("attempt")))
        except (ValueError, KeyError, OSError) as exc:
            return error_response(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
        with f:
            f.seek(offset)
            return await stream_file(request, f, length)

    # -- cached partitions ------------------------------------------------------------

    async def put_block(self, request: web.Request) -> web.Response:
        """A task caches a partition here (the body: its pickled records)."""
        try:
            bid = block_id(request.query.get("id", ""))
            level = request.query.get("level", "")
            data = await request.read()
            await asyncio.to_thread(self.blocks.put, bid, data, level)
        except (ValueError, OSError) as exc:
            return error_response(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
        self.wake.set()          # tell the scheduler where the block is
        return web.Response(text="ok")

    async def get_block(self, request: web.Request) -> web.Response:
        try:
            bid = block_id(request.query.get("id", ""))
        except ValueError as exc:
            return error_response(exc)
        data = await asyncio.to_thread(self.blocks.get, bid)
        if data is None:
            return error_response(FileNotFoundError(2, "no such block here", bid))
        return web.Response(body=data, content_type="application/octet-stream")

    # -- pages -------------------------------------------------------------------------

    def info(self) -> dict:
        return {"name": self.name, "address": self.address, "scheduler": self.cfg.scheduler,
                "chunkserver": self.cfg.chunkserver, "slots": self.slots,
                "running": sorted(self.procs), "finished": self.finished,
                "cached partitions": self.blocks.describe()}

    async def page(self, _request: web.Request) -> web.Response:
        return web.Response(text=engine_pages.worker_page(self.info()), content_type="text/html")

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(text=pages.prometheus("stackyard_worker", {
            "slots": self.slots, "running": len(self.procs), "finished_total": self.finished,
            "block_memory_bytes": self.blocks.memory_used, "block_disk_bytes": self.blocks.disk_used}),
            content_type="text/plain")

    async def run(self) -> None:
        async def started(address: str) -> None:
            self.address = address
            asyncio.create_task(self.heartbeat_loop())

        try:
            await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                        tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        finally:
            for aid in list(self.procs):
                self.kill(aid)
            await self.client.close()
