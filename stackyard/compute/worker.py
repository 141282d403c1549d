"""The worker daemon: task slots, each a child process; the shuffle server.

It heartbeats to the scheduler with the attempts that ended since the last
one and the ones still running, and starts what the answer hands it (a
heartbeat goes out at once when a task ends, so slots do not idle). Each
attempt runs as `python -m stackyard.compute.runner DIR` in its own process
group, so a kill takes the user's subprocesses too (streaming commands).

The job's code reaches the worker as opaque bytes from the scheduler and is
only unpickled by the runner, after the request that carried it passed the
cluster-secret check. Map outputs stay on this worker's disk and are served
to reducers by `POST /shuffle` (fetch.py: all of a reducer's segments here
in one streamed answer).

Layout: DATA_DIR/jobs/JOB/payload.bin, DATA_DIR/jobs/JOB/ATTEMPT/{task.msgpack,
result.msgpack, task.log, out.data, out.index}.
"""

from __future__ import annotations

import asyncio
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
from stackyard.compute import fetch, runner
from stackyard.compute.blocks import BlockStore
from stackyard.net.aio import AioClient
from stackyard.net.auth import Secret
from stackyard.net.server import error_response, make_app, serve
from stackyard.web import engine_pages, pages

log = logging.getLogger("stackyard.worker")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
LONG_POLL = 5.0       # an idle worker's heartbeat waits this long for work (capped by the scheduler)
HELD = 0.1            # a heartbeat that took longer was held: the scheduler long-polls


# the columnar libraries too (SQL tasks are short; importing them costs more
# than the task): the forkserver skips any that is not installed
PRELOAD = ["stackyard.compute.runner", "stackyard.compute.context", "stackyard.dfs.client",
           "stackyard.mapreduce", "stackyard.dataset", "cloudpickle", "msgpack",
           "pyarrow", "pyarrow.parquet", "pyarrow.csv", "pyarrow.compute", "duckdb"]


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
        self.shuffle_requests = 0
        self.shuffle_segments = 0
        self.tell_all = True          # the next heartbeat lists every block held
        self.app = make_app(self.secret, limits={"/blocks/put": 1 << 30, "/blocks/get": 32 << 20,
                                                   "/shuffle": 32 << 20})
        self.blocks = BlockStore(Path(cfg.data_dir) / "blocks", cfg.block_memory)
        self.app.router.add_post("/shuffle", self.handle_shuffle)
        self.app.router.add_post("/blocks/get", self.get_blocks)
        self.app.router.add_post("/blocks/put", self.put_blocks)
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
            # what changed since the scheduler last heard, not the whole list
            # every time (a cached dataset of 30,000 partitions made each
            # heartbeat a megabyte)
            if self.tell_all:
                blocks = {"blocks": self.blocks.ids()}
            else:
                added, removed = self.blocks.changes()
                blocks = {"blocks_added": added, "blocks_removed": removed}
            try:
                reply = await self.client.call(
                    self.cfg.scheduler, "heartbeat", worker=self.name, address=self.address,
                    chunkserver=self.cfg.chunkserver, slots=self.slots, reports=reports,
                    running=list(self.procs), wait=LONG_POLL if idle else 0, **blocks)
            except BaseException:
                self.reports = reports + self.reports   # not delivered: send them again
                self.tell_all = True                    # ... and every block
                raise
            self.tell_all = bool(reply.get("blocks"))
            for aid in reply["kill"]:
                self.kill(aid)
            for job in reply["cleanup"]:
                asyncio.create_task(self.cleanup(job))
            for prefix in reply.get("drop", ()):
                self.blocks.drop(prefix)
            for assignment in reply["launch"]:
                await self.launch(assignment)
            return any(reply.get(k) for k in ("launch", "kill", "cleanup", "drop"))

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
        """Every segment one reducer wants from this worker, in one answer."""
        try:
            job, want = fetch.parse_want(await request.read())
            jobdir = self.root / safe_id(job, "job")
            for attempt, _ in want:
                safe_id(attempt, "attempt")
            plans = await asyncio.to_thread(fetch.plan_reads, jobdir, want)
        except (ValueError, OSError) as exc:
            return error_response(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
        self.shuffle_requests += 1
        self.shuffle_segments += sum(len(parts) for _, parts in want)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        pieces = fetch.answer_pieces(plans)
        try:
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                await resp.write(piece)
        except OSError as exc:
            # the reducer sees the answer cut short and reports a fetch failure
            log.warning("shuffle answer for %s cut short: %s", job, exc)
            pieces.close()
            raise
        await resp.write_eof()
        return resp

    # -- cached partitions ------------------------------------------------------------

    async def put_blocks(self, request: web.Request) -> web.Response:
        """A task caches partitions here: msgpack [[id, level, pickled records], ...]."""
        try:
            items = msgpack.unpackb(await request.read())
            if not isinstance(items, list):
                raise ValueError("blocks: must be a list of [id, level, data]")
            checked = []
            for item in items:
                bid, level, data = item
                if not isinstance(level, str) or not isinstance(data, bytes):
                    raise ValueError("blocks: each is [id, level, data]")
                checked.append((block_id(bid), level, data))
            for bid, level, data in checked:
                await asyncio.to_thread(self.blocks.put, bid, data, level)
        except (ValueError, TypeError, AttributeError, OSError) as exc:
            return error_response(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
        self.wake.set()          # tell the scheduler where the blocks are
        return web.Response(text="ok")

    async def get_blocks(self, request: web.Request) -> web.StreamResponse:
        """Cached partitions, msgpack [id, ...]; for each, an 8-byte length
        (MISSING: not here) and the block (fetch.py's framing)."""
        try:
            ids = msgpack.unpackb(await request.read())
            if not isinstance(ids, list) or len(ids) > fetch.MAX_WANT:
                raise ValueError(f"ids: must be a list of at most {fetch.MAX_WANT} block ids")
            ids = [block_id(b) for b in ids]
        except (ValueError, TypeError, AttributeError) as exc:
            return error_response(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        for bid in ids:
            data = self.blocks.get_memory(bid)
            if data is None:
                data = await asyncio.to_thread(self.blocks.get, bid)
            if data is None:
                await resp.write(fetch.U64.pack(fetch.MISSING))
            else:
                await resp.write(fetch.U64.pack(len(data)))
                await resp.write(data)
        await resp.write_eof()
        return resp

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
            "shuffle_requests_total": self.shuffle_requests,
            "shuffle_segments_total": self.shuffle_segments,
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
