"""A pseudo-distributed cluster on this machine: every daemon a real process
on 127.0.0.1, all under one STACKYARD_HOME. `yard cluster up/down/status`,
the embedded default of `sy.connect()`, and the test suite's mini cluster
are all this class."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from stackyard.cluster import process
from stackyard.cluster.config import (
    ChunkserverConfig,
    CoordConfig,
    MasterConfig,
    MiB,
    SchedulerConfig,
    WorkerConfig,
    dump,
)
from stackyard.cluster.home import Home
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool


@dataclass
class Settings:
    chunkservers: int = 3
    coords: int = 3                   # replicas of the coordination cell (0, 1, 3 or 5)
    coord_snapshot_entries: int = 5000
    coord_cache_lease: float = 1.0
    workers: int = 2                  # job-engine workers (0: no scheduler either)
    worker_slots: int = 0             # tasks per worker; 0: the cores divided among the workers
    worker_block_memory: int = 1 << 30   # cached partitions each worker holds in memory
    worker_dead_after: float = 10.0
    app_lease: float = 60.0
    speculative_min_seconds: float = 2.0
    chunk_size: int = 64 * MiB
    replication: int = 3
    dead_after: float = 30.0
    heartbeat_interval: float = 3.0
    lease_timeout: float = 60.0
    report_interval: float = 60.0
    scan_interval: float = 300.0
    checkpoint_log_bytes: int = 16 * MiB
    racks: int = 0                    # 0: no racks; N: chunkserver i on /rack(i mod N)
    host: str = "127.0.0.1"

    def validate(self) -> Settings:
        if self.chunkservers < 1:
            raise ValueError("chunkservers: need at least 1")
        if self.coords not in (0, 1, 3, 5):
            raise ValueError("coords: a coordination cell has 0, 1, 3 or 5 replicas")
        if self.workers < 0:
            raise ValueError("workers: must be 0 or more")
        if self.replication < 1:
            raise ValueError("replication: must be at least 1")
        if self.chunk_size < 64 * 1024 or self.chunk_size % (64 * 1024):
            raise ValueError("chunk-size: must be a multiple of 64 KiB (e.g. 1m, 64m)")
        if self.dead_after <= self.heartbeat_interval:
            raise ValueError("dead-after: must be longer than the heartbeat interval "
                             f"({self.heartbeat_interval} s)")
        return self


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self, home: Home, settings: Settings | None = None):
        self.home = home
        self.settings = (settings or Settings()).validate()

    # -- configuration ---------------------------------------------------------

    def _configure(self) -> list[dict]:
        """Write the configs (once: a restarted cluster keeps its ports and disks)."""
        s, h = self.settings, self.home
        h.make_dirs()
        if not h.secret_file.exists():
            Secret.generate().save(h.secret_file)
        daemons = []
        if not h.conf("master").exists():
            dump(MasterConfig(
                data_dir=str(h.data("master")), secret_file=str(h.secret_file), host=s.host,
                port=free_port(s.host), addr_file=str(h.addr_file("master")),
                default_replication=s.replication, default_chunk_size=s.chunk_size,
                heartbeat_interval=s.heartbeat_interval, dead_after=s.dead_after,
                lease_timeout=s.lease_timeout, checkpoint_log_bytes=s.checkpoint_log_bytes,
            ).validate(), h.conf("master"))
        daemons.append({"name": "master", "role": "master"})
        master_addr = _read_toml(h.conf("master"))
        master = f"{master_addr['host']}:{master_addr['port']}"
        for i in range(1, s.chunkservers + 1):
            name = f"chunkserver-{i}"
            if not h.conf(name).exists():
                # a fixed port: workers beside it name it for data locality
                dump(ChunkserverConfig(
                    data_dir=str(h.data(name)), master=master, secret_file=str(h.secret_file),
                    host=s.host, port=free_port(s.host), addr_file=str(h.addr_file(name)),
                    rack=f"/rack{(i - 1) % s.racks + 1}" if s.racks else "/default-rack",
                    heartbeat_interval=s.heartbeat_interval, report_interval=s.report_interval,
                    scan_interval=s.scan_interval,
                ).validate(), h.conf(name))
            daemons.append({"name": name, "role": "chunkserver"})
        names = [f"coord-{i}" for i in range(1, s.coords + 1)]
        if names and not h.conf(names[0]).exists():
            ports = {n: free_port(s.host) for n in names}
            peers = ",".join(f"{n}={s.host}:{ports[n]}" for n in names)
            for n in names:
                dump(CoordConfig(data_dir=str(h.data(n)), secret_file=str(h.secret_file),
                                 node_id=n, peers=peers, host=s.host, port=ports[n],
                                 addr_file=str(h.addr_file(n)),
                                 snapshot_entries=s.coord_snapshot_entries,
                                 cache_lease=s.coord_cache_lease).validate(), h.conf(n))
        daemons += [{"name": n, "role": "coord"} for n in names]
        if s.workers:
            if not h.conf("scheduler").exists():
                dump(SchedulerConfig(
                    data_dir=str(h.data("scheduler")), secret_file=str(h.secret_file),
                    host=s.host, port=free_port(s.host), addr_file=str(h.addr_file("scheduler")),
                    worker_dead_after=s.worker_dead_after, app_lease=s.app_lease,
                    speculative_min_seconds=s.speculative_min_seconds).validate(),
                    h.conf("scheduler"))
            daemons.append({"name": "scheduler", "role": "scheduler"})
            sched = _read_toml(h.conf("scheduler"))
            # the workers of a local cluster share this machine's cores: each
            # gets its part, not all of them (4 tasks on 2 cores ran slower)
            share = max(1, (os.cpu_count() or 1) // s.workers)
            for i in range(1, s.workers + 1):
                name = f"worker-{i}"
                beside = f"chunkserver-{(i - 1) % s.chunkservers + 1}"
                if not h.conf(name).exists():
                    cs = _read_toml(h.conf(beside))
                    dump(WorkerConfig(
                        data_dir=str(h.data(name)), scheduler=f"{sched['host']}:{sched['port']}",
                        master=master, secret_file=str(h.secret_file), name=name, host=s.host,
                        addr_file=str(h.addr_file(name)), slots=s.worker_slots or share,
                        block_memory=s.worker_block_memory,
                        chunkserver=f"{cs['host']}:{cs['port']}").validate(), h.conf(name))
                daemons.append({"name": name, "role": "worker"})
        for d in daemons:
            d.update(config=str(h.conf(d["name"])), log=str(h.log(d["name"])), pid=0, address="")
        return daemons

    # -- lifecycle --------------------------------------------------------------

    def up(self, timeout: float = 60.0) -> dict:
        state = self.home.read_state()
        if state and any(process.alive(d["pid"], d["config"]) for d in state["daemons"]):
            raise RuntimeError(f"a cluster is already running under {self.home.root} "
                               "(`yard cluster down` stops it)")
        daemons = self._configure()
        state = {"home": str(self.home.root), "daemons": daemons, "workers": self.settings.workers,
                 "master": ""}
        try:
            for d in daemons:
                self.start(d, state)
            self.wait_live(self.settings.chunkservers, timeout)
            if self.settings.workers:
                self.wait_workers(self.settings.workers, timeout)
            if self.settings.coords:
                self.wait_coord_leader(timeout)
        except BaseException:
            self.down()
            raise
        return state

    def start(self, d: dict, state: dict | None = None) -> dict:
        state = state or self.home.read_state()
        addr = self.home.addr_file(d["name"])
        addr.unlink(missing_ok=True)
        proc = process.spawn(d["role"], self.home.conf(d["name"]), self.home.log(d["name"]))
        d["pid"] = proc.pid
        self._record(d, state)
        d["address"] = process.wait_for_file(addr, proc, self.home.log(d["name"]))
        self._record(d, state)
        return d

    def _record(self, d: dict, state: dict) -> None:
        """Note D's pid and address in cluster.json at once, so that even a failed
        start leaves behind nothing `down` cannot find."""
        if d["role"] == "master" and d["address"]:
            state["master"] = d["address"]
        for i, old in enumerate(state["daemons"]):
            if old["name"] == d["name"]:
                state["daemons"][i] = d
        self.home.write_state(state)

    def down(self) -> list[str]:
        state = self.home.read_state()
        if not state:
            return []
        stopped = []
        for d in reversed(state["daemons"]):
            if process.stop(d["pid"], d["config"]):
                stopped.append(d["name"])
            d["pid"] = 0
        self.home.write_state(state)
        return stopped

    def daemon(self, name: str) -> dict:
        state = self.home.read_state() or {"daemons": []}
        for d in state["daemons"]:
            if d["name"] == name:
                return d
        raise KeyError(f"no daemon named {name!r} in {self.home.root}")

    def kill(self, name: str, sig: int = 9) -> None:
        d = self.daemon(name)
        process.stop(d["pid"], d["config"], sig=sig)

    def restart(self, name: str) -> dict:
        d = self.daemon(name)
        process.stop(d["pid"], d["config"])
        return self.start(dict(d))

    def status(self) -> list[dict]:
        state = self.home.read_state()
        if not state:
            return []
        pool = HttpPool(Secret.load(self.home.secret_file), timeout=3)
        out = []
        for d in state["daemons"]:
            running = process.alive(d["pid"], d["config"])
            row = {"name": d["name"], "role": d["role"], "address": d["address"],
                   "pid": d["pid"] if running else None, "state": "stopped"}
            if running:
                try:
                    resp = pool.request(d["address"], "GET", "/metrics")
                    resp.read()
                    row["state"] = "running" if resp.status == 200 else f"HTTP {resp.status}"
                except Exception as exc:
                    row["state"] = f"unreachable ({exc})"
            out.append(row)
        pool.close()
        return out

    def coord_addresses(self) -> list[str]:
        state = self.home.read_state() or {"daemons": []}
        return [d["address"] for d in state["daemons"] if d["role"] == "coord"]

    def wait_coord_leader(self, timeout: float = 60.0) -> str:
        """Until a replica of the coordination cell says it leads; its address."""
        def leader(pool) -> str | None:
            for address in self.coord_addresses():
                try:
                    if pool.call(address, "status")["result"]["role"] == "leader":
                        return address
                except Exception:
                    pass
            return None
        return self._poll(leader, timeout,
                          f"the coordination cell elected no leader within {timeout} s",
                          call_timeout=2)

    def wait_workers(self, n: int, timeout: float = 60.0) -> None:
        """Until the scheduler counts N live workers."""
        state = self.home.read_state()
        address = next(d["address"] for d in state["daemons"] if d["role"] == "scheduler")
        self._poll(lambda pool: sum(w["alive"] for w in pool.call(address, "workers")) >= n,
                   timeout, f"the scheduler did not see {n} live workers within {timeout} s")

    def _poll(self, ready, timeout: float, failure, call_timeout: float = 5.0):
        """Call READY(pool) every 50 ms until it returns something true, and
        return that (an error counts as not yet); after TIMEOUT seconds raise
        TimeoutError(FAILURE, or FAILURE() if it is callable)."""
        pool = HttpPool(Secret.load(self.home.secret_file), timeout=call_timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    got = ready(pool)
                    if got:
                        return got
                except Exception:
                    pass
                time.sleep(0.05)
        finally:
            pool.close()
        raise TimeoutError(failure() if callable(failure) else failure)

    def wait_live(self, n: int, timeout: float = 60.0) -> None:
        """Until the master counts N live chunkservers and is out of safe mode."""
        master = self.home.read_state()["master"]
        last = [None]

        def ready(pool) -> bool:
            last[0] = info = pool.call(master, "cluster")
            return sum(s["alive"] for s in info["servers"]) >= n and not info["safemode"]
        self._poll(ready, timeout, lambda: f"the master did not see {n} live chunkservers "
                                           f"within {timeout} s (last report: {last[0]})")


def _read_toml(path) -> dict:
    import tomllib
    return tomllib.loads(path.read_text())
