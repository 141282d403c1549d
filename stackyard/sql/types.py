"""Hive / Spark column types and their Arrow equivalents."""

from __future__ import annotations

import re

import pyarrow as pa

from stackyard.sql.errors import AnalysisError

_SIMPLE = {
    "tinyint": pa.int8(), "byte": pa.int8(), "smallint": pa.int16(), "short": pa.int16(),
    "int": pa.int32(), "integer": pa.int32(), "bigint": pa.int64(), "long": pa.int64(),
    "float": pa.float32(), "real": pa.float32(), "double": pa.float64(),
    "boolean": pa.bool_(), "string": pa.string(), "binary": pa.binary(),
    "date": pa.date32(), "timestamp": pa.timestamp("us"), "timestamp_ntz": pa.timestamp("us"),
}
_DECIMAL = re.compile(r"^(?:decimal|numeric|dec)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_CHARS = re.compile(r"^(?:var)?char\s*\(\s*\d+\s*\)$")


def arrow_type(hive: str) -> pa.DataType:
    t = hive.strip().lower()
    if t in _SIMPLE:
        return _SIMPLE[t]
    m = _DECIMAL.match(t)
    if m:
        precision = int(m.group(1) or 10)
        scale = int(m.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise AnalysisError(f"decimal({precision},{scale}): precision must be 1..38 "
                                "and scale at most the precision")
        return pa.decimal128(precision, scale)
    if _CHARS.match(t):
        return pa.string()
    raise AnalysisError(f"unknown column type {hive!r}")


def hive_type(t: pa.DataType) -> str:
    """The Hive name of an Arrow type (what DESCRIBE shows)."""
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_dictionary(t):
        return hive_type(t.value_type)
    names = {pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "int",
             pa.int64(): "bigint", pa.float32(): "float", pa.float64(): "double",
             pa.bool_(): "boolean", pa.date32(): "date", pa.uint8(): "smallint",
             pa.uint16(): "int", pa.uint32(): "bigint", pa.uint64(): "decimal(20,0)",
             pa.null(): "void"}
    if t in names:
        return names[t]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"
    return str(t)


def schema_of(columns: list[dict]) -> pa.Schema:
    return pa.schema([(c["name"], arrow_type(c["type"])) for c in columns])
