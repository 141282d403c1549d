"""What a statement returns: its rows as Arrow, with the ways users want
them (pandas, tuples, an aligned table, batches)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa


class Result:
    def __init__(self, table: pa.Table, plan: str = "", job_ids: list[str] | None = None):
        self._table = table
        self.plan = plan
        self.job_ids = job_ids or []

    @property
    def columns(self) -> list[str]:
        return self._table.column_names

    @property
    def schema(self) -> pa.Schema:
        return self._table.schema

    def __len__(self) -> int:
        return self._table.num_rows

    def arrow(self) -> pa.Table:
        return self._table

    def to_pandas(self):
        return self._table.to_pandas()

    def fetchall(self) -> list[tuple]:
        cols = [c.to_pylist() for c in self._table.columns]
        return list(zip(*cols, strict=True)) if cols else []

    def batches(self, size: int = 65536) -> Iterator[pa.RecordBatch]:
        yield from self._table.to_batches(max_chunksize=size)

    def __iter__(self) -> Iterator[tuple]:
        for b in self.batches():
            cols = [c.to_pylist() for c in b.columns]
            yield from zip(*cols, strict=True)

    def show(self, n: int = 20, truncate: int = 20, file=None) -> None:
        print(format_table(self._table.slice(0, n), truncate), file=file)
        if self._table.num_rows > n:
            print(f"only showing top {n} rows", file=file)

    def __repr__(self) -> str:
        return f"<stackyard.sql.Result {self._table.num_rows} rows: {', '.join(self.columns)}>"


def cell(v, truncate: int = 0) -> str:
    s = "NULL" if v is None else str(v)
    if truncate and len(s) > truncate:
        s = s[:max(0, truncate - 3)] + "..."
    return s


def format_table(table: pa.Table, truncate: int = 0) -> str:
    """Spark's show(): a boxed table with right-aligned cells."""
    names = table.column_names
    rows = [[cell(v, truncate) for v in row] for row in
            zip(*[c.to_pylist() for c in table.columns], strict=True)] if names else []
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    line = "+" + "+".join("-" * w for w in widths) + "+"
    out = [line, "|" + "|".join(n.rjust(w) for n, w in zip(names, widths, strict=True)) + "|",
           line]
    out += ["|" + "|".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + "|"
            for r in rows]
    out.append(line)
    return "\n".join(out)


def message(text: str) -> Result:
    return Result(pa.table({"result": pa.array([text], pa.string())}))


def empty() -> Result:
    return Result(pa.table({}))
