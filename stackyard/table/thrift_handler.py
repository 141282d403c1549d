"""HBase's Thrift 1 calls on the table store's client: what the `thrift`
gateway answers happybase with. Timestamps mean what HBase's Thrift server
makes of them: a read's timestamp is an exclusive upper bound, a mutation's
is the time of its puts and the bound of its deletes."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import thriftpy2

from stackyard import errors
from stackyard.table.model import LATEST

HB = thriftpy2.load(str(Path(__file__).with_name("hbase.thrift")), module_name="yard_hbase_thrift")
SCANNER_IDLE = 60.0              # HBase's scanner lease
MAX_SCANNERS = 1000


def _name(b) -> str:
    return b.decode() if isinstance(b, bytes) else b


def _families(columns) -> list[bytes] | None:
    return [bytes(c) for c in columns] if columns else None


class _Scanner:
    def __init__(self, it):
        self.it, self.used = it, time.monotonic()
        self.lock = threading.Lock()


class Handler:
    """One per connection: it acts as the user the connection belongs to."""

    _ids = itertools.count(1)

    def __init__(self, client, scanners: dict):
        self.client = client
        self.scanners = scanners

    def _t(self, name):
        return self.client.table(_name(name))

    # -- errors as HBase's Thrift server reports them ---------------------------------

    def __getattribute__(self, attr):
        fn = object.__getattribute__(self, attr)
        if attr.startswith("_") or not callable(fn):
            return fn

        def guarded(*args, **kw):
            try:
                return fn(*args, **kw)
            except errors.TableExistsError as exc:
                raise HB.AlreadyExists(message=str(exc)) from None
            except (ValueError, KeyError) as exc:
                raise HB.IllegalArgument(message=str(exc)) from None
            except (errors.StackyardError, OSError, PermissionError) as exc:
                raise HB.IOError(message=f"{type(exc).__name__}: {exc}") from None
        return guarded

    # -- tables ---------------------------------------------------------------------------

    def getTableNames(self):  # noqa: N802
        return [n.encode() for n in self.client.tables()]

    def createTable(self, tableName, columnFamilies):  # noqa: N802, N803
        fams = {}
        for cd in columnFamilies:
            name = _name(cd.name).rstrip(":")
            opts = {"max_versions": cd.maxVersions if cd.maxVersions and cd.maxVersions > 0 else 3,
                    "compression": (cd.compression or "NONE").lower(),
                    "bloom": (cd.bloomFilterType or "NONE").upper() != "NONE",
                    "in_memory": bool(cd.inMemory)}
            if cd.timeToLive and cd.timeToLive > 0 and cd.timeToLive != 2147483647:
                opts["ttl"] = cd.timeToLive
            if opts["compression"] == "gz":
                raise ValueError(f"family {name}: GZ compression is not served; use ZSTD, LZ4, "
                                 "SNAPPY or NONE")
            fams[name] = opts
        self.client.create_table(_name(tableName), fams)

    def deleteTable(self, tableName):  # noqa: N802, N803
        self.client.delete_table(_name(tableName))

    def enableTable(self, tableName):  # noqa: N802, N803
        self.client.enable_table(_name(tableName))

    def disableTable(self, tableName):  # noqa: N802, N803
        self.client.disable_table(_name(tableName))

    def isTableEnabled(self, tableName):  # noqa: N802, N803
        return self.client.is_enabled(_name(tableName))

    def compact(self, tableNameOrRegionName):  # noqa: N803
        self.client.admin("compact", table=_name(tableNameOrRegionName), major=False)

    def majorCompact(self, tableNameOrRegionName):  # noqa: N802, N803
        self.client.admin("compact", table=_name(tableNameOrRegionName), major=True)

    def getColumnDescriptors(self, tableName):  # noqa: N802, N803
        schema = self.client.describe(_name(tableName))
        out = {}
        for f in schema.families.values():
            key = f.name.encode() + b":"
            out[key] = HB.ColumnDescriptor(
                name=key, maxVersions=f.max_versions, compression=f.compression.upper(),
                inMemory=f.in_memory, bloomFilterType="ROW" if f.bloom else "NONE",
                blockCacheEnabled=f.block_cache, timeToLive=f.ttl or 2147483647)
        return out

    def getTableRegions(self, tableName):  # noqa: N802, N803
        out = []
        for i, t in enumerate(self.client.tablets(_name(tableName))):
            info = t["tablet"]
            host, _, port = (t["address"] or ":0").rpartition(":")
            out.append(HB.TRegionInfo(
                startKey=info["start"], endKey=info["end"], id=i,
                name=f"{info['table']},{info['start'].decode('latin-1')},{info['tablet_id']}"
                .encode(), version=1, serverName=host.encode(), port=int(port or 0)))
        return out

    # -- reads ------------------------------------------------------------------------------

    def _rows(self, tableName, rows, columns, timestamp):  # noqa: N803
        t = self._t(tableName)
        out = []
        for row in rows:
            cells = t.cells(row, _families(columns), max_ts=timestamp)
            if cells:
                out.append(_row_result(bytes(row), cells))
        return out

    def getRow(self, tableName, row, attributes=None):  # noqa: N802, N803
        return self._rows(tableName, [row], None, LATEST)

    def getRowWithColumns(self, tableName, row, columns, attributes=None):  # noqa: N802, N803
        return self._rows(tableName, [row], columns, LATEST)

    def getRowTs(self, tableName, row, timestamp, attributes=None):  # noqa: N802, N803
        return self._rows(tableName, [row], None, timestamp)

    def getRowWithColumnsTs(self, tableName, row, columns, timestamp,  # noqa: N802, N803
                            attributes=None):
        return self._rows(tableName, [row], columns, timestamp)

    def getRows(self, tableName, rows, attributes=None):  # noqa: N802, N803
        return self._rows(tableName, rows, None, LATEST)

    def getRowsWithColumns(self, tableName, rows, columns, attributes=None):  # noqa: N802, N803
        return self._rows(tableName, rows, columns, LATEST)

    def getRowsTs(self, tableName, rows, timestamp, attributes=None):  # noqa: N802, N803
        return self._rows(tableName, rows, None, timestamp)

    def getRowsWithColumnsTs(self, tableName, rows, columns, timestamp,  # noqa: N802, N803
                             attributes=None):
        return self._rows(tableName, rows, columns, timestamp)

    def _versions(self, tableName, row, column, timestamp, n):  # noqa: N803
        if n is not None and n < 1:
            raise ValueError("numVersions: must be 1 or more")
        cells = self._t(tableName).cells(row, [bytes(column)], max_ts=timestamp,
                                         versions=n or 1)
        return [HB.TCell(value=v, timestamp=ts) for _c, v, ts in cells]

    def get(self, tableName, row, column, attributes=None):  # noqa: N803
        return self._versions(tableName, row, column, LATEST, 1)

    def getVer(self, tableName, row, column, numVersions, attributes=None):  # noqa: N802, N803
        return self._versions(tableName, row, column, LATEST, numVersions)

    def getVerTs(self, tableName, row, column, timestamp, numVersions,  # noqa: N802, N803
                 attributes=None):
        return self._versions(tableName, row, column, timestamp, numVersions)

    # -- writes -----------------------------------------------------------------------------

    def _mutate(self, tableName, row, mutations, timestamp):  # noqa: N803
        puts, deletes = {}, []
        for m in mutations:
            if m.isDelete:
                deletes.append(bytes(m.column))
            else:
                puts[bytes(m.column)] = m.value or b""
        self._t(tableName).mutate_row(row, puts=puts, deletes=deletes, timestamp=timestamp)

    def mutateRow(self, tableName, row, mutations, attributes=None):  # noqa: N802, N803
        self._mutate(tableName, row, mutations, None)

    def mutateRowTs(self, tableName, row, mutations, timestamp, attributes=None):  # noqa: N802, N803
        self._mutate(tableName, row, mutations, timestamp)

    def mutateRows(self, tableName, rowBatches, attributes=None):  # noqa: N802, N803
        for b in rowBatches:
            self._mutate(tableName, b.row, b.mutations, None)

    def mutateRowsTs(self, tableName, rowBatches, timestamp, attributes=None):  # noqa: N802, N803
        for b in rowBatches:
            self._mutate(tableName, b.row, b.mutations, timestamp)

    def atomicIncrement(self, tableName, row, column, value):  # noqa: N802, N803
        return self._t(tableName).increment(row, bytes(column), value)

    def increment(self, increment):
        self._t(increment.table).increment(increment.row, bytes(increment.column),
                                           increment.ammount)

    def incrementRows(self, increments):  # noqa: N802
        for inc in increments:
            self.increment(inc)

    def deleteAll(self, tableName, row, column, attributes=None):  # noqa: N802, N803
        self._t(tableName).delete(row, [bytes(column)])

    def deleteAllTs(self, tableName, row, column, timestamp, attributes=None):  # noqa: N802, N803
        self._t(tableName).delete(row, [bytes(column)], timestamp=timestamp)

    def deleteAllRow(self, tableName, row, attributes=None):  # noqa: N802, N803
        self._t(tableName).delete(row)

    def deleteAllRowTs(self, tableName, row, timestamp, attributes=None):  # noqa: N802, N803
        self._t(tableName).delete(row, timestamp=timestamp)

    # -- scanners -----------------------------------------------------------------------------

    def _open(self, tableName, **scan) -> int:  # noqa: N803
        now = time.monotonic()
        for sid, s in list(self.scanners.items()):
            if now - s.used > SCANNER_IDLE:
                self.scanners.pop(sid, None)
        if len(self.scanners) >= MAX_SCANNERS:
            raise ValueError(f"too many open scanners ({MAX_SCANNERS}); close some")
        sid = next(self._ids) & 0x7FFFFFFF
        self.scanners[sid] = _Scanner(self._t(tableName).scan_cells(**scan))
        return sid

    def scannerOpenWithScan(self, tableName, scan, attributes=None):  # noqa: N802, N803
        return self._open(tableName, start=scan.startRow, stop=scan.stopRow,
                          columns=_families(scan.columns), filter=scan.filterString,
                          batch_size=scan.caching or 1000, reverse=bool(scan.reversed),
                          max_ts=scan.timestamp if scan.timestamp is not None else LATEST)

    def scannerOpen(self, tableName, startRow, columns, attributes=None):  # noqa: N802, N803
        return self._open(tableName, start=startRow, columns=_families(columns))

    def scannerOpenWithStop(self, tableName, startRow, stopRow, columns,  # noqa: N802, N803
                            attributes=None):
        return self._open(tableName, start=startRow, stop=stopRow, columns=_families(columns))

    def scannerOpenWithPrefix(self, tableName, startAndPrefix, columns,  # noqa: N802, N803
                              attributes=None):
        return self._open(tableName, prefix=startAndPrefix, columns=_families(columns))

    def scannerOpenTs(self, tableName, startRow, columns, timestamp,  # noqa: N802, N803
                      attributes=None):
        return self._open(tableName, start=startRow, columns=_families(columns),
                          max_ts=timestamp)

    def scannerOpenWithStopTs(self, tableName, startRow, stopRow, columns,  # noqa: N802, N803
                              timestamp, attributes=None):
        return self._open(tableName, start=startRow, stop=stopRow, columns=_families(columns),
                          max_ts=timestamp)

    def scannerGetList(self, id, nbRows):  # noqa: A002, N802, N803
        s = self.scanners.get(id)
        if s is None:
            raise ValueError(f"scanner {id}: no such scanner (closed, or idle past "
                             f"{SCANNER_IDLE:.0f} s)")
        if nbRows < 1:
            raise ValueError("nbRows: must be 1 or more")
        out = []
        with s.lock:
            s.used = time.monotonic()
            for row, cells in s.it:
                out.append(_row_result(row, [(f.encode() + b":" + bytes(q), bytes(v), ts)
                                             for f, q, ts, v in cells]))
                if len(out) >= nbRows:
                    break
        return out

    def scannerGet(self, id):  # noqa: A002, N802
        return self.scannerGetList(id, 1)

    def scannerClose(self, id):  # noqa: A002, N802
        if self.scanners.pop(id, None) is None:
            raise ValueError(f"scanner {id}: no such scanner")


def _row_result(row: bytes, cells) -> HB.TRowResult:
    columns, ordered, seen = {}, [], set()
    for col, value, ts in cells:
        if col in seen:
            continue
        seen.add(col)
        cell = HB.TCell(value=value, timestamp=ts)
        columns[col] = cell
        ordered.append(HB.TColumn(columnName=col, cell=cell))
    return HB.TRowResult(row=row, columns=columns, sortedColumns=ordered)
