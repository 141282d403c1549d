"""The distributed physical plan: scans, fragments (a piece of SQL that
DuckDB runs per partition over its inputs), exchanges (hash or gather) and
broadcasts. Each node knows its Arrow schema (found by running the fragment
over empty inputs when it is planned, so types are DuckDB's own), its
partition count and estimated rows and bytes. Stages are cut at exchanges
and broadcasts; `explain` prints them."""

from __future__ import annotations

import itertools
from contextvars import ContextVar
from dataclasses import dataclass, field

import pyarrow as pa

from stackyard.sql.errors import AnalysisError
from stackyard.sql.fragments import run_sql
from stackyard.sql.tables import ScanPlan

_ids = itertools.count()
# the uncorrelated subqueries of the query being planned: name -> plan; a
# fragment whose SQL names one reads it as a broadcast table
SUBQUERIES: ContextVar[dict | None] = ContextVar("subqueries", default=None)


@dataclass(eq=False)
class PNode:
    schema: pa.Schema
    partitions: int
    rows: float
    bytes: float
    label: str
    id: int = field(default_factory=lambda: next(_ids))
    hash_keys: tuple[str, ...] | None = None      # partitioned by these columns' hash
    ndv: dict[str, float] | None = None           # column -> distinct values (bound)

    @property
    def names(self) -> list[str]:
        return self.schema.names

    def children(self) -> list[PNode]:
        return []


@dataclass(eq=False)
class Scan(PNode):
    table: str = ""
    scan: ScanPlan | None = None

    @classmethod
    def of(cls, table: str, scan: ScanPlan) -> Scan:
        schema = pa.schema([_field(scan.spec, c) for c in scan.spec.columns])
        return cls(schema, max(1, len(scan.splits)), scan.rows, scan.bytes,
                   f"Scan {scan.spec.fmt} {table}", table=table, scan=scan)


def _field(spec, name: str) -> pa.Field:
    if name in spec.file_schema.names:
        return spec.file_schema.field(name)
    return spec.partition_schema.field(name)


@dataclass(eq=False)
class Fragment(PNode):
    inputs: list[PNode] = field(default_factory=list)
    names_in: list[str] = field(default_factory=list)
    broadcasts: list[tuple[str, PNode]] = field(default_factory=list)
    sql: str = ""
    udfs: list = field(default_factory=list)

    def children(self) -> list[PNode]:
        return self.inputs + [b for _, b in self.broadcasts]


@dataclass(eq=False)
class Exchange(PNode):
    child: PNode | None = None
    keys: tuple[str, ...] = ()

    def children(self) -> list[PNode]:
        return [self.child]


@dataclass(eq=False)
class Cached(PNode):
    """Partitions the engine keeps in its workers' block stores (a front end's
    persisted plan): the lineage node that computes them, once, then serves
    them from the cache."""
    node: object = None


@dataclass(eq=False)
class Union(PNode):
    inputs: list[PNode] = field(default_factory=list)

    def children(self) -> list[PNode]:
        return self.inputs


def fragment(label: str, sql: str, inputs: list[tuple[str, PNode]],
             broadcasts: list[tuple[str, PNode]] = (), rows: float | None = None,
             hash_keys: tuple[str, ...] | None = None) -> Fragment:
    """A fragment over INPUTS (partitioned alike), its schema found by DuckDB."""
    broadcasts = list(broadcasts)
    for name, node in (SUBQUERIES.get() or {}).items():
        if f'"{name}"' in sql and all(b != name for b, _ in broadcasts):
            broadcasts.append((name, node))
    from stackyard.sql.udf import used_by
    udfs = used_by(sql)
    empty = {name: n.schema.empty_table() for name, n in list(inputs) + list(broadcasts)}
    try:
        schema = run_sql(sql, empty, udfs=udfs).schema
    except Exception as e:
        raise AnalysisError(_duckdb_message(e)) from None
    first = inputs[0][1]
    rows = first.rows if rows is None else rows
    width = sum(_width(f.type) for f in schema)
    return Fragment(schema, first.partitions, rows, rows * width, label,
                    hash_keys=hash_keys,
                    inputs=[n for _, n in inputs], names_in=[name for name, _ in inputs],
                    broadcasts=list(broadcasts), sql=sql, udfs=udfs)


def exchange(child: PNode, keys: tuple[str, ...], partitions: int) -> PNode:
    if partitions == child.partitions and (
            (keys and child.hash_keys == tuple(keys)) or (partitions == 1 and not keys)):
        return child
    label = f"Exchange hashpartitioning({', '.join(keys)}, {partitions})" if keys \
        else "Exchange SinglePartition"
    return Exchange(child.schema, partitions, child.rows, child.bytes, label,
                    hash_keys=tuple(keys) if keys else None, child=child, keys=tuple(keys))


def _width(t: pa.DataType) -> int:
    try:
        return max(1, t.bit_width // 8)
    except ValueError:
        return 24


def _duckdb_message(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    for prefix in ("Binder Error: ", "Conversion Error: ", "Catalog Error: ",
                   "Parser Error: ", "Invalid Input Error: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def explain(root: PNode, extended: bool = False) -> str:
    """The plan as a tree, stages numbered from the leaves as they run."""
    lines: list[str] = []
    stage_of: dict[int, int] = {}
    counter = itertools.count()

    def stage(n: PNode) -> int:
        if n.id not in stage_of:
            for c in n.children():
                stage(c)
            stage_of[n.id] = next(counter) if isinstance(n, Exchange) or n is root \
                else (stage_of[n.children()[0].id] if n.children() else next(counter))
        return stage_of[n.id]

    stage(root)

    def show(n: PNode, depth: int) -> None:
        pad = "   " * depth
        head = f"{pad}+- {n.label}" if depth else n.label
        est = f"  [partitions={n.partitions}, rows~{int(n.rows):,}, bytes~{_size(n.bytes)}]"
        lines.append(head + est)
        if isinstance(n, Scan) and n.scan is not None:
            s = n.scan
            info = [f"columns: {', '.join(s.spec.columns)}", f"files: {s.files}",
                    f"splits: {len(s.splits)}"]
            if s.partitions != (0, 0):
                info.append(f"partitions: {s.partitions[0]} of {s.partitions[1]} "
                            "(pruned from the metastore)")
            if s.row_groups != (0, 0):
                info.append(f"row groups: {s.row_groups[0]} of {s.row_groups[1]}")
            info += s.notes
            for i in info:
                lines.append(f"{pad}   : {i}")
        if isinstance(n, Fragment) and extended:
            lines.append(f"{pad}   : duckdb: {n.sql}")
        for name, b in getattr(n, "broadcasts", []):
            lines.append(f"{pad}   +- BroadcastExchange {name}")
            show(b, depth + 2)
        for c in n.inputs if isinstance(n, Fragment | Union) else (
                [n.child] if isinstance(n, Exchange) else []):
            show(c, depth + 1)

    show(root, 0)
    return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"
