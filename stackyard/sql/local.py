"""Plans over rows the driver already holds, run in the driver: when every
leaf of a plan is such rows (VALUES, a front end's local data) and they are
few, a job on the engine would cost more than the work. Spark folds such
plans on its driver too (ConvertToLocalRelation). Every fragment runs once
over all the rows: one partition is a valid partitioning for every
exchange, so the answer is the one the engine would give."""

from __future__ import annotations

import pyarrow as pa

from stackyard.sql import physical
from stackyard.sql.fragments import concat, run_sql

MAX_ROWS = 1_000_000
MAX_BYTES = 128 << 20


def eligible(root: physical.PNode) -> bool:
    rows = nbytes = 0
    seen, stack = set(), [root]
    while stack:
        p = stack.pop()
        if p.id in seen:
            continue
        seen.add(p.id)
        if isinstance(p, physical.Scan):
            return False
        table = getattr(p, "table", None)
        if isinstance(table, pa.Table):
            rows += table.num_rows
            nbytes += table.nbytes
        elif not isinstance(p, physical.Fragment | physical.Exchange | physical.Union):
            return False
        stack += p.children()
    return rows <= MAX_ROWS and nbytes <= MAX_BYTES


def run(root: physical.PNode) -> pa.Table:
    memo: dict[int, pa.Table] = {}

    def go(p: physical.PNode) -> pa.Table:
        if p.id in memo:
            return memo[p.id]
        table = getattr(p, "table", None)
        if isinstance(table, pa.Table):
            out = table
        elif isinstance(p, physical.Fragment):
            inputs = {name: go(i) for name, i in zip(p.names_in, p.inputs, strict=True)}
            inputs.update({name: go(b) for name, b in p.broadcasts})
            out = run_sql(p.sql, inputs, udfs=p.udfs or None)
        elif isinstance(p, physical.Exchange):
            out = go(p.child)
        elif isinstance(p, physical.Union):
            out = concat([go(i) for i in p.inputs], p.schema)
        else:
            raise TypeError(f"{type(p).__name__} cannot run in the driver")
        memo[p.id] = out
        return out
    return go(root)
