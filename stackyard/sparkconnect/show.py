"""df.show() and the notebook's HTML table: rows formatted on the server as
Spark's showString formats them (Java's number formatting, NULL, [a, b],
{k -> v})."""

from __future__ import annotations

import datetime
import decimal
import html
import math


def cell(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return java_double(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, datetime.datetime):
        text = v.strftime("%Y-%m-%d %H:%M:%S")
        if v.microsecond:
            text += ("." + f"{v.microsecond:06d}").rstrip("0")
        return text
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, bytes | bytearray):
        return "[" + " ".join(f"{b:02X}" for b in v) + "]"
    if isinstance(v, list):
        return "[" + ", ".join(cell(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{cell(k)}, {cell(x)}" for k, x in v.items()) + "}"
    if isinstance(v, tuple):                  # a map from Arrow: [(k, v), ...] comes as list
        return "{" + ", ".join(cell(x) for x in v) + "}"
    return str(v)


def _struct_or_map(v, typ) -> str:
    import pyarrow as pa
    if v is None:
        return "NULL"
    if pa.types.is_map(typ):
        return "{" + ", ".join(f"{_struct_or_map(k, typ.key_type)} -> "
                               f"{_struct_or_map(x, typ.item_type)}" for k, x in v) + "}"
    if pa.types.is_struct(typ):
        return "{" + ", ".join(_struct_or_map(v.get(f.name), f.type) for f in typ) + "}"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return "[" + ", ".join(_struct_or_map(x, typ.value_type) for x in v) + "]"
    return cell(v)


def java_double(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0.0" if math.copysign(1, v) < 0 else "0.0"
    if 1e-3 <= abs(v) < 1e7:
        text = repr(v)
        if "e" in text:
            text = format(v, "f")
        return text if "." in text else text + ".0"
    mantissa, _, exponent = f"{v!r}".partition("e")
    if not exponent:
        digits = f"{v:.17e}"
        mantissa, _, exponent = digits.partition("e")
        mantissa = mantissa.rstrip("0")
    m = float(mantissa)
    e = int(exponent)
    while abs(m) >= 10:
        m /= 10
        e += 1
    ms = repr(m)
    if "." not in ms:
        ms += ".0"
    return f"{ms}E{e}"


def rows_text(table, truncate: int) -> tuple[list[str], list[list[str]]]:
    names = table.column_names
    cols = []
    for col in table.columns:
        vals = col.to_pylist()
        cols.append([_struct_or_map(v, col.type) for v in vals])
    rows = [list(r) for r in zip(*cols, strict=True)] if cols else []
    if truncate > 0:
        def cut(s: str) -> str:
            return s if len(s) <= truncate else (s[:truncate] if truncate < 4
                                                 else s[:truncate - 3] + "...")
        rows = [[cut(c) for c in r] for r in rows]
    return names, rows


def show_string(table, n: int, truncate: int, vertical: bool, more: bool) -> str:
    names, rows = rows_text(table, truncate)
    if vertical:
        return _vertical(names, rows, n, more)
    widths = [max([3, _w(h)] + [_w(r[i]) for r in rows]) for i, h in enumerate(names)]
    line = "+" + "+".join("-" * w for w in widths) + "+\n"

    def fmt(cells) -> str:
        out = []
        for c, w in zip(cells, widths, strict=True):
            pad = " " * (w - _w(c))
            out.append(pad + c if truncate > 0 else c + pad)
        return "|" + "|".join(out) + "|\n"
    text = line + fmt(names) + line + "".join(fmt(r) for r in rows) + line
    if more:
        text += f"only showing top {n} row{'s' if n != 1 else ''}\n"
    return text.rstrip("\n")


def _vertical(names, rows, n: int, more: bool) -> str:
    if not rows:
        return "(0 rows)\n"
    key_w = max(_w(h) for h in names) if names else 0
    val_w = max([_w(c) for r in rows for c in r] or [0])
    out = []
    for i, r in enumerate(rows):
        head = f"-RECORD {i}"
        out.append(head + "-" * max(0, key_w + val_w + 5 - len(head)) + "\n")
        for h, c in zip(names, r, strict=True):
            out.append(" " + h.ljust(key_w) + " | " + c.ljust(val_w) + " \n")
    text = "".join(out)
    if more:
        text += f"only showing top {n} row{'s' if n != 1 else ''}\n"
    return text.rstrip("\n")


def _w(s: str) -> int:
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def html_string(table, n: int, truncate: int, more: bool) -> str:
    names, rows = rows_text(table, truncate)
    out = ["<table border='1'>\n<tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in names]
    out.append("</tr>\n")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>\n")
    out.append("</table>\n")
    if more:
        out.append(f"only showing top {n} {'row' if n == 1 else 'rows'}\n")
    return "".join(out)
