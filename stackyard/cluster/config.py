"""One typed config per daemon; TOML on disk.

Each field has its default and the reason for it. `validate()` raises
ValueError naming the field. `yard cluster up` writes these files; a
multi-machine deployment writes them by hand and runs
`yard daemon ROLE --config FILE`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

MiB = 1024 * 1024
BLOCK = 64 * 1024  # checksum block: CRC32C per 64 KiB, the unit reads verify


@dataclass
class MasterConfig:
    data_dir: str                      # op log and checkpoints
    secret_file: str
    host: str = "127.0.0.1"            # loopback unless told otherwise
    port: int = 0                      # 0: any free port (written to addr_file)
    addr_file: str = ""
    tls_cert: str = ""                 # this daemon's certificate (PEM); "": no TLS
    tls_key: str = ""                  # its private key
    tls_ca: str = ""                   # the CA its peers' certificates are checked against
    default_replication: int = 3       # GFS and HDFS default
    default_chunk_size: int = 64 * MiB  # GFS's chunk size
    heartbeat_interval: float = 3.0    # HDFS: every 3 s
    dead_after: float = 30.0           # HDFS waits 10.5 min; a laptop cluster wants less
    lease_timeout: float = 60.0        # HDFS's soft lease limit
    token_lifetime: float = 600.0      # chunk access tokens
    checkpoint_log_bytes: int = 16 * MiB  # checkpoint when the op log passes this
    safemode_seconds: float = -1.0     # -1: two heartbeat intervals after start
    replication_timeout: float = 30.0  # re-issue a replication that has not completed
    superuser: str = ""                # "": the user running the master
    max_directory_items: int = 1024 * 1024  # HDFS's dfs.namenode.fs-limits.max-directory-items
    trash_interval: float = 0.0        # minutes a deleted path stays in .Trash; 0: no trash (HDFS)
    trash_checkpoint_interval: float = 0.0  # minutes between emptier rounds; 0: trash_interval
    # the replicated master: every master of the cluster, this one too, as
    # "m1=host:port,m2=..." ("": a master alone); the op log is a Raft log
    node_id: str = "master"            # this master's name in `peers`
    peers: str = ""
    tick: float = 0.05                 # seconds per Raft tick
    election_ticks: int = 10           # 0.5 to 1 s before a silent active master is replaced
    heartbeat_ticks: int = 2

    def validate(self) -> MasterConfig:
        _positive(self, "default_replication", "default_chunk_size", "heartbeat_interval",
                  "dead_after", "lease_timeout", "token_lifetime", "checkpoint_log_bytes",
                  "replication_timeout", "max_directory_items", "tick", "election_ticks",
                  "heartbeat_ticks")
        if self.heartbeat_ticks >= self.election_ticks:
            raise ValueError("heartbeat_ticks: must be smaller than election_ticks")
        for name in ("trash_interval", "trash_checkpoint_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: minutes, 0 or more")
        if self.peers and self.node_id not in self.peer_map():
            raise ValueError(f"node_id: {self.node_id!r} is not among peers "
                             f"({', '.join(self.peer_map())})")
        if self.default_chunk_size % BLOCK:
            raise ValueError(f"default_chunk_size: must be a multiple of {BLOCK} bytes")
        if self.dead_after <= self.heartbeat_interval:
            raise ValueError("dead_after: must be longer than heartbeat_interval")
        _port(self)
        return self

    @property
    def safemode(self) -> float:
        return 2 * self.heartbeat_interval if self.safemode_seconds < 0 else self.safemode_seconds

    def peer_map(self) -> dict[str, str]:
        """Every master by name; a master alone is its own one-member group."""
        if not self.peers:
            return {self.node_id: f"{self.host}:{self.port}"}
        return peer_map(self.peers, "masters")


@dataclass
class ChunkserverConfig:
    data_dir: str                      # chunk files and their checksums
    master: str                        # host:port of the master
    secret_file: str
    host: str = "127.0.0.1"
    port: int = 0
    addr_file: str = ""
    tls_cert: str = ""                 # this daemon's certificate (PEM); "": no TLS
    tls_key: str = ""                  # its private key
    tls_ca: str = ""                   # the CA its peers' certificates are checked against
    rack: str = "/default-rack"        # placement spreads replicas over racks
    heartbeat_interval: float = 3.0
    report_interval: float = 60.0      # full chunk report; heartbeats carry the deltas
    scan_interval: float = 300.0       # background checksum scan of every chunk
    capacity: int = 0                  # 0: the disk's size

    def validate(self) -> ChunkserverConfig:
        _positive(self, "heartbeat_interval", "report_interval", "scan_interval")
        master_list(self.master)
        if not self.rack.startswith("/"):
            raise ValueError("rack: must start with '/' (e.g. /rack1)")
        _port(self)
        return self


@dataclass
class CoordConfig:
    data_dir: str                      # the Raft log and snapshots
    secret_file: str
    node_id: str                       # this replica's name in `peers`
    peers: str                         # every replica, this one too: "n1=host:port,n2=..."
    host: str = "127.0.0.1"
    port: int = 0                      # must match this replica's entry in `peers`
    addr_file: str = ""
    tls_cert: str = ""                 # this daemon's certificate (PEM); "": no TLS
    tls_key: str = ""                  # its private key
    tls_ca: str = ""                   # the CA its peers' certificates are checked against
    tick: float = 0.05                 # seconds per Raft tick
    election_ticks: int = 8            # 0.4 to 0.8 s before a silent leader is replaced
    heartbeat_ticks: int = 2
    snapshot_entries: int = 5000       # compact the log after this many applied entries
    max_session_timeout: float = 60.0
    cache_lease: float = 1.0           # how long a client trusts its cache without a poll;
                                       # a new leader holds writes this long if any client caches

    def validate(self) -> CoordConfig:
        _positive(self, "tick", "election_ticks", "heartbeat_ticks", "snapshot_entries",
                  "max_session_timeout", "cache_lease")
        if self.heartbeat_ticks >= self.election_ticks:
            raise ValueError("heartbeat_ticks: must be smaller than election_ticks")
        members = self.peer_map()
        if self.node_id not in members:
            raise ValueError(f"node_id: {self.node_id!r} is not among peers ({', '.join(members)})")
        _port(self)
        return self

    def peer_map(self) -> dict[str, str]:
        return peer_map(self.peers, "replicas")


def peer_map(peers: str, what: str) -> dict[str, str]:
    """"n1=host:port,n2=..." as a dict; a Raft group has an odd size."""
    out = {}
    for item in filter(None, (p.strip() for p in peers.split(","))):
        name, sep, address = item.partition("=")
        if not sep or ":" not in address:
            raise ValueError(f"peers: expected name=host:port, got {item!r}")
        out[name] = address
    if len(out) not in (1, 3, 5, 7):
        raise ValueError(f"peers: a group has 1, 3, 5 or 7 {what}, got {len(out)}")
    return out


def master_list(value: str, field: str = "master") -> list[str]:
    """A `master` setting: one host:port, or every master's, comma-separated."""
    out = [a.strip() for a in value.split(",") if a.strip()]
    if not out or any(":" not in a for a in out):
        raise ValueError(f"{field}: must be host:port, or several joined by commas")
    return out


@dataclass
class SchedulerConfig:
    data_dir: str
    secret_file: str
    host: str = "127.0.0.1"
    port: int = 0
    addr_file: str = ""
    tls_cert: str = ""                 # this daemon's certificate (PEM); "": no TLS
    tls_key: str = ""                  # its private key
    tls_ca: str = ""                   # the CA its peers' certificates are checked against
    worker_dead_after: float = 10.0    # Hadoop waits 10 min; a laptop cluster wants less
    speculative_slowdown: float = 1.5  # a backup once a task runs 1.5x its peers' median
    speculative_min_seconds: float = 2.0  # ... and at least this long
    app_lease: float = 60.0            # a dataset driver silent this long: its cache is dropped
    locality_wait: float = 1.0         # a task waits this long for a slot near its data (Spark: 3 s)
    task_group_seconds: float = 0.5    # quick tasks ride together, an attempt taking about this; 0: never
    master: str = ""                   # the DFS master, for the job history; "": none kept
    history_days: float = 7.0          # finished jobs read back at start (Hadoop keeps a week)

    def validate(self) -> SchedulerConfig:
        _positive(self, "worker_dead_after", "speculative_slowdown", "speculative_min_seconds",
                  "app_lease")
        for name in ("locality_wait", "task_group_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be 0 or more seconds, got {getattr(self, name)}")
        _port(self)
        return self


@dataclass
class WorkerConfig:
    data_dir: str                      # map outputs (the shuffle) and task scratch space
    scheduler: str                     # host:port of the scheduler
    master: str                        # host:port of the DFS master, for tasks
    secret_file: str
    name: str = ""                     # "": host:port
    host: str = "127.0.0.1"
    port: int = 0
    addr_file: str = ""
    tls_cert: str = ""                 # this daemon's certificate (PEM); "": no TLS
    tls_key: str = ""                  # its private key
    tls_ca: str = ""                   # the CA its peers' certificates are checked against
    slots: int = 0                     # concurrent tasks; 0: this machine's cores
    chunkserver: str = ""              # host:port of the chunkserver beside it (locality)
    heartbeat_interval: float = 0.5    # also sent at once when a task ends
    block_memory: int = 1 << 30        # bytes of cached partitions held in memory

    def validate(self) -> WorkerConfig:
        _positive(self, "heartbeat_interval")
        for name in ("scheduler", "master"):
            if ":" not in getattr(self, name):
                raise ValueError(f"{name}: must be host:port")
        if self.slots < 0:
            raise ValueError(f"slots: must be 0 (= cores) or more, got {self.slots}")
        if self.block_memory < 0:
            raise ValueError(f"block_memory: must be 0 or more bytes, got {self.block_memory}")
        _port(self)
        return self


@dataclass
class ConnectConfig:
    data_dir: str                      # client artifacts (Python files, cached local data)
    master: str                        # host:port of the DFS master
    secret_file: str
    scheduler: str = ""                # host:port of the job scheduler
    coords: str = ""                   # host:port,host:port of the coordination cell
    host: str = "127.0.0.1"
    port: int = 15002                  # Spark Connect's own default port
    addr_file: str = ""
    tls_cert: str = ""                 # this daemon's certificate (PEM); "": loopback only
    tls_key: str = ""
    tls_ca: str = ""

    def validate(self) -> ConnectConfig:
        master_list(self.master)
        _port(self)
        return self


@dataclass
class TableMasterConfig:
    data_dir: str
    master: str                        # host:port of the DFS master
    coords: str                        # host:port,... of the coordination cell
    secret_file: str
    host: str = "127.0.0.1"
    port: int = 0                      # HBase's master listens on 16000
    addr_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    session_timeout: float = 10.0      # its lock's session; a standby takes over after this
    check_interval: float = 1.0        # reconcile servers, METADATA and assignments this often
    merge_bytes: int = 32 * MiB        # neighbours smaller than this together merge; 0: never
    merge_min_age: float = 86400.0     # seconds a tablet lives before it may merge (HBase: 3 days)

    def validate(self) -> TableMasterConfig:
        _positive(self, "session_timeout", "check_interval")
        if self.merge_bytes < 0 or self.merge_min_age < 0:
            raise ValueError("merge_bytes, merge_min_age: must be 0 or more")
        for name in ("master",):
            if ":" not in getattr(self, name):
                raise ValueError(f"{name}: must be host:port")
        if not self.coords:
            raise ValueError("coords: the table store needs the coordination cell")
        _port(self)
        return self


@dataclass
class TabletServerConfig:
    data_dir: str
    master: str                        # host:port of the DFS master
    coords: str                        # host:port,... of the coordination cell
    secret_file: str
    host: str = "127.0.0.1"
    port: int = 0                      # HBase's region servers listen on 16020
    addr_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    session_timeout: float = 10.0      # its lock: lost after this, it stops serving
    flush_bytes: int = 64 * MiB        # a tablet's memtables flush past this (Bigtable: ~64 MB)
    split_bytes: int = 256 * MiB       # a tablet splits past this (HBase 2: 10 GiB; the issue: 256 MiB)
    block_cache_bytes: int = 256 * MiB
    wal_roll_bytes: int = 64 * MiB     # a new log file past this
    replication: int = 0               # of its DFS files; 0: the DFS default
    chunkserver: str = ""              # host:port of the chunkserver beside it (locality)
    handlers: int = 30                 # RPCs served at once (hbase.regionserver.handler.count)

    def validate(self) -> TabletServerConfig:
        _positive(self, "session_timeout", "flush_bytes", "split_bytes", "block_cache_bytes",
                  "wal_roll_bytes", "handlers")
        master_list(self.master)
        if not self.coords:
            raise ValueError("coords: the table store needs the coordination cell")
        if self.replication < 0:
            raise ValueError("replication: 0 (the DFS default) or more")
        _port(self)
        return self


@dataclass
class ThriftConfig:
    data_dir: str
    coords: str                        # host:port,... of the coordination cell
    secret_file: str
    host: str = "127.0.0.1"            # loopback: peers are checked by their uid
    port: int = 9090                   # HBase's Thrift server's port
    addr_file: str = ""
    tls_cert: str = ""                 # wrap connections in TLS (a client that speaks it)
    tls_key: str = ""
    tls_ca: str = ""
    users: str = ""                    # local users besides the owner: "1001=alice,1002=bob"
    allow_remote: bool = False         # listen beyond loopback (no credentials are checked)
    remote_user: str = ""              # whom remote peers act as; "": refuse them

    def validate(self) -> ThriftConfig:
        if not self.coords:
            raise ValueError("coords: the gateway finds the table store through the cell")
        if self.host not in ("127.0.0.1", "::1", "localhost") and not self.allow_remote:
            raise ValueError(f"host: {self.host} is not loopback; set allow_remote = true to "
                             "serve Thrift (which checks no credentials) beyond this machine")
        _port(self)
        return self


@dataclass
class SearchServerConfig:
    data_dir: str
    master: str                        # host:port of the DFS master
    coords: str                        # host:port,... of the coordination cell
    secret_file: str
    host: str = "127.0.0.1"
    port: int = 0                      # our RPC between servers (Elasticsearch's transport: 9300)
    http_port: int = 9200              # Elasticsearch's REST API; 0: any free port
    addr_file: str = ""
    http_addr_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    session_timeout: float = 10.0      # its lock: lost after this, it stops serving
    refresh_interval: float = 1.0      # new writes become searchable this often (as ES)
    state_interval: float = 0.3        # follow routing and allocate this often
    flush_ops: int = 50_000            # a primary commits after this many operations
    flush_seconds: float = 30.0        # ... or after this long with any
    replication: int = 0               # of its DFS files; 0: the DFS default

    def validate(self) -> SearchServerConfig:
        _positive(self, "session_timeout", "refresh_interval", "state_interval", "flush_ops",
                  "flush_seconds")
        master_list(self.master)
        if not self.coords:
            raise ValueError("coords: search servers need the coordination cell")
        if not 0 <= self.http_port < 65536:
            raise ValueError(f"http_port: must be 0..65535, got {self.http_port}")
        _port(self)
        return self


ROLES = {"master": MasterConfig, "chunkserver": ChunkserverConfig, "coord": CoordConfig,
         "scheduler": SchedulerConfig, "worker": WorkerConfig, "connect": ConnectConfig,
         "tablemaster": TableMasterConfig, "tabletserver": TabletServerConfig,
         "thrift": ThriftConfig, "searchserver": SearchServerConfig}


def _positive(cfg, *names: str) -> None:
    for name in names:
        if not getattr(cfg, name) > 0:
            raise ValueError(f"{name}: must be positive, got {getattr(cfg, name)!r}")


def _port(cfg) -> None:
    if not 0 <= cfg.port <= 65535:
        raise ValueError(f"port: must be 0..65535, got {cfg.port}")


def load(role: str, path: str | Path):
    """Read and validate the config of ROLE from a TOML file."""
    cls = ROLES.get(role)
    if cls is None:
        raise ValueError(f"role: unknown role {role!r} (choose from {', '.join(ROLES)})")
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(2, "config file not found", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) for {role}: {', '.join(unknown)}")
    missing = [n for n, f in known.items()
               if f.default is dataclasses.MISSING and n not in raw]
    if missing:
        raise ValueError(f"{path}: missing setting(s) for {role}: {', '.join(missing)}")
    for name, value in raw.items():
        want = type(known[name].default) if known[name].default is not dataclasses.MISSING else str
        if want is float and isinstance(value, int):
            raw[name] = float(value)
        elif not isinstance(raw[name], want):
            raise ValueError(f"{name}: expected {want.__name__}, got {value!r}")
    return cls(**raw).validate()


def dump(cfg, path: str | Path) -> None:
    """Write CFG as flat TOML (JSON string quoting is valid TOML for our values)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in dataclasses.asdict(cfg).items()]
    Path(path).write_text("\n".join(lines) + "\n")


