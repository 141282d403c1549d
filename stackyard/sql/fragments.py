"""What a SQL task runs: engine lineage nodes whose partitions are Arrow
tables. A scan reads its split; a fragment hands its inputs' partitions to
DuckDB as Arrow and runs its piece of the plan as one query (the task's
memory limit and scratch directory given to DuckDB, so it spills there);
an exchange cuts a table into hash partitions as compressed Arrow IPC for
the engine's shuffle, and the reading side turns them back into tables."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pyarrow as pa

from stackyard.dataset.lineage import Node
from stackyard.sql.readers import FileSplit, ScanSpec, read_split

IPC_CODEC = "lz4"


_local = threading.local()


def _shared_connection():
    """A thread's DuckDB connection for small work (plans' schemas, hash
    splits): opening one costs more than the query."""
    import duckdb
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(config={"threads": 1})
    return con


def run_sql(sql: str, inputs: dict[str, pa.Table], memory: int | None = None,
            scratch: str | None = None, udfs: list | None = None) -> pa.Table:
    import duckdb
    if memory is None and scratch is None and not udfs:
        con = _shared_connection()
        try:
            for name, table in inputs.items():
                con.register(name, table)
            return con.sql(sql).to_arrow_table()
        finally:
            for name in inputs:
                try:
                    con.unregister(name)
                except duckdb.Error:
                    pass
    config = {"threads": 1}
    if memory:
        config["memory_limit"] = f"{max(64, memory >> 20)}MB"
    if scratch:
        os.makedirs(scratch, exist_ok=True)
        config["temp_directory"] = scratch
    con = duckdb.connect(config=config)
    try:
        for udf in udfs or []:
            udf.register(con)
        for name, table in inputs.items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = [t for t in tables if t.num_rows] or [schema.empty_table()]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema,
                           options=pa.ipc.IpcWriteOptions(compression=IPC_CODEC)) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


class ScanNode(Node):
    """A table's splits, one partition each, read where their data lives."""
    kind = "FileScanRDD"

    def __init__(self, splits: list[FileSplit], spec: ScanSpec, op: str, site: str):
        super().__init__(len(splits), [], op, site)
        self.splits, self.spec = splits, spec

    def compute(self, split: int, rt) -> Iterator:
        if self.spec.fmt == "hbase":
            from stackyard.sql import tablestore
            yield tablestore.read(rt.ctx, self.splits[split], self.spec)
            return
        yield read_split(rt.fs, self.splits[split], self.spec, rt.counters)

    def locations(self, split: int) -> list[str]:
        return list(self.splits[split].hosts)


class FragmentNode(Node):
    """SQL over partition i of each parent (all partitioned alike) and over
    the broadcast tables, registered under NAMES / their own names."""
    kind = "SQLFragmentRDD"

    def __init__(self, parents: list[Node], names: list[str], schemas: list[pa.Schema],
                 sql: str, broadcasts: list[tuple[str, object]], op: str, site: str,
                 udfs: list | None = None):
        super().__init__(parents[0].num_partitions, list(parents), op, site)
        self.names, self.schemas, self.sql, self.broadcasts = names, schemas, sql, broadcasts
        self.udfs = udfs or []

    def compute(self, split: int, rt) -> Iterator:
        inputs = {name: concat(list(rt.iterator(p, split)), schema)
                  for p, name, schema in zip(self.deps, self.names, self.schemas, strict=True)}
        for name, b in self.broadcasts:
            inputs[name] = from_ipc(b.value)
        rows_in = sum(t.num_rows for t in inputs.values())
        out = run_sql(self.sql, inputs, rt.program.memory, str(rt.ctx.dir / "duckdb"),
                      self.udfs)
        rt.counters["sql_rows_in"] = rt.counters.get("sql_rows_in", 0) + rows_in
        rt.counters["sql_rows_out"] = rt.counters.get("sql_rows_out", 0) + out.num_rows
        yield out

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [(p, split) for p in self.deps]


def hash_split(keys: list[str], n: int):
    """The map side of a hash exchange: (partition, IPC bytes) per non-empty
    piece of each table. Keys hash alike on both sides of a join whatever
    their integer width: integers as BIGINT, other numbers as DOUBLE, the
    rest as text."""
    def split(_index, tables):
        import pyarrow.compute as pc
        for table in tables:
            if not table.num_rows:
                continue
            if n == 1 or not keys:
                yield 0, to_ipc(table)
                continue
            exprs = ", ".join(_hash_operand(table.schema.field(k)) for k in keys)
            pid = run_sql(f"SELECT hash({exprs}) % {n} AS p FROM __t", {"__t": table}).column(0)
            order = pc.sort_indices(pid)
            ordered = table.take(order)
            counts = pc.value_counts(pid)
            sizes = {int(v["values"].as_py()): v["counts"].as_py() for v in counts}
            at = 0
            for p in sorted(sizes):
                yield p, to_ipc(ordered.slice(at, sizes[p]))
                at += sizes[p]
    return split


def _hash_operand(field: pa.Field) -> str:
    name = '"' + field.name.replace('"', '""') + '"'
    t = field.type
    if pa.types.is_integer(t):
        return f"CAST({name} AS BIGINT)"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return f"CAST({name} AS DOUBLE)"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return name
    return f"CAST({name} AS VARCHAR)"


def decode(_index, records):
    for _, data in records:
        yield from_ipc(data)


def partition_id(k):
    return k


def encode_all(_index, tables):
    for t in tables:
        yield to_ipc(t)
