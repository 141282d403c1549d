"""A pseudo-distributed cluster on this machine: every daemon a real process
on 127.0.0.1, all under one STACKYARD_HOME. `yard cluster up/down/status`,
the embedded default of `sy.connect()`, and the test suite's mini cluster
are all this class."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from stackyard.cluster import process
from stackyard.cluster.config import (
    ChunkserverConfig,
    ConnectConfig,
    CoordConfig,
    MiB,
    SchedulerConfig,
    WorkerConfig,
    dump,
    load,
)
from stackyard.cluster.home import Home
from stackyard.cluster.ports import Ports
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool


@dataclass
class Settings:
    chunkservers: int = 3
    masters: int = 3                  # the replicated master: one active, the rest standbys
    coords: int = 3                   # replicas of the coordination cell (0, 1, 3 or 5)
    coord_snapshot_entries: int = 5000
    coord_cache_lease: float = 1.0
    workers: int = 2                  # job-engine workers (0: no scheduler either)
    worker_slots: int = 0             # tasks per worker; 0: the cores divided among the workers
    worker_block_memory: int = 1 << 30   # cached partitions each worker holds in memory
    worker_dead_after: float = 10.0
    app_lease: float = 60.0
    task_group_seconds: float = 0.5   # quick tasks ride together in attempts of about this; 0: never
    speculative_min_seconds: float = 2.0
    chunk_size: int = 64 * MiB
    replication: int = 3
    dead_after: float = 30.0
    heartbeat_interval: float = 3.0
    lease_timeout: float = 60.0
    report_interval: float = 60.0
    scan_interval: float = 300.0
    checkpoint_log_bytes: int = 16 * MiB
    trash_interval: float = 1440.0    # minutes in .Trash after -rm (a day, as most clusters set)
    trash_checkpoint_interval: float = 0.0    # minutes between emptier rounds; 0: trash_interval
    racks: int = 0                    # 0: no racks; N: chunkserver i on /rack(i mod N)
    chunkserver_capacity: int = 0     # bytes each chunkserver offers; 0: its disk's size
    host: str = "127.0.0.1"
    tls: bool = False                 # a cluster CA, a certificate per daemon, TLS everywhere
    connect: bool = True              # a Spark Connect server, where pyspark-client is installed
    tables: bool = True               # the table store: a table master, tablet servers
    tablet_servers: int = 0           # 0: one beside each chunkserver
    table_session_timeout: float = 10.0
    tablet_flush_bytes: int = 64 * MiB
    tablet_split_bytes: int = 256 * MiB
    tablet_merge_bytes: int = 32 * MiB        # adjacent tablets smaller together merge
    tablet_merge_min_age: float = 86400.0     # once each has lived this long (seconds)
    thrift: bool = True               # HBase's Thrift gateway, for happybase
    thrift_port: int = 9090           # HBase's; 0: any free port
    search: bool = True               # search servers (Elasticsearch's REST API)
    search_servers: int = 0           # 0: one beside each chunkserver
    search_http_port: int = 9200      # the first server's REST port, then 9201, ...; 0: any
    search_refresh_interval: float = 1.0

    def validate(self) -> Settings:
        if self.chunkservers < 1:
            raise ValueError("chunkservers: need at least 1")
        if self.masters not in (1, 3, 5):
            raise ValueError("masters: a replicated master has 1, 3 or 5 members")
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


# what `cluster up` may change on an existing cluster: growth, and the
# defaults the master gives new files; everything else is fixed at birth
GROWS = ("chunkservers", "workers")
MASTER_DEFAULTS = {"replication": "default_replication", "chunk_size": "default_chunk_size"}


class ShapeError(ValueError):
    """A flag of `cluster up` that the existing cluster cannot take."""


def saved_settings(home: Home) -> Settings | None:
    """The shape the cluster under HOME was made with (and grown to), or None
    for a new home. Homes made before the shape was saved are read off their
    configs."""
    if home.shape_file.exists():
        saved = json.loads(home.shape_file.read_text())
        known = {f.name for f in fields(Settings)}
        saved.setdefault("masters", 1)       # a home from before the master was replicated
        return Settings(**{k: v for k, v in saved.items() if k in known})
    if not home.conf("master").exists():
        return None
    conf = home.root / "conf"
    master = _read_toml(home.conf("master"))
    return Settings(chunkservers=len(list(conf.glob("chunkserver-*.toml"))), masters=1,
                    coords=len(list(conf.glob("coord-*.toml"))),
                    workers=len(list(conf.glob("worker-*.toml"))),
                    replication=master["default_replication"],
                    chunk_size=master["default_chunk_size"], dead_after=master["dead_after"],
                    heartbeat_interval=master["heartbeat_interval"],
                    lease_timeout=master["lease_timeout"])


def changed_settings(saved: Settings, given: dict) -> Settings:
    """SAVED with the flags GIVEN applied, or ShapeError naming the first
    flag the cluster cannot take (never drop a live server silently)."""
    for name, value in given.items():
        old = getattr(saved, name)
        if value == old or name in MASTER_DEFAULTS:
            continue
        flag = "--" + name.replace("_", "-")
        if name in GROWS and value > old:
            continue
        if name in GROWS:
            kind = name[:-1]
            raise ShapeError(
                f"{flag} {value}: this cluster has {old} {name}; `cluster up` adds {name} "
                f"but never removes one (a {kind} leaves only once its data is safe "
                f"elsewhere). Run `yard cluster up` without {flag}, or remove the home "
                "for a new cluster")
        raise ShapeError(f"{flag} {value}: this cluster was made with {old}, which is fixed "
                         f"once it exists. Run `yard cluster up` without {flag}, or remove "
                         "the home for a new cluster")
    return replace(saved, **given).validate()


class LocalCluster:
    def __init__(self, home: Home, settings: Settings | None = None):
        """A cluster under HOME, of SETTINGS when it is new; an existing one
        keeps its saved shape unless SETTINGS changes it as `changed_settings`
        allows."""
        self.home = home
        saved = saved_settings(home)
        if settings is None:
            settings = saved or Settings()
        elif saved is not None:
            settings = changed_settings(saved, {f.name: getattr(settings, f.name)
                                                for f in fields(Settings)})
        self.settings = settings.validate()

    @classmethod
    def with_flags(cls, home: Home, given: dict) -> LocalCluster:
        """The cluster under HOME with only the flags a user GAVE applied:
        a new one gets the defaults for the rest, an existing one its own."""
        saved = saved_settings(home)
        return cls(home, changed_settings(saved, given) if saved else Settings(**given))

    # -- configuration ---------------------------------------------------------

    def _configure(self) -> list[dict]:
        """Write the configs (once: a restarted cluster keeps its ports and disks)."""
        s, h = self.settings, self.home
        h.make_dirs()
        if not h.secret_file.exists():
            Secret.generate().save(h.secret_file)
        ports = Ports(s.host, _saved_ports(h))
        try:
            daemons = self._write_configs(ports)
        finally:
            ports.release()
        self._apply_master_defaults()
        tmp = h.shape_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(s), indent=2) + "\n")
        os.replace(tmp, h.shape_file)
        for d in daemons:
            d.update(config=str(h.conf(d["name"])), log=str(h.log(d["name"])), pid=0, address="")
        return daemons

    def _apply_master_defaults(self) -> None:
        """A changed --replication or --chunk-size becomes the masters' default
        for new files (existing files keep theirs, as in HDFS)."""
        for n in master_names(self.settings.masters):
            path = self.home.conf(n)
            conf = load("master", path)
            new = replace(conf, **{key: getattr(self.settings, name)
                                   for name, key in MASTER_DEFAULTS.items()})
            if new != conf:
                dump(new.validate(), path)

    def master_string(self) -> str:
        """Every master's host:port, comma-separated: what clients and servers
        are given (they find the active one themselves)."""
        out = []
        for name in master_names(self.settings.masters):
            conf = _read_toml(self.home.conf(name))
            out.append(f"{conf['host']}:{conf['port']}")
        return ",".join(out)

    def _tls(self, name: str) -> dict:
        """The TLS settings of daemon NAME's config: its certificate, issued by
        the cluster CA under HOME/tls (made the first time), or none."""
        if not self.settings.tls:
            return {}
        from stackyard.cluster import tls
        directory = self.home.root / "tls"
        ca = tls.make_ca(directory)
        host = self.settings.host
        cert, key = tls.issue(directory, name, [host, "localhost", "127.0.0.1"])
        return {"tls_cert": str(cert), "tls_key": str(key), "tls_ca": str(ca)}

    def _write_configs(self, ports: Ports) -> list[dict]:
        s, h = self.settings, self.home
        daemons = []
        from stackyard.cluster.store_configs import master_configs
        daemons += master_configs(self, ports)
        master = self.master_string()
        for i in range(1, s.chunkservers + 1):
            name = f"chunkserver-{i}"
            if not h.conf(name).exists():
                # a fixed port: workers beside it name it for data locality
                dump(ChunkserverConfig(
                    data_dir=str(h.data(name)), master=master, secret_file=str(h.secret_file),
                    host=s.host, port=ports.take(), addr_file=str(h.addr_file(name)),
                    rack=f"/rack{(i - 1) % s.racks + 1}" if s.racks else "/default-rack",
                    heartbeat_interval=s.heartbeat_interval, report_interval=s.report_interval,
                    scan_interval=s.scan_interval, capacity=s.chunkserver_capacity,
                    **self._tls(name),
                ).validate(), h.conf(name))
            daemons.append({"name": name, "role": "chunkserver"})
        names = [f"coord-{i}" for i in range(1, s.coords + 1)]
        if names and not h.conf(names[0]).exists():
            coord_ports = {n: ports.take() for n in names}
            peers = ",".join(f"{n}={s.host}:{coord_ports[n]}" for n in names)
            for n in names:
                dump(CoordConfig(data_dir=str(h.data(n)), secret_file=str(h.secret_file),
                                 node_id=n, peers=peers, host=s.host, port=coord_ports[n],
                                 addr_file=str(h.addr_file(n)),
                                 snapshot_entries=s.coord_snapshot_entries,
                                 cache_lease=s.coord_cache_lease,
                                 **self._tls(n)).validate(), h.conf(n))
        daemons += [{"name": n, "role": "coord"} for n in names]
        if s.workers:
            if not h.conf("scheduler").exists():
                dump(SchedulerConfig(
                    data_dir=str(h.data("scheduler")), secret_file=str(h.secret_file),
                    master=master,
                    host=s.host, port=ports.take(), addr_file=str(h.addr_file("scheduler")),
                    worker_dead_after=s.worker_dead_after, app_lease=s.app_lease,
                    task_group_seconds=s.task_group_seconds,
                    speculative_min_seconds=s.speculative_min_seconds,
                    **self._tls("scheduler")).validate(),
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
                        chunkserver=f"{cs['host']}:{cs['port']}",
                        **self._tls(name)).validate(), h.conf(name))
                daemons.append({"name": name, "role": "worker"})
            if s.connect and names and connect_available():
                if not h.conf("connect").exists():
                    coords = ",".join(f"{c['host']}:{c['port']}" for c in
                                      (_read_toml(h.conf(n)) for n in names))
                    dump(ConnectConfig(
                        data_dir=str(h.data("connect")), master=master,
                        secret_file=str(h.secret_file), scheduler=f"{sched['host']}:"
                        f"{sched['port']}", coords=coords, host=s.host, port=ports.take(),
                        addr_file=str(h.addr_file("connect")),
                        **self._tls("connect")).validate(), h.conf("connect"))
                daemons.append({"name": "connect", "role": "connect"})
        if s.tables and names:
            from stackyard.cluster.store_configs import table_configs
            daemons += table_configs(self, master, names)
        if s.search and names:
            from stackyard.cluster.store_configs import search_configs
            daemons += search_configs(self, master, names)
        return daemons

    # -- lifecycle --------------------------------------------------------------

    def up(self, timeout: float = 60.0) -> dict:
        state = self.home.read_state()
        if state and any(process.alive(d["pid"], d["config"]) for d in state["daemons"]):
            return self._grow(state, timeout)
        daemons = self._configure()
        state = {"home": str(self.home.root), "daemons": daemons, "workers": self.settings.workers,
                 "master": self.master_string()}
        try:
            self._start_all(daemons, state, timeout)
        except BaseException:
            self.down()
            raise
        return state

    def _start_all(self, daemons: list[dict], state: dict, timeout: float) -> None:
        """Start DAEMONS, then wait until the cluster of SETTINGS is whole."""
        for d in daemons:
            self.start(d, state)
        self.wait_live(self.settings.chunkservers, timeout)
        if self.settings.workers:
            self.wait_workers(self.settings.workers, timeout)
        if any(d["role"] == "coord" for d in daemons):
            self.wait_coord_leader(timeout)
        servers = sum(d["role"] == "tabletserver" for d in daemons)
        if servers:
            self.wait_tables(servers, timeout)
        if any(d["role"] == "searchserver" for d in daemons):
            self.wait_search(timeout)

    def wait_search(self, timeout: float = 60.0) -> None:
        """Until every search server answers Elasticsearch's `GET /`."""
        state = self.home.read_state() or {"daemons": []}
        names = [d["name"] for d in state["daemons"] if d["role"] == "searchserver"]
        secret = self.home.secret_file.read_text().strip()

        def ready(_pool) -> bool:
            for name in names:
                path = Path(str(self.home.addr_file(name)) + ".http")
                if not path.exists():
                    return False
                try:
                    req = urllib.request.Request(f"http://{path.read_text().strip()}/",
                                                 headers={"Authorization": f"Bearer {secret}"})
                    with urllib.request.urlopen(req, timeout=3) as resp:
                        if resp.status != 200:
                            return False
                except OSError:
                    return False
            return True

        self._poll(ready, timeout, lambda: f"the search servers did not come up within "
                   f"{timeout} s (see {self.home.log(names[0])})")

    def wait_tables(self, servers: int, timeout: float = 60.0) -> None:
        """Until an active table master sees SERVERS tablet servers and the
        METADATA tablet is open."""
        state = self.home.read_state() or {"daemons": []}
        masters = [d["address"] for d in state["daemons"] if d["role"] == "tablemaster"]

        def ready(pool) -> bool:
            for address in masters:
                try:
                    st = pool.call(address, "status")
                except Exception:  # noqa: BLE001 - a standby or one starting up
                    continue
                return len(st["servers"]) >= servers and st.get("root")
            return False

        self._poll(ready, timeout, lambda: f"the table store did not come up within {timeout} s "
                   f"(see {self.home.log('tablemaster')})")

    def _grow(self, state: dict, timeout: float) -> dict:
        """Add the chunkservers and workers SETTINGS asks for to the running
        cluster of STATE, as HDFS adds DataNodes, and start again the daemons
        of it that stopped (a killed master comes back as a standby): the
        running daemons stay."""
        saved = saved_settings(self.home)
        stopped = [d["name"] for d in state["daemons"] if not process.alive(d["pid"], d["config"])]
        if saved == self.settings and not stopped:
            raise RuntimeError(f"a cluster is already running under {self.home.root} "
                               "(`yard cluster down` stops it)")
        for name in MASTER_DEFAULTS:
            if getattr(saved, name) != getattr(self.settings, name):
                flag = "--" + name.replace("_", "-")
                raise RuntimeError(f"{flag}: the master reads its defaults when it starts; "
                                   "run `yard cluster down` first, then `yard cluster up "
                                   f"{flag} ...`")
        running = {d["name"]: d for d in state["daemons"]
                   if process.alive(d["pid"], d["config"])}
        daemons = self._configure()
        state["daemons"] = [running.get(d["name"], d) for d in daemons]
        state["workers"] = self.settings.workers
        self.home.write_state(state)
        added = [d for d in state["daemons"] if d["name"] not in running]
        try:
            self._start_all(added, state, timeout)
        except BaseException:
            for d in added:
                process.stop(d["pid"], d["config"])
            raise
        state["added"] = [d["name"] for d in added if d["name"] not in stopped]
        state["restarted"] = [d["name"] for d in added if d["name"] in stopped]
        return state

    def start(self, d: dict, state: dict | None = None) -> dict:
        state = state or self.home.read_state()
        addr = self.home.addr_file(d["name"])
        addr.unlink(missing_ok=True)
        proc = process.spawn(d["role"], self.home.conf(d["name"]), self.home.log(d["name"]))
        d["pid"] = proc.pid
        self._record(d, state)
        try:
            d["address"] = process.wait_for_file(addr, proc, self.home.log(d["name"]))
        except RuntimeError as exc:
            if "address already in use" not in str(exc).lower():
                raise
            conf = self.home.conf(d["name"])
            port = _read_toml(conf).get("port")
            raise RuntimeError(
                f"{d['name']} cannot bind its saved port {self.settings.host}:{port}: another "
                f"process holds it. Stop that process (`ss -ltnp 'sport = :{port}'` names it), "
                f"or give it a free port in {conf}"
                + (" and in the peers of every coord-*.toml" if d["role"] == "coord" else "")
                + ", then run `yard cluster up` again") from None
        self._record(d, state)
        return d

    def _record(self, d: dict, state: dict) -> None:
        """Note D's pid and address in cluster.json at once, so that even a failed
        start leaves behind nothing `down` cannot find."""
        if d["role"] == "master" and d["address"] and self.settings.masters == 1:
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
            if running and d["role"] in ("connect", "thrift"):
                row["state"] = "running" if _listening(d["address"]) else "not listening"
            elif running:
                try:
                    resp = pool.request(d["address"], "GET", "/metrics")
                    resp.read()
                    row["state"] = "running" if resp.status == 200 else f"HTTP {resp.status}"
                    if d["role"] == "master" and resp.status == 200:
                        row["ha"] = pool.call(d["address"], "cluster")["role"]   # active | standby
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
        """Until an active master counts N live chunkservers and is out of
        safe mode."""
        masters = self.home.read_state()["master"].split(",")
        last = [None]

        def ready(pool) -> bool:
            for master in masters:
                try:
                    info = pool.call(master, "cluster")
                except Exception:
                    continue
                if info.get("role", "active") == "active":
                    last[0] = info
                    return sum(s["alive"] for s in info["servers"]) >= n and not info["safemode"]
            return False
        self._poll(ready, timeout, lambda: f"no active master saw {n} live chunkservers "
                                           f"within {timeout} s (last report: {last[0]})")


def master_names(n: int) -> list[str]:
    """The first master is `master` (as in a cluster of one); then master-2, ..."""
    return ["master"] + [f"master-{i}" for i in range(2, n + 1)]


def _saved_ports(home: Home) -> set[int]:
    taken = set()
    for path in (home.root / "conf").glob("*.toml"):
        port = _read_toml(path).get("port")
        if port:
            taken.add(port)
    return taken


def _read_toml(path) -> dict:
    import tomllib
    return tomllib.loads(path.read_text())


def connect_available() -> bool:
    """Whether this Python can serve Spark Connect (pyspark-client's protocol
    modules and grpcio: `pip install 'stackyard[connect]'`)."""
    import importlib.util
    try:
        # pyspark's own modules are looked for on disk, not imported: importing
        # pyspark.sql.connect in a process whose __main__ has no file (python -c,
        # a pytest-xdist worker) makes pyspark-client exit the process
        pyspark = importlib.util.find_spec("pyspark")
        found = pyspark is not None and any(
            (Path(p) / "sql" / "connect" / "proto" / "__init__.py").exists()
            for p in pyspark.submodule_search_locations or [])
        return found and all(importlib.util.find_spec(m) is not None
                             for m in ("grpc", "grpc_status"))
    except (ImportError, ValueError):
        return False


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False
