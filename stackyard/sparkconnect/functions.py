"""The functions and operators a Connect client calls by name, as sqlglot
expressions. Spark's own function names go through sqlglot's Spark dialect,
so the fragment each task runs gets DuckDB's equivalent (sqlglot knows both);
the operators PySpark sends by symbol are mapped here."""

from __future__ import annotations

from sqlglot import exp

from stackyard.sparkconnect.errors import ConnectError

_BINARY = {
    "==": exp.EQ, "<=>": exp.NullSafeEQ, "!=": exp.NEQ, "<": exp.LT, ">": exp.GT,
    "<=": exp.LTE, ">=": exp.GTE, "+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div,
    "%": exp.Mod, "and": exp.And, "or": exp.Or, "|": exp.BitwiseOr, "&": exp.BitwiseAnd,
    "^": exp.BitwiseXor, "like": exp.Like, "ilike": exp.ILike, "rlike": exp.RegexpLike,
    "regexp": exp.RegexpLike, "regexp_like": exp.RegexpLike, "mod": exp.Mod,
}
# names pyspark.sql.functions sends that Spark SQL spells otherwise
_RENAMED = {"mean": "avg", "startsWith": "startswith", "endsWith": "endswith",
            "stddev_samp": "stddev_samp", "approx_count_distinct": "approx_count_distinct",
            "contains": "contains", "power": "power", "pow": "power", "ceiling": "ceil",
            "sign": "signum", "char_length": "length", "character_length": "length",
            "printf": "format_string", "random": "rand", "ucase": "upper", "lcase": "lower",
            "std": "stddev", "every": "bool_and", "some": "bool_or", "any": "bool_or",
            "bool_and": "bool_and", "bool_or": "bool_or", "day": "dayofmonth"}


def call(name: str, args: list[exp.Expression], distinct: bool, raw, tr) -> exp.Expression:
    if name in _BINARY and len(args) == 2:
        left, right = args
        if name == "/":
            return exp.Div(this=left, expression=right, typed=False, safe=True)
        return _BINARY[name](this=_paren(left), expression=_paren(right))
    if name in ("and", "or") and len(args) > 2:
        out = args[0]
        for a in args[1:]:
            out = _BINARY[name](this=_paren(out), expression=_paren(a))
        return out
    if name in ("not", "!") and len(args) == 1:
        return exp.Not(this=_paren(args[0]))
    if name == "negative" and len(args) == 1:
        return exp.Neg(this=_paren(args[0]))
    if name == "positive" and len(args) == 1:
        return args[0]
    if name == "~" and len(args) == 1:
        return exp.BitwiseNot(this=_paren(args[0]))
    if name == "isNull" or (name == "isnull" and len(args) == 1):
        return exp.Is(this=_paren(args[0]), expression=exp.Null())
    if name in ("isNotNull", "isnotnull"):
        return exp.Not(this=exp.Is(this=_paren(args[0]), expression=exp.Null()))
    if name in ("isNaN", "isnan"):
        return exp.func("isnan", args[0], dialect="spark")
    if name == "in":
        if len(args) == 1:
            return exp.false()
        return exp.In(this=_paren(args[0]), expressions=args[1:])
    if name == "when":
        ifs = [exp.If(this=args[i], true=args[i + 1]) for i in range(0, len(args) - 1, 2)]
        default = args[-1] if len(args) % 2 else None
        return exp.Case(ifs=ifs, default=default)
    if name in ("count", "count_distinct", "countDistinct"):
        if len(args) == 1 and isinstance(args[0], exp.Star):
            return exp.Count(this=exp.Star())
        if distinct or name != "count":
            return exp.Count(this=exp.Distinct(expressions=args))
        return exp.Count(this=args[0])
    if name in ("sum_distinct", "sumDistinct"):
        return exp.Sum(this=exp.Distinct(expressions=args))
    if name == "between" and len(args) == 3:
        return exp.Between(this=args[0], low=args[1], high=args[2])
    if name in ("struct",):
        return exp.Struct(expressions=[_named(a, r, tr) for a, r in zip(args, raw, strict=False)])
    if name == "named_struct":
        return exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.to_identifier(args[i].name, quoted=True),
                           expression=args[i + 1]) for i in range(0, len(args), 2)])
    if name in ("array", "create_array"):
        return exp.Array(expressions=args)
    if name in ("map", "create_map"):
        return exp.Map(keys=exp.Array(expressions=args[0::2]),
                       values=exp.Array(expressions=args[1::2]))
    if name in ("first", "last", "first_value", "last_value"):
        ignore = len(args) > 1 and isinstance(args[1], exp.Boolean) and args[1].this
        f = exp.First if name.startswith("first") else exp.Last
        out: exp.Expression = f(this=args[0])
        return exp.IgnoreNulls(this=out) if ignore else out
    if name == "substr" or name == "substring":
        return exp.Substring(this=args[0], start=args[1],
                             length=args[2] if len(args) > 2 else None)
    if name == "distinct" and args:
        return exp.Distinct(expressions=args)
    if name in ("percentile_approx", "approx_percentile"):
        q = exp.ApproxQuantile(this=args[0], quantile=args[1])
        return q
    if name in ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile"):
        return exp.Anonymous(this=name.upper(), expressions=args)
    if name in ("current_database", "current_schema") and tr.session is not None:
        return exp.Literal.string(tr.session.sql.database)
    if name == "current_catalog":
        return exp.Literal.string("spark_catalog")
    if name in ("date_add", "date_sub", "dateadd") and len(args) == 2:
        days = args[1] if name != "date_sub" else exp.Neg(this=exp.Paren(this=args[1]))
        return exp.Cast(this=exp.Add(this=exp.Cast(this=args[0], to=exp.DataType.build("DATE")),
                                     expression=exp.Interval(this=exp.Paren(this=days),
                                                             unit=exp.var("DAY"))),
                        to=exp.DataType.build("DATE"))
    if name == "dayofweek" and len(args) == 1:
        return exp.Add(this=exp.Paren(this=exp.func("dayofweek", args[0], dialect="spark")),
                       expression=exp.Literal.number(1))
    if name in ("ln", "log10", "log2", "log1p") or (name == "log" and len(args) == 1):
        x = args[0]
        floor = -1 if name == "log1p" else 0
        base = exp.func("ln" if name == "log" else name, x, dialect="spark")
        return exp.Case(ifs=[exp.If(this=exp.LTE(this=x.copy(),
                                                 expression=exp.Literal.number(floor)),
                                    true=exp.Null())], default=base)
    if name == "typeof" and len(args) == 1:
        t = tr.type_of(args[0]) if hasattr(tr, "type_of") else None
        if t is not None:
            from stackyard.sparkconnect.types import sql_name
            return exp.Literal.string(sql_name(t))
    if name in _STRING_ARGS and args and not (isinstance(args[0], exp.Literal)
                                             and args[0].is_string):
        # Spark casts a number to text for its string functions; DuckDB does not
        args = [exp.Cast(this=args[0], to=exp.DataType.build("STRING"))] + args[1:]
    if name in ("signum", "sign") and len(args) == 1:
        return exp.Cast(this=exp.func("sign", args[0], dialect="spark"),
                        to=exp.DataType.build("DOUBLE"))
    spark_name = _RENAMED.get(name, name)
    try:
        out = exp.func(spark_name, *args, dialect="spark")
    except Exception as e:
        raise ConnectError("WRONG_NUM_ARGS.WITHOUT_SUGGESTION",
                           f"The `{name}` requires another number of parameters: {e}",
                           "42605") from None
    if distinct and isinstance(out, exp.AggFunc):
        out.set("this", exp.Distinct(expressions=[out.this]))
    return out


_STRING_ARGS = {"upper", "lower", "ucase", "lcase", "length", "char_length", "trim", "ltrim",
                "rtrim", "initcap", "lpad", "rpad", "repeat", "instr", "locate",
                "octet_length", "bit_length", "ascii", "base64", "translate", "left", "right",
                "startswith", "endswith", "contains", "split", "regexp_replace",
                "regexp_extract"}


def _paren(e: exp.Expression) -> exp.Expression:
    if isinstance(e, exp.Binary | exp.Not | exp.Is | exp.Between | exp.In | exp.Neg):
        return exp.Paren(this=e)
    return e


def _named(a: exp.Expression, raw, tr) -> exp.Expression:
    from stackyard.sparkconnect.names import name_of
    if isinstance(a, exp.Alias):
        return exp.PropertyEQ(this=exp.to_identifier(a.alias, quoted=True), expression=a.this)
    return exp.PropertyEQ(this=exp.to_identifier(name_of(raw), quoted=True), expression=a)


def unsupported(what: str) -> ConnectError:
    return ConnectError("UNSUPPORTED_FEATURE", f"{what} is not supported by Stackyard", "0A000")
