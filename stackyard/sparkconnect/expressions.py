"""Spark Connect expressions into sqlglot expressions of the SQL layer, with
the column names Spark gives them (`(a + 1)`, `sum(x)`, `count(1)`).

Attributes resolve against a Scope: the columns of the relations below, each
known by its visible name, the internal name its subquery gives it, and the
plan ids of the DataFrames it came through (how `df1.id` picks df1's side of
a join that has two `id` columns)."""

from __future__ import annotations

import datetime
import decimal
import json
from dataclasses import dataclass, field

from pyspark.sql.connect.proto import expressions_pb2 as E
from sqlglot import exp

from stackyard.sparkconnect import types
from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.functions import call

EPOCH = datetime.date(1970, 1, 1)


@dataclass
class Col:
    name: str                           # what the user sees and names
    internal: str                       # the subquery's output name
    plan_ids: frozenset = frozenset()
    qualifiers: frozenset = frozenset()  # aliases it may be named through (t.col)


@dataclass
class Source:
    alias: str                          # the subquery's alias in the enclosing SELECT
    cols: list[Col]
    plan_ids: frozenset = frozenset()


@dataclass
class Scope:
    sources: list[Source] = field(default_factory=list)
    outer: Scope | None = None
    lambdas: set = field(default_factory=set)
    from_: exp.Expression | None = None     # the FROM item, to find an expression's type

    def resolve(self, ident: str, plan_id: int | None = None) -> tuple[exp.Expression, Col]:
        parts = split_identifier(ident)
        for n in range(len(parts), 0, -1):
            found = self._find(parts[:n], plan_id)
            if not found and plan_id is not None:
                found = self._find(parts[:n], None)
            if found:
                source, col = found
                out: exp.Expression = exp.column(col.internal, source.alias, quoted=True)
                for p in parts[n:]:
                    out = exp.Dot(this=out, expression=exp.to_identifier(p, quoted=True))
                return out, col
        names = ", ".join(f"`{c.name}`" for s in self.sources for c in s.cols)
        raise ConnectError("UNRESOLVED_COLUMN.WITH_SUGGESTION",
                           f"A column, variable, or function parameter with name "
                           f"`{ident}` cannot be resolved. Did you mean one of the "
                           f"following? [{names}].", "42703")

    def _find(self, parts: list[str], plan_id: int | None):
        name, quals = parts[-1], parts[:-1]
        hits = []
        for s in self.sources:
            cands = [c for c in s.cols if c.name.lower() == name.lower() and
                     (not quals or quals[-1].lower() in {q.lower() for q in c.qualifiers})]
            if plan_id is not None:
                tagged = [c for c in cands if plan_id in c.plan_ids]
                cands = tagged if tagged else (cands if plan_id in s.plan_ids else [])
            hits += [(s, c) for c in cands]
        if len(hits) > 1:
            exact = [h for h in hits if h[1].name == name]
            if len(exact) == 1:
                return exact[0]
            raise ConnectError("AMBIGUOUS_REFERENCE",
                               f"Reference `{'.'.join(parts)}` is ambiguous, could be: "
                               f"[{', '.join('`' + h[1].name + '`' for h in hits)}].",
                               "42704")
        return hits[0] if hits else None

    def all_cols(self) -> list[tuple[Source, Col]]:
        return [(s, c) for s in self.sources for c in s.cols]


def split_identifier(text: str) -> list[str]:
    """Spark's multi-part name: dots split, backquotes quote (`a.b`.c)."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == "`":
            if quoted and i + 1 < len(text) and text[i + 1] == "`":
                cur += "`"
                i += 2
                continue
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return parts


class Translator:
    """Expressions of one relation, against SCOPE; SESSION holds UDFs."""

    def __init__(self, scope: Scope, session=None):
        self.scope, self.session = scope, session

    def __call__(self, e: E.Expression) -> exp.Expression:
        return self.expr(e)

    def expr(self, e: E.Expression) -> exp.Expression:
        kind = e.WhichOneof("expr_type")
        method = getattr(self, "_" + (kind or "none"), None)
        if method is None:
            raise ConnectError("UNSUPPORTED_FEATURE",
                               f"The expression {kind} is not supported by Stackyard", "0A000")
        return method(getattr(e, kind))

    # -- leaves ---------------------------------------------------------------------------

    def _literal(self, lit: E.Expression.Literal) -> exp.Expression:
        return literal(lit)

    def _unresolved_attribute(self, a) -> exp.Expression:
        ident = a.unparsed_identifier
        if ident in self.scope.lambdas:
            return exp.to_identifier(ident)
        pid = a.plan_id if a.HasField("plan_id") else None
        return self.scope.resolve(ident, pid)[0]

    def _unresolved_named_lambda_variable(self, v) -> exp.Expression:
        return exp.to_identifier(".".join(v.name_parts))

    def _expression_string(self, s) -> exp.Expression:
        from stackyard.sparkconnect.sqltext import resolve_text
        return resolve_text(s.expression, self.scope)

    def _unresolved_star(self, s) -> exp.Expression:
        return exp.Star()

    def _alias(self, a) -> exp.Expression:
        inner = self.expr(a.expr)
        if len(a.name) == 1:
            return exp.alias_(inner, a.name[0], quoted=True)
        return exp.Tuple(expressions=[exp.alias_(inner, n, quoted=True) for n in a.name])

    def _cast(self, c) -> exp.Expression:
        to = c.type_str if c.HasField("type_str") else types.to_sql(c.type)
        inner = self.expr(c.expr)
        dtype = exp.DataType.build(to, dialect="spark")
        if c.eval_mode == E.Expression.Cast.EVAL_MODE_TRY:
            return exp.TryCast(this=inner, to=dtype)
        return exp.Cast(this=inner, to=dtype)

    def _sort_order(self, s) -> exp.Expression:
        desc = s.direction == E.Expression.SortOrder.SORT_DIRECTION_DESCENDING
        nulls = s.null_ordering
        nulls_first = (nulls == E.Expression.SortOrder.SORT_NULLS_FIRST) if nulls else not desc
        return exp.Ordered(this=self.expr(s.child), desc=desc, nulls_first=nulls_first)

    def _unresolved_function(self, f) -> exp.Expression:
        args = [self.expr(a) for a in f.arguments]
        return call(f.function_name, args, f.is_distinct, list(f.arguments), self)

    def _call_function(self, f) -> exp.Expression:
        args = [self.expr(a) for a in f.arguments]
        return call(f.function_name, args, False, list(f.arguments), self)

    def type_of(self, e: exp.Expression):
        """The Arrow type of E over this scope's FROM item (planned, not run)."""
        if self.session is None or self.scope.from_ is None:
            return None
        q = exp.select(exp.alias_(e.copy(), "x")).from_(self.scope.from_.copy())
        try:
            root, _ = self.session.sql.plan(q, self.session.catalog())
        except Exception:
            return None
        return root.schema.types[0]

    def _unresolved_extract_value(self, x) -> exp.Expression:
        import pyarrow as pa
        child = self.expr(x.child)
        key = x.extraction
        t = self.type_of(child)
        k = self.expr(key)
        if t is not None and pa.types.is_map(t):
            return exp.Anonymous(this="map_extract_value", expressions=[child, k])
        if t is not None and (pa.types.is_list(t) or pa.types.is_large_list(t)):
            return exp.Anonymous(this="list_extract", expressions=[
                child, exp.Add(this=exp.Paren(this=k), expression=exp.Literal.number(1))])
        if key.WhichOneof("expr_type") == "literal" and key.literal.HasField("string"):
            return exp.Anonymous(this="struct_extract", expressions=[child, k])
        return exp.Bracket(this=child, expressions=[k], offset=0, safe=True)

    def _lambda_function(self, f) -> exp.Expression:
        names = [".".join(v.name_parts) for v in f.arguments]
        inner = Translator(Scope(self.scope.sources, self.scope.outer,
                                 self.scope.lambdas | set(names)), self.session)
        return exp.Lambda(this=inner.expr(f.function),
                          expressions=[exp.to_identifier(n) for n in names])

    def _window(self, w) -> exp.Expression:
        func = self.expr(w.window_function)
        partition = [self.expr(p) for p in w.partition_spec]
        order = [self._sort_order(o) for o in w.order_spec]
        spec = None
        if w.HasField("frame_spec"):
            fr = w.frame_spec
            kind = "ROWS" if fr.frame_type == E.Expression.Window.WindowFrame.FRAME_TYPE_ROW \
                else "RANGE"
            start, start_side = self._bound(fr.lower, "PRECEDING")
            end, end_side = self._bound(fr.upper, "FOLLOWING")
            spec = exp.WindowSpec(kind=kind, start=start, start_side=start_side,
                                  end=end, end_side=end_side)
        return exp.Window(this=func, partition_by=partition or None,
                          order=exp.Order(expressions=order) if order else None, spec=spec)

    def _bound(self, b, default_side: str):
        if b.HasField("current_row") and b.current_row:
            return "CURRENT ROW", None
        if b.HasField("unbounded") and b.unbounded:
            return "UNBOUNDED", default_side
        v = self.expr(b.value)
        if isinstance(v, exp.Neg):
            return v.this, "PRECEDING"
        if isinstance(v, exp.Literal) and not v.is_string and str(v.this).startswith("-"):
            return exp.Literal.number(str(v.this)[1:]), "PRECEDING"
        if isinstance(v, exp.Literal) and str(v.this) == "0":
            return "CURRENT ROW", None
        return v, "FOLLOWING"

    def _common_inline_user_defined_function(self, f) -> exp.Expression:
        if not f.HasField("python_udf"):
            raise ConnectError("UNSUPPORTED_FEATURE", "only Python UDFs run on Stackyard",
                               "0A000")
        name = self.session.python_udf(f)
        return exp.Anonymous(this=name, expressions=[self.expr(a) for a in f.arguments])

    def _named_argument_expression(self, n) -> exp.Expression:
        return exp.Kwarg(this=exp.var(n.key), expression=self.expr(n.value))


# -- literals ---------------------------------------------------------------------------

def literal(lit: E.Expression.Literal) -> exp.Expression:
    kind = lit.WhichOneof("literal_type")
    if kind == "null" or kind is None:
        if kind == "null":
            to = types.to_sql(lit.null)
            if to != "void":
                return exp.Cast(this=exp.Null(), to=exp.DataType.build(to, dialect="spark"))
        return exp.Null()
    v = getattr(lit, kind)
    if kind == "boolean":
        return exp.Boolean(this=v)
    if kind in ("integer",):
        return exp.Literal.number(v)
    if kind in ("byte", "short", "long"):
        t = {"byte": "TINYINT", "short": "SMALLINT", "long": "BIGINT"}[kind]
        if kind == "long" and -(2 ** 31) <= v < 2 ** 31:
            return exp.Cast(this=exp.Literal.number(v), to=exp.DataType.build(t))
        return exp.Cast(this=exp.Literal.number(v), to=exp.DataType.build(t))
    if kind in ("float", "double"):
        if v != v or v in (float("inf"), float("-inf")):
            text = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            return exp.Cast(this=exp.Literal.string(text),
                            to=exp.DataType.build("DOUBLE" if kind == "double" else "FLOAT"))
        if kind == "double":          # 2.5E0: a double in Spark and DuckDB, not a decimal
            text = repr(float(v))
            return exp.Literal.number(text if "e" in text else text + "E0")
        return exp.Cast(this=exp.Literal.number(repr(float(v))),
                        to=exp.DataType.build("FLOAT"))
    if kind == "decimal":
        d = decimal.Decimal(v.value)
        p = v.precision if v.HasField("precision") else max(1, len(d.as_tuple().digits))
        s = v.scale if v.HasField("scale") else max(0, -d.as_tuple().exponent)
        return exp.Cast(this=exp.Literal.number(v.value),
                        to=exp.DataType.build(f"DECIMAL({max(p, s)},{s})"))
    if kind == "string":
        return exp.Literal.string(v)
    if kind == "binary":
        return exp.Cast(this=exp.Literal.string(v.decode("latin-1")),
                        to=exp.DataType.build("BINARY"))
    if kind == "date":
        return exp.Cast(this=exp.Literal.string((EPOCH + datetime.timedelta(days=v)).isoformat()),
                        to=exp.DataType.build("DATE"))
    if kind in ("timestamp", "timestamp_ntz"):
        ts = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=v)
        return exp.Cast(this=exp.Literal.string(ts.isoformat(sep=" ")),
                        to=exp.DataType.build("TIMESTAMP"))
    if kind == "day_time_interval":
        return exp.Interval(this=exp.Literal.string(str(v)), unit=exp.var("MICROSECOND"))
    if kind == "array":
        return exp.Array(expressions=[literal(x) for x in v.elements])
    if kind == "map":
        return exp.Map(keys=exp.Array(expressions=[literal(x) for x in v.keys]),
                       values=exp.Array(expressions=[literal(x) for x in v.values]))
    if kind == "struct":
        names = [f.name for f in v.struct_type.struct.fields]
        return exp.Struct(expressions=[exp.PropertyEQ(this=exp.to_identifier(n), expression=literal(x))
                                       for n, x in zip(names, v.elements, strict=False)])
    raise ConnectError("UNSUPPORTED_FEATURE", f"literal of type {kind} is not supported",
                       "0A000")


def literal_text(lit: E.Expression.Literal) -> str:
    """A literal as Spark names it in a column name (strings unquoted)."""
    kind = lit.WhichOneof("literal_type")
    if kind == "null" or kind is None:
        return "NULL"
    v = getattr(lit, kind)
    if kind == "boolean":
        return "true" if v else "false"
    if kind in ("float", "double"):
        return repr(float(v)) if v == v else "NaN"
    if kind == "decimal":
        return v.value
    if kind == "binary":
        return "X'" + v.hex().upper() + "'"
    if kind == "date":
        return "DATE '" + (EPOCH + datetime.timedelta(days=v)).isoformat() + "'"
    if kind in ("timestamp", "timestamp_ntz"):
        ts = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=v)
        return f"TIMESTAMP '{ts.isoformat(sep=' ')}'"
    if kind == "array":
        return "array(" + ", ".join(literal_text(x) for x in v.elements) + ")"
    if kind == "long":
        return str(v)
    return str(v)


def python_value(lit: E.Expression.Literal):
    kind = lit.WhichOneof("literal_type")
    if kind in (None, "null"):
        return None
    v = getattr(lit, kind)
    if kind == "decimal":
        return decimal.Decimal(v.value)
    if kind == "date":
        return EPOCH + datetime.timedelta(days=v)
    if kind == "array":
        return [python_value(x) for x in v.elements]
    return v


def dumps(value) -> str:
    return json.dumps(value, default=str)
