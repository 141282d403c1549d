"""What runs in the workers for a Connect session: the wrappers that call the
client's pickled Python functions (row at a time, over pandas or Arrow
batches, over whole partitions), and the making of its shipped Python files
importable there. Nothing here imports pyspark: a task process has no Spark
install, and pyspark-client refuses to import in a process without a main
module (it takes it for a doctest run)."""

from __future__ import annotations

import pyarrow as pa

# PySpark's eval types (pyspark.util.PythonEvalType)
BATCHED_UDF, ARROW_BATCHED_UDF, SCALAR_PANDAS_UDF, SCALAR_ARROW_UDF = 100, 101, 200, 250
MAP_PANDAS, MAP_ARROW = 205, 207


def with_files(files: dict[str, bytes]):
    """Make the client's Python files importable where the function runs."""
    if not files:
        return
    import os
    import sys
    import tempfile
    import zipfile
    root = os.path.join(tempfile.gettempdir(), "stackyard-pyfiles-" + str(os.getuid()))
    os.makedirs(root, exist_ok=True)
    for name, data in files.items():
        path = os.path.join(root, os.path.basename(name))
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as fh:
                fh.write(data)
            os.replace(path + ".tmp", path)
        target = path if zipfile.is_zipfile(path) else root
        if target not in sys.path:
            sys.path.insert(0, target)


class Row(tuple):
    """A struct argument as PySpark hands it to a UDF: fields by name, by
    attribute or by position (pyspark.sql.Row, without importing pyspark)."""

    def __new__(cls, d: dict):
        row = super().__new__(cls, [to_row(v) for v in d.values()])
        row.__fields__ = list(d)
        return row

    def __getattr__(self, name):
        try:
            return self[self.__fields__.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __getitem__(self, item):
        if isinstance(item, str):
            return tuple.__getitem__(self, self.__fields__.index(item))
        return tuple.__getitem__(self, item)

    def asDict(self) -> dict:  # noqa: N802
        return dict(zip(self.__fields__, self, strict=True))

    def __repr__(self) -> str:
        return "Row(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.__fields__, self,
                                                              strict=True)) + ")"


def to_row(v):
    return Row(v) if isinstance(v, dict) else v


def rowwise(func, ret: str, files: dict):
    to_str = ret == "string"

    def call(*args):
        with_files(files)
        v = func(*[to_row(a) for a in args])
        return str(v) if to_str and v is not None and not isinstance(v, str) else v
    return call


def vectorized(func, eval_type: int, files: dict, out_type: pa.DataType):
    def call(*arrays):
        return _cast(_call(*arrays), out_type)

    def _call(*arrays):
        with_files(files)
        import pandas as pd
        if eval_type == SCALAR_ARROW_UDF:
            return func(*arrays)
        if eval_type == ARROW_BATCHED_UDF:
            cols = [a.to_pylist() for a in arrays]
            return pa.array([func(*row) for row in zip(*cols, strict=True)])
        series = [a.to_pandas() if hasattr(a, "to_pandas") else pd.Series(a) for a in arrays]
        out = func(*series)
        return pa.array(out)
    return call


def _cast(out, out_type: pa.DataType):
    arr = out if isinstance(out, pa.Array | pa.ChunkedArray) else pa.array(out)
    return arr if arr.type == out_type else arr.cast(out_type)


def ipc(table: pa.Table) -> bytes:
    from stackyard.sql.fragments import to_ipc
    return to_ipc(table)


def partition_mapper(func, pandas: bool, schema: pa.Schema, files: dict):
    def apply(chunks):
        with_files(files)
        batches = [b for c in chunks for b in pa.ipc.open_stream(c).read_all().to_batches()]
        if pandas:
            frames = (b.to_pandas() for b in batches)
            outs = [pa.Table.from_pandas(f, preserve_index=False) for f in func(frames)]
        else:
            outs = [pa.Table.from_batches([b]) for b in func(iter(batches))]
        cast = []
        for t in outs:
            cols = [t.column(f.name).cast(f.type) if f.name in t.column_names else
                    pa.nulls(t.num_rows, f.type) for f in schema]
            cast.append(pa.Table.from_arrays(cols, schema=schema))
        yield ipc(pa.concat_tables(cast) if cast else schema.empty_table())
    return apply
