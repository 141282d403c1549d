"""The table store as a source and a sink of jobs (HBase's TableInputFormat
and TableOutputFormat): a split per tablet, run beside the chunkserver next
to the tablet's server, reading its rows with a scan; output as batched
puts, one timestamp for the whole job so that a task's second attempt (a
retry, a speculative copy) writes the very cells the first one did.

Used by MapReduce (TableInput, TableOutput), the dataset API
(`sc.table`, `rdd.saveToTable`) and SQL (`STORED BY` the table store).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stackyard.table.model import LATEST, now_ms

_clients: dict[tuple, object] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class TableSplit:
    """One tablet's rows within the job's range: [start, stop), b"" unbounded."""
    table: str
    start: bytes
    stop: bytes
    coords: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    tablet: str = ""

    # what file splits have, for the engine's counters and pages
    path = property(lambda self: f"table:{self.table}")
    offset = 0
    length = 0


def coords_of(tables) -> tuple[str, ...]:
    """The coordination cell TABLES (a TableClient) talks to: what a task needs
    to find tablets itself."""
    return tuple(tables.coord.addresses)


def table_splits(tables, table: str, start: bytes = b"", stop: bytes = b"") -> list[TableSplit]:
    """A split per tablet of TABLE overlapping [START, STOP), clipped to it."""
    coords = coords_of(tables)
    out = []
    for r in tables.regions(table, start, stop):
        info = r["tablet"]
        lo = max(info.start, start)
        hi = info.end if not stop else (min(info.end, stop) if info.end else stop)
        out.append(TableSplit(table, lo, hi, coords,
                              (r["chunkserver"],) if r["chunkserver"] else (), info.tablet_id))
    return out


def task_tables(ctx, coords: tuple[str, ...]):
    """A table client for the task process, acting as the job's user; one per
    process and cell, reused by the tasks that process runs."""
    from stackyard.table.client import TableClient
    key = (coords, ctx.user, ctx.secret.ca_file)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = TableClient(list(coords), ctx.secret, ctx.user)
    return client


def read_split(ctx, split: TableSplit, columns=None, filter: str | None = None,  # noqa: A002
               versions: int = 1, min_ts: int = 0, max_ts: int = LATEST,
               batch: int = 1000) -> Iterator[tuple[bytes, dict]]:
    """(row, {b"family:qualifier": value}) for the rows of SPLIT, in order."""
    table = task_tables(ctx, split.coords).table(split.table)
    n = 0
    for row, cells in table.scan(split.start or None, split.stop or None, columns=columns,
                                 filter=filter, batch_size=batch, versions=versions,
                                 min_ts=min_ts, max_ts=max_ts):
        n += 1
        yield row, cells
    ctx.counters["table_rows_read"] = ctx.counters.get("table_rows_read", 0) + n


def cell_bytes(value) -> bytes:
    """A value as the table keeps it: bytes as they are, text as UTF-8, other
    values in their text form (as Hive's HBase handler writes them)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


def write_rows(ctx, coords: tuple[str, ...], table: str, records: Iterable, timestamp: int,
               batch: int = 1000) -> int:
    """Put RECORDS ((row, {column: value}); a None value is left out) into
    TABLE, a batch per tablet at a time; returns the rows written."""
    t = task_tables(ctx, coords).table(table)

    def rows():
        for row, data in records:
            cells = {c: cell_bytes(v) for c, v in data.items() if v is not None}
            if cells:
                yield row, cells

    n = t.put_rows(rows(), timestamp=timestamp, batch=batch)
    ctx.counters["output_records"] = ctx.counters.get("output_records", 0) + n
    return n


def job_timestamp() -> int:
    return now_ms()


def check_table(tables, table: str, families: Iterable[str] = ()) -> None:
    """Raise TableNotFoundError / ValueError before a job writes to TABLE."""
    schema = tables.describe(table)
    missing = sorted(set(families) - set(schema.families))
    if missing:
        raise ValueError(f"table {table} has no column family {', '.join(missing)}")
