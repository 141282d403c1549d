"""Spark Connect's DataType messages beside Arrow types and Spark's type
names: what a schema looks like to the client, and the Arrow a result must
carry for PySpark to read it as Spark would have produced it."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql.connect.proto import types_pb2 as T

from stackyard.sql.errors import AnalysisError

_SIMPLE_PROTO = {
    "null": pa.null(), "binary": pa.binary(), "boolean": pa.bool_(), "byte": pa.int8(),
    "short": pa.int16(), "integer": pa.int32(), "long": pa.int64(), "float": pa.float32(),
    "double": pa.float64(), "string": pa.string(), "date": pa.date32(),
    "timestamp": pa.timestamp("us", "UTC"), "timestamp_ntz": pa.timestamp("us"),
}

_SQL_NAMES = {"null": "void", "binary": "binary", "boolean": "boolean", "byte": "tinyint",
              "short": "smallint", "integer": "int", "long": "bigint", "float": "float",
              "double": "double", "string": "string", "date": "date",
              "timestamp": "timestamp", "timestamp_ntz": "timestamp_ntz"}


def to_arrow(dt: T.DataType) -> pa.DataType:
    kind = dt.WhichOneof("kind")
    if kind in _SIMPLE_PROTO:
        return _SIMPLE_PROTO[kind]
    if kind in ("char", "var_char"):
        return pa.string()
    if kind == "decimal":
        d = dt.decimal
        return pa.decimal128(d.precision if d.HasField("precision") else 10,
                             d.scale if d.HasField("scale") else 0)
    if kind == "array":
        return pa.list_(to_arrow(dt.array.element_type))
    if kind == "map":
        return pa.map_(to_arrow(dt.map.key_type), to_arrow(dt.map.value_type))
    if kind == "struct":
        return pa.struct([pa.field(f.name, to_arrow(f.data_type), f.nullable)
                          for f in dt.struct.fields])
    if kind == "day_time_interval":
        return pa.duration("us")
    if kind == "unparsed":
        return from_ddl(dt.unparsed.data_type_string)
    raise AnalysisError(f"[UNSUPPORTED_DATATYPE] data type {kind} is not supported")


def to_sql(dt: T.DataType) -> str:
    """The type's name in Spark SQL (what a CAST or a table column takes)."""
    kind = dt.WhichOneof("kind")
    if kind in _SQL_NAMES:
        return _SQL_NAMES[kind]
    if kind == "decimal":
        d = dt.decimal
        return (f"decimal({d.precision if d.HasField('precision') else 10},"
                f"{d.scale if d.HasField('scale') else 0})")
    if kind in ("char", "var_char"):
        return "string"
    if kind == "array":
        return f"array<{to_sql(dt.array.element_type)}>"
    if kind == "map":
        return f"map<{to_sql(dt.map.key_type)},{to_sql(dt.map.value_type)}>"
    if kind == "struct":
        return "struct<" + ",".join(f"`{f.name}`:{to_sql(f.data_type)}"
                                    for f in dt.struct.fields) + ">"
    if kind == "unparsed":
        return dt.unparsed.data_type_string
    raise AnalysisError(f"[UNSUPPORTED_DATATYPE] data type {kind} is not supported")


def from_arrow(t: pa.DataType, nullable: bool = True) -> T.DataType:
    out = T.DataType()
    if pa.types.is_null(t):
        out.null.SetInParent()
    elif pa.types.is_boolean(t):
        out.boolean.SetInParent()
    elif t in (pa.int8(),):
        out.byte.SetInParent()
    elif t in (pa.int16(), pa.uint8()):
        out.short.SetInParent()
    elif t in (pa.int32(), pa.uint16()):
        out.integer.SetInParent()
    elif t in (pa.int64(), pa.uint32(), pa.uint64()):
        out.long.SetInParent()
    elif pa.types.is_float32(t) or pa.types.is_float16(t):
        out.float.SetInParent()
    elif pa.types.is_float64(t):
        out.double.SetInParent()
    elif pa.types.is_decimal(t):
        out.decimal.precision, out.decimal.scale = t.precision, t.scale
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        out.string.SetInParent()
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or \
            pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
        out.binary.SetInParent()
    elif pa.types.is_date(t):
        out.date.SetInParent()
    elif pa.types.is_timestamp(t):
        (out.timestamp if t.tz else out.timestamp_ntz).SetInParent()
    elif pa.types.is_duration(t) or pa.types.is_interval(t):
        out.day_time_interval.start_field, out.day_time_interval.end_field = 0, 3
    elif pa.types.is_map(t):
        out.map.key_type.CopyFrom(from_arrow(t.key_type))
        out.map.value_type.CopyFrom(from_arrow(t.item_type))
        out.map.value_contains_null = True
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        out.array.element_type.CopyFrom(from_arrow(t.value_type))
        out.array.contains_null = True
    elif pa.types.is_struct(t):
        for f in t:
            out.struct.fields.add(name=f.name, data_type=from_arrow(f.type), nullable=True)
    elif pa.types.is_dictionary(t):
        return from_arrow(t.value_type)
    else:
        out.string.SetInParent()
    return out


def schema_proto(schema: pa.Schema) -> T.DataType:
    out = T.DataType()
    out.struct.SetInParent()
    for f in schema:
        out.struct.fields.add(name=f.name, data_type=from_arrow(f.type), nullable=True)
    return out


def sql_name(t: pa.DataType) -> str:
    """Spark's simpleString of an Arrow type (tree strings, DDL, describe)."""
    return to_sql(from_arrow(t))


def spark_arrow(t: pa.DataType) -> pa.DataType:
    """The Arrow type PySpark expects for T's Spark type: DuckDB's HUGEINT
    sums (decimal(38,0)) are Spark's bigint, its strings plain utf8, its
    unsigned integers the next signed width, timestamps in UTC."""
    if pa.types.is_decimal(t) and t.precision == 38 and t.scale == 0:
        return pa.int64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if t == pa.uint8():
        return pa.int16()
    if t == pa.uint16():
        return pa.int32()
    if t in (pa.uint32(), pa.uint64()):
        return pa.int64()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", t.tz) if t.tz else pa.timestamp("us")
    if pa.types.is_dictionary(t):
        return spark_arrow(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(spark_arrow(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(spark_arrow(t.key_type), spark_arrow(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, spark_arrow(f.type)) for f in t])
    return t


def to_spark_table(table: pa.Table) -> pa.Table:
    """TABLE cast, column by column, to the Arrow PySpark reads."""
    cols = []
    for col in table.columns:
        want = spark_arrow(col.type)
        if want != col.type:
            try:
                col = col.cast(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if want == pa.int64():          # a HUGEINT too wide for a bigint
                    col = col.cast(pa.float64())
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def from_ddl(text: str) -> pa.DataType:
    """A Spark DDL type string ('int', 'struct<a:int,b:string>', 'a INT, b STRING')."""
    from sqlglot import exp, parse_one
    text = text.strip()
    if _is_field_list(text):
        fields = []
        for name, typ in split_fields(text):
            fields.append(pa.field(name, from_ddl(typ)))
        return pa.struct(fields)
    try:
        dtype = parse_one(f"CAST(NULL AS {text})", read="spark").to
    except Exception:
        raise AnalysisError(f"[PARSE_SYNTAX_ERROR] Syntax error in data type {text!r}") from None
    return _from_sqlglot(dtype, exp)


def _from_sqlglot(dtype, exp) -> pa.DataType:
    from stackyard.sql.types import arrow_type
    t = dtype.this
    D = exp.DataType.Type
    if t in (D.ARRAY, D.LIST):
        return pa.list_(_from_sqlglot(dtype.expressions[0], exp))
    if t == D.MAP:
        return pa.map_(_from_sqlglot(dtype.expressions[0], exp),
                       _from_sqlglot(dtype.expressions[1], exp))
    if t == D.STRUCT:
        fields = []
        for col in dtype.expressions:
            fields.append(pa.field(col.name, _from_sqlglot(col.args["kind"], exp)))
        return pa.struct(fields)
    name = dtype.sql(dialect="spark").lower()
    if name == "void":
        return pa.null()
    if name in ("timestamp",):
        return pa.timestamp("us", "UTC")
    return arrow_type(name)


def _is_field_list(text: str) -> bool:
    """'a INT, b STRING' or 'a: int' rather than a single type."""
    depth, first = 0, text.split(",")[0]
    del depth
    parts = first.replace(":", " ").split()
    return len(parts) >= 2 and not first.lower().startswith(("struct", "array", "map",
                                                              "decimal"))


def split_fields(text: str) -> list[tuple[str, str]]:
    out, depth, cur = [], 0, ""
    for ch in text + ",":
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            item = cur.strip()
            if item:
                name, _, typ = item.replace(":", " ", 1).partition(" ")
                out.append((name.strip("`"), typ.strip()))
            cur = ""
        else:
            cur += ch
    return out
