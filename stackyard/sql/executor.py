"""A physical plan run on the engine: each plan node becomes a lineage node
of the dataset layer, so the engine's scheduler cuts the stages at the
exchanges, places scans beside their data, retries lost tasks and re-runs
lost map output as for any job. Broadcast sides are collected first and
ride the engine's broadcast variables."""

from __future__ import annotations

import pyarrow as pa

from stackyard.dataset.lineage import ParallelNode
from stackyard.sql import physical
from stackyard.sql.fragments import (
    FragmentNode,
    ScanNode,
    concat,
    decode,
    encode_all,
    from_ipc,
    hash_split,
    partition_id,
    to_ipc,
)


class Executor:
    def __init__(self, ctx):
        self.ctx = ctx
        self.memo: dict[int, object] = {}
        self.broadcasts: list = []

    def node(self, p: physical.PNode):
        if p.id in self.memo:
            return self.memo[p.id]
        ctx = self.ctx
        if isinstance(p, physical.Scan):
            out = ctx._rdd(ScanNode(p.scan.splits, p.scan.spec, p.label, "sql"))._node
        elif hasattr(p, "table") and isinstance(p.table, pa.Table):
            out = ctx._rdd(ParallelNode([[p.table]], p.label, "sql"))._node
        elif isinstance(p, physical.Fragment):
            parents = [self.node(i) for i in p.inputs]
            bcasts = [(name, self.broadcast(b)) for name, b in p.broadcasts]
            out = ctx._rdd(FragmentNode(parents, p.names_in, [i.schema for i in p.inputs],
                                        p.sql, bcasts, p.label, "sql", p.udfs))._node
        elif isinstance(p, physical.Exchange):
            child = ctx._rdd(self.node(p.child))
            n = p.partitions
            out = (child.mapPartitionsWithIndex(hash_split(list(p.keys), n))
                   .partitionBy(n, partition_id)
                   .mapPartitionsWithIndex(decode))._node
        elif isinstance(p, physical.Cached):
            out = p.node
        elif isinstance(p, physical.Union):
            out = ctx.union([ctx._rdd(self.node(i)) for i in p.inputs])._node
        else:
            raise TypeError(f"no engine node for {type(p).__name__}")
        self.memo[p.id] = out
        return out

    def broadcast(self, p: physical.PNode):
        table = self.collect(p)
        b = self.ctx.broadcast(to_ipc(table))
        self.broadcasts.append(b)
        return b

    def collect(self, p: physical.PNode) -> pa.Table:
        rdd = self.ctx._rdd(self.node(p)).mapPartitionsWithIndex(encode_all)
        return concat([from_ipc(b) for b in rdd.collect()], p.schema)

    def close(self) -> None:
        for b in self.broadcasts:
            try:
                b.destroy()
            except Exception:
                pass
        self.broadcasts.clear()
