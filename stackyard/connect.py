"""`sy.connect()`: a client of the cluster under STACKYARD_HOME, or of an
embedded local cluster started for this process when none runs there."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

from stackyard.cluster import process
from stackyard.cluster.home import Home
from stackyard.cluster.local import LocalCluster, Settings
from stackyard.dfs.client import FileSystem
from stackyard.errors import ClusterUnavailable
from stackyard.net.auth import Secret


class Client:
    """A connection to one cluster. `fs` is its file system."""

    def __init__(self, master: str, secret: Secret, user: str | None = None,
                 home: Home | None = None, embedded: LocalCluster | None = None,
                 addresses: dict[str, list[str]] | None = None):
        self.masters = master                # every master, comma-separated
        self._given = addresses or {}
        self.home = home
        self.fs = FileSystem(master, secret, user)
        self._secret = secret
        self._coord = None
        self._engine = None
        self._tables = None
        self._embedded = embedded

    @property
    def master(self) -> str:
        """The active master's host:port (for WebHDFS URLs and pages)."""
        return self.fs.active_master()

    def _addresses(self, role: str, missing: str) -> list[str]:
        """The addresses of this cluster's ROLE daemons; MISSING says why none."""
        if self._given.get(role):
            return list(self._given[role])
        state = self.home.read_state() if self.home else None
        addresses = [d["address"] for d in (state or {}).get("daemons", []) if d["role"] == role]
        if not addresses:
            raise ClusterUnavailable(missing)
        return addresses

    @property
    def coord(self):
        """A client of the cluster's coordination cell (see stackyard/coord/)."""
        if self._coord is None:
            from stackyard.coord.client import CoordClient
            self._coord = CoordClient(self._addresses(
                "coord", "this cluster runs no coordination cell "
                         "(yard cluster up starts one; --coords 0 does not)"), self._secret)
        return self._coord

    @property
    def tables(self):
        """A client of the cluster's table store (see stackyard/table/)."""
        if self._tables is None:
            from stackyard.table.client import TableClient
            self._tables = TableClient(self._addresses(
                "coord", "this cluster runs no coordination cell, so no table store "
                         "(yard cluster up starts both)"), self._secret, self.fs.user)
        return self._tables

    def table(self, name: str):
        """The table NAME: put, get, delete, scan, increment ... (Bigtable / HBase)."""
        return self.tables.table(name)

    @property
    def engine(self):
        """A client of the cluster's job scheduler (see stackyard/compute/)."""
        if self._engine is None:
            from stackyard.compute.client import EngineClient
            self._engine = EngineClient(self._addresses(
                "scheduler", "this cluster runs no job scheduler "
                             "(yard cluster up starts one; --workers 0 does not)")[0],
                self._secret)
        return self._engine

    def context(self, appName: str = "stackyard", **options):  # noqa: N803
        """The dataset API's driver (PySpark's SparkContext) on this cluster's
        engine; stop() it, or use it as a context manager."""
        from stackyard.dataset.context import Context
        return Context(self, appName, **options)

    def sql(self, query: str, params=None):
        """Run SQL (Spark's dialect) on this cluster; the last statement's
        result (`.arrow()`, `.to_pandas()`, `.fetchall()`, `.show()`)."""
        return self.sql_session().sql(query, params)

    def sql_session(self, **options):
        """This client's SQL session (created on first use; see stackyard/sql/)."""
        if getattr(self, "_sql", None) is None:
            from stackyard.sql.session import Session
            self._sql = Session(self, **options)
        return self._sql

    def coord_cached(self, session_timeout: float = 10.0):
        """A client of the coordination cell that caches the nodes it reads
        (Chubby's cache: invalidated before any write to them is acknowledged).
        The caller closes it."""
        from stackyard.coord.client import CoordClient
        cell = self.coord
        return CoordClient(cell.addresses, self._secret, session_timeout=session_timeout,
                           cache=True)

    def __repr__(self) -> str:
        kind = "embedded" if self._embedded else "cluster"
        return f"<stackyard.Client {kind} master={self.masters}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_sql", None) is not None:
            self._sql.close()
            self._sql = None
        self.fs.close()
        if self._coord is not None:
            self._coord.close()
            self._coord = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._tables is not None:
            self._tables.close()
            self._tables = None
        if self._embedded is not None:
            self._embedded.down()
            shutil.rmtree(self._embedded.home.root, ignore_errors=True)
            self._embedded = None


def running_master(home: Home) -> str | None:
    state = home.read_state()
    if not state or not state.get("master"):
        return None
    for d in state["daemons"]:
        if d["role"] == "master" and process.alive(d["pid"], d["config"]):
            return state["master"]
    return None


def home_secret(home: str | os.PathLike | None = None) -> Secret | None:
    """The secret file of the cluster home HOME, if there is one."""
    path = Home.at(home).secret_file
    return Secret.load(path) if os.path.exists(path) else None


def _secret_from(secret: str | bytes | os.PathLike) -> Secret:
    """The key itself (bytes, or text that does not look like a path), or the
    file a path names; a path that does not exist is an error naming it, not
    a key that then fails as "wrong cluster secret"."""
    if isinstance(secret, bytes):
        return Secret(secret)
    text = os.fspath(secret)
    if os.path.exists(text):
        return Secret.load(text)
    if isinstance(secret, os.PathLike) or os.sep in text or text.startswith(("~", ".")):
        raise FileNotFoundError(2, "cluster secret file not found", text)
    return Secret(text.encode())


def _warn_embedded(home: Home, root: str) -> None:
    print(f"stackyard: no cluster runs under {home.root}; started an embedded one in {root} "
          "for this process. Its data is thrown away when the process exits "
          "(`yard cluster up` starts one that keeps it).", file=sys.stderr)


def connect(home: str | os.PathLike | None = None, master: str | None = None,
            secret: str | bytes | os.PathLike | Secret | None = None, user: str | None = None,
            embedded: bool = True, tls_ca: str | os.PathLike | None = None) -> Client:
    """Connect to MASTER (with SECRET: a Secret, the key, or its file; TLS_CA:
    the CA of a cluster that runs TLS, found as tls/ca.pem beside a secret
    file when not given) or to the cluster under HOME (default STACKYARD_HOME,
    then ~/.stackyard). If none runs there and EMBEDDED, start a small local
    cluster for this process; it stops when the client closes or the process
    exits."""
    if master is not None:
        if secret is None:
            raise ValueError("secret: needed when master is given")
        if not isinstance(secret, Secret):
            secret = _secret_from(secret)
        if tls_ca is not None:
            secret = secret.with_ca(tls_ca)
        return Client(master, secret, user)
    h = Home.at(home)
    addr = running_master(h)
    if addr is not None:
        return Client(addr, Secret.load(h.secret_file), user, home=h)
    if not embedded:
        raise ClusterUnavailable(f"no cluster is running under {h.root} (start one with "
                                 "`yard cluster up`)")
    # every API a cluster serves (files, jobs, coordination) serves here too;
    # one coord replica is a whole cell, and it starts in a second
    root = tempfile.mkdtemp(prefix="stackyard-embedded-")
    _warn_embedded(h, root)
    cluster = LocalCluster(Home.at(root),
                           Settings(chunkservers=3, coords=1, workers=2, heartbeat_interval=1.0,
                                    dead_after=10.0, tablet_servers=1, thrift=False,
                                    search_servers=1, search_http_port=0))
    state = cluster.up()
    client = Client(state["master"], Secret.load(cluster.home.secret_file), user,
                    home=cluster.home, embedded=cluster)
    atexit.register(client.close)
    return client
