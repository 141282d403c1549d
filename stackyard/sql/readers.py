"""Reading a table's split into Arrow, in the task that scans it: Parquet
row groups (only the columns asked for), line-aligned pieces of delimited
text and JSON lines, whole ORC files. Partition columns come from the split's
directory, as constant columns."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa

READ_BUFFER = 4 << 20


@dataclass(frozen=True)
class FileSplit:
    path: str
    offset: int                        # text: the byte range owned; parquet/orc: whole file
    length: int
    row_groups: tuple[int, ...] | None  # parquet: the row groups to read
    hosts: tuple[str, ...] = ()
    partition: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ScanSpec:
    """How to read a table: its format, file schema (without partition
    columns), the columns wanted and the partition columns' types."""
    fmt: str
    file_schema: pa.Schema
    columns: tuple[str, ...]
    partition_schema: pa.Schema
    delimiter: str = "\x01"
    header: bool = False
    null_value: str = "\\N"
    mapping: tuple[tuple[str, str], ...] = ()   # a table-store table's column -> cell


def read_split(fs, split: FileSplit, spec: ScanSpec, counters: dict) -> pa.Table:
    wanted = [c for c in spec.columns if c in spec.file_schema.names]
    if spec.fmt == "parquet":
        table = _parquet(fs, split, wanted, counters)
    elif spec.fmt == "orc":
        import pyarrow.orc as orc
        with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
            table = orc.ORCFile(f).read(columns=wanted)
            counters["bytes_read"] = counters.get("bytes_read", 0) + split.length
    else:
        table = _text(fs, split, spec, wanted, counters)
    rows = table.num_rows
    table = _conform(table, spec.file_schema, wanted)
    values = dict(split.partition)
    columns = {name: table.column(name) for name in wanted}
    for field in spec.partition_schema:
        if field.name in spec.columns:
            raw = values.get(field.name)
            value = None if raw in (None, "__HIVE_DEFAULT_PARTITION__") else raw
            columns[field.name] = pa.array([value] * rows, pa.string()).cast(field.type)
    names = list(spec.columns)
    return pa.table([columns[n] for n in names], names=names)


def _parquet(fs, split: FileSplit, wanted: list[str], counters: dict) -> pa.Table:
    import pyarrow.parquet as pq
    with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
        pf = pq.ParquetFile(f)
        groups = list(split.row_groups) if split.row_groups is not None \
            else list(range(pf.metadata.num_row_groups))
        table = pf.read_row_groups(groups, columns=wanted) if groups else \
            pf.schema_arrow.empty_table().select(wanted)
        counters["bytes_read"] = counters.get("bytes_read", 0) + sum(
            pf.metadata.row_group(g).total_byte_size for g in groups)
    return table


def _owned_bytes(fs, split: FileSplit, counters: dict) -> bytes:
    from stackyard.compute.splits import Split, owned_bytes
    return owned_bytes(fs, Split(split.path, split.offset, split.length), counters)


def _text(fs, split: FileSplit, spec: ScanSpec, wanted: list[str], counters: dict) -> pa.Table:
    if split.path.endswith((".gz", ".zst", ".bz2")):
        data = _whole_compressed(fs, split)
    else:
        data = _owned_bytes(fs, split, counters)
    if spec.fmt == "jsonfile":
        import pyarrow.json as pj
        if not data.strip():
            return spec.file_schema.empty_table()
        # JSON has no dates or decimals: read them as the text they are, then cast
        textual = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_date(f.type)
                             or pa.types.is_timestamp(f.type) or pa.types.is_decimal(f.type)
                             else f for f in spec.file_schema])
        table = pj.read_json(io.BytesIO(data), parse_options=pj.ParseOptions(
            explicit_schema=textual, unexpected_field_behavior="ignore"))
        return table.cast(spec.file_schema) if textual != spec.file_schema else table
    import pyarrow.csv as pc
    names = spec.file_schema.names
    if not data.strip():
        return spec.file_schema.empty_table()
    first = data.split(b"\n", 1)[0]
    extra = first.count(spec.delimiter.encode()) + 1 - len(names)
    # Hive ignores fields past the declared columns (TPC-H's .tbl ends each line with |)
    all_names = names + [f"__extra{i}" for i in range(max(0, extra))]
    skip = 1 if spec.header and split.offset == 0 else 0
    return pc.read_csv(io.BytesIO(data), read_options=pc.ReadOptions(
        column_names=all_names, skip_rows=skip, block_size=max(1 << 20, len(data) + 1)),
        parse_options=pc.ParseOptions(delimiter=spec.delimiter, quote_char='"'
                                      if spec.fmt == "csv" else False),
        convert_options=pc.ConvertOptions(
            column_types={f.name: f.type for f in spec.file_schema},
            include_columns=wanted or names[:1], null_values=[spec.null_value, ""],
            strings_can_be_null=spec.fmt == "csv", quoted_strings_can_be_null=False))


def _whole_compressed(fs, split: FileSplit) -> bytes:
    """A compressed text file is one split (as Hadoop's non-splittable codecs)."""
    with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
        raw = f.read()
    if split.path.endswith(".gz"):
        import gzip
        return gzip.decompress(raw)
    if split.path.endswith(".bz2"):
        import bz2
        return bz2.decompress(raw)
    return pa.CompressedInputStream(pa.BufferReader(raw), "zstd").read()


def _conform(table: pa.Table, schema: pa.Schema, wanted: list[str]) -> pa.Table:
    """TABLE's WANTED columns with the types SCHEMA declares (files written by
    others may say int32 where the table says bigint; missing columns are null)."""
    cols = []
    for name in wanted:
        t = schema.field(name).type
        if name in table.column_names:
            c = table.column(name)
            cols.append(c if c.type == t else c.cast(t))
        else:
            cols.append(pa.nulls(table.num_rows, t))
    return pa.table(cols, schema=pa.schema([schema.field(n) for n in wanted]))
