"""The table store's client: `sy.connect().table("t")`.

Finding a row's tablet is Bigtable's lookup: the METADATA tablet's location
from the coordination cell, then METADATA's row for the table and row;
both are cached, and a stale entry earns a "not serving" answer, after
which the client looks again. The master is asked only for admin work.

Columns are `b"family:qualifier"`; values and row keys are bytes (str is
encoded as UTF-8). Puts carry their timestamp from the client, so a put
retried after a lost reply writes the very same cell again.
"""

from __future__ import annotations

import bisect
import getpass
import threading
import time
from collections.abc import Iterator

import msgpack

from stackyard import errors
from stackyard.coord.client import CoordClient
from stackyard.coord.recipes import Election
from stackyard.coord.tree import NoNode
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool
from stackyard.table import filters, meta
from stackyard.table.model import (
    LATEST,
    Family,
    Kind,
    Schema,
    TabletInfo,
    check_row,
    now_ms,
    split_column,
)

RETRYABLE = (errors.NotServingError, errors.ClusterUnavailable)


def _b(x) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)


class Location:
    __slots__ = ("info", "server", "address")

    def __init__(self, info: TabletInfo, server: str, address: str):
        self.info, self.server, self.address = info, server, address


class TableClient:
    def __init__(self, coords: list[str], secret: Secret, user: str | None = None,
                 retry_seconds: float = 90.0):
        self.coord = CoordClient(coords, secret)
        # data calls are small (scans are bounded per call): a server silent this
        # long is treated as gone, and the row is looked up again
        self.pool = HttpPool(secret, timeout=20.0)
        self.admin_pool = HttpPool(secret, timeout=300.0)
        self.user = user or getpass.getuser()
        self.retry_seconds = retry_seconds
        self._root: str | None = None
        self._cache: dict[str, list[Location]] = {}     # table -> by start key
        self._lock = threading.Lock()
        self._master: str | None = None

    def close(self) -> None:
        self.coord.close()
        self.pool.close()
        self.admin_pool.close()

    def table(self, name: str) -> Table:
        return Table(self, name)

    # -- admin, through the active master ---------------------------------------------

    def master(self) -> str:
        leader = Election(self.coord, meta.MASTER, "").leader()
        if not leader:
            raise errors.ClusterUnavailable("no table master is running "
                                            "(yard cluster up starts one)")
        return leader

    def admin(self, name: str, **args):
        deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                address = self._master or self.master()
                return self.admin_pool.call(address, name, user=self.user, **args)
            except RETRYABLE:
                self._master = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def create_table(self, name: str, families: dict | list, splits: list | None = None,
                     durability: str = "hflush", merge: bool = True) -> None:
        """FAMILIES: names, or {name: {max_versions, ttl, compression, bloom, ...}}.
        MERGE: whether the master may merge its small adjacent tablets."""
        if not isinstance(families, dict):
            families = {f: {} for f in families}
        schema = Schema(name, {f: Family(f, **(opts or {})) for f, opts in families.items()},
                        durability=durability, merge=merge).validate()
        self.admin("create", schema=schema.to_dict(), splits=[_b(s) for s in splits or []])

    def delete_table(self, name: str, disable: bool = False) -> None:
        if disable and self.is_enabled(name):
            self.admin("disable", table=name)
        self.admin("delete", table=name)
        self._cache.pop(name, None)

    def enable_table(self, name: str) -> None:
        self.admin("enable", table=name)

    def disable_table(self, name: str) -> None:
        self.admin("disable", table=name)
        self._cache.pop(name, None)

    def is_enabled(self, name: str) -> bool:
        return self.describe(name).enabled

    def tables(self) -> list[str]:
        return self.admin("list")

    def describe(self, name: str) -> Schema:
        return Schema.from_dict(self.admin("describe", table=name))

    def tablets(self, name: str) -> list[dict]:
        return self.admin("tablets", table=name)

    def merge_tablets(self, left: str, right: str) -> None:
        """Merge two adjacent tablets (by id) into one (HBase's merge_region)."""
        self.admin("merge", left=left, right=right)

    # -- locating --------------------------------------------------------------------------

    def _root_address(self, fresh: bool = False) -> str:
        if self._root is None or fresh:
            try:
                data, _ = self.coord.get(meta.ROOT)
            except NoNode:
                raise errors.NotServingError("the METADATA tablet is not assigned yet") from None
            self._root = msgpack.unpackb(data, raw=False)["address"]
        return self._root

    def locate(self, table: str, row: bytes, fresh: bool = False) -> Location:
        if not fresh:
            with self._lock:
                locs = self._cache.get(table, [])
                i = bisect.bisect_right([loc.info.start for loc in locs], row) - 1
                if i >= 0 and locs[i].info.contains(row):
                    return locs[i]
        found = self._meta_scan(table, meta.lookup_key(table, row), fresh)
        if found is None or not found.info.contains(row):
            if not self._table_exists(table):
                raise errors.TableNotFoundError(f"table {table!r} does not exist")
            raise errors.NotServingError(f"no tablet of {table} holds {row!r} yet")
        self._remember(found)
        return found

    def locate_before(self, table: str, start: bytes) -> Location | None:
        """The tablet whose end is START (the one before it), or None."""
        found = self._meta_scan(table, meta.row_key(table, start), False)
        if found is None or found.info.end != start:
            return None
        self._remember(found)
        return found

    def _table_exists(self, table: str) -> bool:
        return self.coord.exists(f"{meta.SCHEMAS}/{table}") is not None

    def _enabled(self, table: str) -> bool:
        try:
            data, _ = self.coord.get(f"{meta.SCHEMAS}/{table}")
        except NoNode:
            raise errors.TableNotFoundError(f"table {table!r} does not exist") from None
        return Schema.from_dict(msgpack.unpackb(data, raw=False)).enabled

    def _meta_scan(self, table: str, key: bytes, fresh: bool) -> Location | None:
        lo, hi = meta.table_range(table)
        for attempt in range(2):
            address = self._root_address(fresh or attempt > 0)
            try:
                r = self.pool.call(address, "scan", tablet=meta.META_TABLET, start=key, stop=hi,
                                   limit=1)
                break
            except RETRYABLE:
                if attempt:
                    raise
        if not r["rows"]:
            return None
        fields = meta.parse(r["rows"][0][1])
        if not fields.get("address"):
            if not self._enabled(table):
                raise errors.TableDisabledError(f"table {table} is disabled")
            raise errors.NotServingError(f"tablet {fields['tablet'].tablet_id} of {table} "
                                         "is being assigned")
        return Location(fields["tablet"], fields.get("server", ""), fields["address"])

    def _remember(self, loc: Location) -> None:
        with self._lock:
            locs = [x for x in self._cache.get(loc.info.table, [])
                    if x.info.end and x.info.end <= loc.info.start
                    or loc.info.end and x.info.start >= loc.info.end]
            locs.append(loc)
            locs.sort(key=lambda x: x.info.start)
            self._cache[loc.info.table] = locs

    def regions(self, table: str, start: bytes = b"", stop: bytes = b"") -> list[dict]:
        """The tablets of TABLE overlapping [START, STOP), read from METADATA
        (not the master): {"tablet", "server", "address", "chunkserver"} each,
        in row order. Jobs cut their splits by these."""
        if not self._table_exists(table):
            raise errors.TableNotFoundError(f"table {table!r} does not exist")
        lo, hi = meta.table_range(table)
        key = meta.lookup_key(table, start) if start else lo
        servers = self._server_nodes()
        out: list[dict] = []
        while True:
            r = self._root_call("scan", tablet=meta.META_TABLET, start=key, stop=hi,
                                limit=1000, after=bool(out))
            for row, cells in r["rows"]:
                fields = meta.parse(cells)
                info = fields["tablet"]
                if stop and info.start and info.start >= stop:
                    return out
                server = fields.get("server", "")
                out.append({"tablet": info, "server": server,
                            "address": fields.get("address", ""),
                            "chunkserver": servers.get(server, {}).get("chunkserver", "")})
                key = bytes(row)
            if not r["more"]:
                return out

    def _server_nodes(self) -> dict[str, dict]:
        out = {}
        for name in self.coord.children(meta.SERVERS):
            try:
                out[name] = meta.parse_server_node(self.coord.get(f"{meta.SERVERS}/{name}")[0])
            except NoNode:
                pass
        return out

    def _root_call(self, name: str, **args):
        for attempt in range(2):
            try:
                return self.pool.call(self._root_address(attempt > 0), name, **args)
            except RETRYABLE:
                if attempt:
                    raise

    def forget(self, table: str) -> None:
        with self._lock:
            self._cache.pop(table, None)

    def call_row(self, table: str, row: bytes, name: str, idempotent: bool = True, **args):
        """NAME on the server of ROW's tablet, looking again while the tablet
        moves, splits or recovers."""
        deadline = time.monotonic() + self.retry_seconds
        fresh = False
        while True:
            try:
                loc = self.locate(table, row, fresh)
                return self.pool.call(loc.address, name, tablet=loc.info.tablet_id, row=row,
                                      user=self.user, **args)
            except RETRYABLE as exc:
                if isinstance(exc, errors.ClusterUnavailable) and not idempotent:
                    raise
                self.forget(table)
                fresh = True
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _columns(columns) -> dict | None:
    if not columns:
        return None
    out: dict[str, list[bytes]] = {}
    for c in columns:
        fam, qual = split_column(c)
        quals = out.setdefault(fam, [])
        if qual:
            quals.append(qual)
        elif b":" not in _b(c):
            out[fam] = []                 # the whole family
    return out


def _result(cells, with_ts: bool) -> dict:
    out = {}
    for f, q, ts, v in cells:
        key = f.encode() + b":" + bytes(q)
        if key not in out:
            out[key] = (bytes(v), ts) if with_ts else bytes(v)
    return out


class Table:
    def __init__(self, client: TableClient, name: str):
        self.client, self.name = client, name

    def __repr__(self) -> str:
        return f"<Table {self.name}>"

    # -- writes ------------------------------------------------------------------------

    def _put_edits(self, data: dict, timestamp: int | None) -> list:
        ts = now_ms() if timestamp is None else int(timestamp)
        out = []
        for col, value in data.items():
            fam, qual = split_column(col)
            out.append([fam, qual, ts, int(Kind.PUT), _b(value)])
        return out

    def _delete_edits(self, columns, timestamp: int | None, exact: bool = False) -> list:
        ts = now_ms() if timestamp is None else int(timestamp)
        if not columns:
            # "*": every family; the tablet server knows them (the master stays
            # off the data path)
            return [["*", b"", ts, int(Kind.DELETE_FAMILY), b""]]
        out = []
        for col in columns:
            fam, qual = split_column(col)
            if b":" not in _b(col):
                out.append([fam, b"", ts, int(Kind.DELETE_FAMILY), b""])
            else:
                out.append([fam, qual, ts, int(Kind.DELETE if exact else Kind.DELETE_COLUMN),
                            b""])
        return out

    def put(self, row, data: dict, timestamp: int | None = None) -> None:
        self.mutate_row(row, puts=data, timestamp=timestamp)

    def delete(self, row, columns=None, timestamp: int | None = None) -> None:
        """The whole row, families (b"cf"), or columns' versions at or before TIMESTAMP."""
        self.mutate_row(row, deletes=columns or [], timestamp=timestamp, delete_row=not columns)

    def delete_cell(self, row, column, timestamp: int) -> None:
        """Exactly one version of one column."""
        edits = self._delete_edits([column], timestamp, exact=True)
        self.client.call_row(self.name, check_row(row), "mutate", edits=edits)

    def mutate_row(self, row, puts: dict | None = None, deletes=None,
                   timestamp: int | None = None, delete_row: bool = False) -> None:
        """Puts and deletes on one row, all applied or none."""
        row = check_row(row)
        edits = []
        if deletes or delete_row:
            edits += self._delete_edits(deletes, timestamp)
        if puts:
            edits += self._put_edits(puts, timestamp)
        if not edits:
            return
        self.client.call_row(self.name, row, "mutate", edits=edits)

    def put_rows(self, rows, timestamp: int | None = None, batch: int = 1000) -> int:
        """Puts of many rows, ROWS an iterable of (row, {column: value}), sent a
        tablet's worth of up to BATCH rows at a time (HBase's multi). Each row
        is atomic on its own, the whole is not. One timestamp for all (now, if
        not given), so a batch sent again after a lost reply changes nothing."""
        ts = now_ms() if timestamp is None else int(timestamp)
        pending: list[tuple[bytes, list]] = []
        n = 0
        for row, data in rows:
            pending.append((check_row(row), self._put_edits(data, ts)))
            if len(pending) >= batch:
                n += self._send_rows(pending)
                pending = []
        if pending:
            n += self._send_rows(pending)
        return n

    def _send_rows(self, rows: list[tuple[bytes, list]]) -> int:
        client = self.client
        deadline = time.monotonic() + client.retry_seconds
        left = rows
        while left:
            by_tablet: dict[str, tuple[Location, list]] = {}
            try:
                for row, edits in left:
                    # the cache, emptied after a refusal, refills once per tablet
                    loc = client.locate(self.name, row)
                    by_tablet.setdefault(loc.info.tablet_id, (loc, []))[1].append([row, edits])
            except RETRYABLE:
                if time.monotonic() > deadline:
                    raise
                client.forget(self.name)
                time.sleep(0.1)
                continue
            failed = []
            for tablet, (loc, part) in by_tablet.items():
                try:
                    client.pool.call(loc.address, "mutate_rows", tablet=tablet, rows=part,
                                     user=client.user)
                except RETRYABLE:
                    failed += [(bytes(r), e) for r, e in part]
            if failed:
                if time.monotonic() > deadline:
                    raise errors.NotServingError(f"{len(failed)} rows of {self.name} found no "
                                                 "serving tablet in time")
                client.forget(self.name)
                time.sleep(0.1)
            left = failed
        return len(rows)

    def check_and_mutate(self, row, column, value, puts: dict | None = None,
                         deletes=None) -> bool:
        """Apply the mutation only if COLUMN's newest value is VALUE (None: absent)."""
        row = check_row(row)
        fam, qual = split_column(column)
        edits = (self._delete_edits(deletes, None) if deletes else []) + \
            (self._put_edits(puts, None) if puts else [])
        return self.client.call_row(self.name, row, "mutate", idempotent=False, edits=edits,
                                    check=[fam, qual, None if value is None else _b(value)])

    def increment(self, row, column, amount: int = 1) -> int:
        fam, qual = split_column(column)
        return self.client.call_row(self.name, check_row(row), "increment", idempotent=False,
                                    amounts=[[fam, qual, int(amount)]])[0]

    def append(self, row, column, value) -> bytes:
        fam, qual = split_column(column)
        return self.client.call_row(self.name, check_row(row), "append", idempotent=False,
                                    parts=[[fam, qual, _b(value)]])[0]

    def counter(self, row, column) -> int:
        v = self.row(row, [column]).get(_b(column))
        return int.from_bytes(v, "big", signed=True) if v else 0

    # -- reads ---------------------------------------------------------------------------

    def _read_args(self, columns, min_ts, max_ts, versions, filter) -> dict:  # noqa: A002
        if filter:
            filters.parse(filter)      # a bad filter string is named here, before any call
        return {"columns": _columns(columns), "min_ts": min_ts, "max_ts": max_ts,
                "versions": versions, "filter": filter}

    def cells(self, row, columns=None, min_ts: int = 0, max_ts: int = LATEST,
              versions: int = 1, filter: str | None = None) -> list[tuple]:  # noqa: A002
        """ROW's cells as (b"family:qualifier", value, timestamp), newest first."""
        got = self.client.call_row(self.name, check_row(row), "get",
                                   **self._read_args(columns, min_ts, max_ts, versions, filter))
        return [(f.encode() + b":" + bytes(q), bytes(v), ts) for f, q, ts, v in got]

    def row(self, row, columns=None, timestamp: int | None = None,
            include_timestamp: bool = False, filter: str | None = None) -> dict:  # noqa: A002
        """The newest value of each column ({b"cf:q": value}); TIMESTAMP: as of
        before that time (happybase's meaning)."""
        got = self.client.call_row(self.name, check_row(row), "get", **self._read_args(
            columns, 0, LATEST if timestamp is None else int(timestamp), 1, filter))
        return _result(got, include_timestamp)

    get = row

    def rows(self, rows, columns=None) -> list[tuple[bytes, dict]]:
        out = []
        for r in rows:
            d = self.row(r, columns)
            if d:
                out.append((check_row(r), d))
        return out

    def scan(self, start=None, stop=None, prefix=None, columns=None, filter=None,  # noqa: A002
             limit: int | None = None, batch_size: int = 1000, reverse: bool = False,
             min_ts: int = 0, max_ts: int = LATEST, versions: int = 1,
             include_timestamp: bool = False) -> Iterator[tuple[bytes, dict]]:
        for row, cells in self.scan_cells(start, stop, prefix, columns, filter, limit,
                                          batch_size, reverse, min_ts, max_ts, versions):
            yield row, _result(cells, include_timestamp)

    def scan_cells(self, start=None, stop=None, prefix=None, columns=None,
                   filter=None, limit=None, batch_size=1000, reverse=False,  # noqa: A002
                   min_ts=0, max_ts=LATEST, versions=1) -> Iterator[tuple[bytes, list]]:
        start, stop = _b(start or b""), _b(stop or b"")
        if prefix:
            prefix = _b(prefix)
            start, stop = prefix, _prefix_end(prefix)
            if reverse:
                start, stop = _prefix_end(prefix) or b"", prefix
        args = self._read_args(columns, min_ts, max_ts, versions, filter)
        if not 1 <= batch_size <= 100_000:
            raise ValueError("batch_size: 1 to 100000 rows")
        sent = 0
        deadline = time.monotonic() + self.client.retry_seconds
        cursor, after = start, False
        if reverse and prefix:
            after = True                 # the bound past the prefix is not one of its rows
        while True:
            try:
                loc = self._scan_location(cursor, reverse)
                if loc is None:
                    return
                want = batch_size if limit is None else min(batch_size, limit - sent)
                r = self.client.pool.call(
                    loc.address, "scan", tablet=loc.info.tablet_id, start=cursor, stop=stop,
                    limit=want, reverse=reverse, after=after, user=self.client.user, **args)
            except RETRYABLE:
                self.client.forget(self.name)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            for row, cells in r["rows"]:
                yield bytes(row), cells
                sent += 1
                if limit is not None and sent >= limit:
                    return
            if r["stopped"]:
                return
            if r["more"]:
                cursor, after = bytes(r["rows"][-1][0]), True
                continue
            # this tablet is done: on to the next one in the scan's direction
            if reverse:
                if not loc.info.start or (stop and loc.info.start <= stop):
                    return
                prev = self.client.locate_before(self.name, loc.info.start)
                if prev is None:
                    return
                cursor, after = loc.info.start, True
                self._reverse_from = prev
            else:
                if not loc.info.end or (stop and loc.info.end >= stop):
                    return
                cursor, after = loc.info.end, False

    def _scan_location(self, cursor: bytes, reverse: bool) -> Location | None:
        if reverse:
            prev = getattr(self, "_reverse_from", None)
            if prev is not None:
                self._reverse_from = None
                return prev
            if not cursor:
                return self.client.locate(self.name, b"\xff" * 64)
        return self.client.locate(self.name, cursor or b"\x00")


def _prefix_end(prefix: bytes) -> bytes:
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return b""
    p[-1] += 1
    return bytes(p)
