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
    if name in ("trim", "ltrim", "rtrim") and len(args) == 2:
        pos = {"trim": "BOTH", "ltrim": "LEADING", "rtrim": "TRAILING"}[name]
        return exp.Trim(this=args[1], expression=args[0], position=pos)
    if name in ("format_string", "printf"):
        return exp.Anonymous(this="printf", expressions=args)
    if name == "kurtosis" and len(args) == 1:
        return exp.Anonymous(this="kurtosis_pop", expressions=args)
    if name == "skewness" and len(args) == 1:
        n = exp.Count(this=args[0].copy())
        return exp.Div(this=exp.Mul(this=exp.func("skewness", args[0], dialect="spark"),
                                    expression=exp.Paren(this=exp.Sub(
                                        this=n, expression=exp.Literal.number(2)))),
                       expression=exp.func("sqrt", exp.Mul(this=n.copy(), expression=exp.Paren(
                           this=exp.Sub(this=n.copy(), expression=exp.Literal.number(1)))),
                           dialect="spark"))
    if name == "any_value" and len(args) >= 1:
        ignore = len(args) > 1 and isinstance(args[1], exp.Boolean) and args[1].this
        return exp.IgnoreNulls(this=exp.First(this=args[0])) if ignore else \
            exp.First(this=args[0])
    if name == "date_from_unix_date":
        return exp.Cast(this=exp.func(name, *args, dialect="spark"),
                        to=exp.DataType.build("DATE"))
    if name == "array_position" and len(args) == 2:
        return exp.func("coalesce", exp.func(name, *args, dialect="spark"),
                        exp.Literal.number(0), dialect="spark")
    if name in ("listagg", "string_agg") and args:
        sep = args[1] if len(args) > 1 else exp.Literal.string("")
        x = exp.Distinct(expressions=[args[0]]) if distinct else args[0]
        return exp.GroupConcat(this=x, separator=sep)
    if name in ("floor", "ceil", "ceiling") and len(args) == 1:
        # Spark's floor and ceil of a double are bigints
        return exp.Cast(this=exp.func("floor" if name == "floor" else "ceil", args[0],
                                      dialect="spark"), to=exp.DataType.build("BIGINT"))
    simple = _simple(name, args, tr)
    if simple is not None:
        return simple
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


def _n(v) -> exp.Expression:
    return exp.Literal.number(v)


def _simple(name: str, a: list[exp.Expression], tr) -> exp.Expression | None:
    """Spark functions DuckDB spells otherwise, as expressions of its own."""
    n = len(a)
    if name == "e" and n == 0:
        return _n(2.718281828459045)
    if name == "pi" and n == 0:
        return _n(3.141592653589793)
    if name in ("sec", "csc") and n == 1:
        return exp.Div(this=_n(1.0), expression=exp.func("cos" if name == "sec" else "sin",
                                                          a[0], dialect="spark"))
    if name == "hypot" and n == 2:
        return exp.func("sqrt", exp.Add(this=exp.Mul(this=a[0], expression=a[0].copy()),
                                        expression=exp.Mul(this=a[1], expression=a[1].copy())),
                        dialect="spark")
    if name == "rint" and n == 1:
        return exp.Cast(this=exp.Anonymous(this="round_even", expressions=[a[0], _n(0)]),
                        to=exp.DataType.build("DOUBLE"))
    if name == "bround":
        return exp.Anonymous(this="round_even", expressions=[a[0], a[1] if n > 1 else _n(0)])
    if name == "pmod" and n == 2:
        r = exp.Paren(this=exp.Mod(this=a[0], expression=a[1]))
        return exp.Case(ifs=[exp.If(this=exp.LT(this=r, expression=_n(0)), true=exp.Mod(
            this=exp.Paren(this=exp.Add(this=r.copy(), expression=a[1].copy())),
            expression=a[1].copy()))], default=r.copy())
    if name == "nanvl" and n == 2:
        return exp.Case(ifs=[exp.If(this=exp.func("isnan", a[0], dialect="spark"),
                                    true=a[1])], default=a[0].copy())
    if name == "zeroifnull" and n == 1:
        return exp.func("coalesce", a[0], _n(0), dialect="spark")
    if name == "nullifzero" and n == 1:
        return exp.Nullif(this=a[0], expression=_n(0))
    if name in ("timestamp_seconds", "timestamp_millis", "timestamp_micros") and n == 1:
        scale = {"timestamp_seconds": 1_000_000, "timestamp_millis": 1000,
                 "timestamp_micros": 1}[name]
        return exp.Anonymous(this="make_timestamp", expressions=[exp.Cast(
            this=exp.Mul(this=exp.Paren(this=a[0]), expression=_n(scale)),
            to=exp.DataType.build("BIGINT"))])
    if name == "arrays_overlap" and n == 2:
        return exp.Anonymous(this="list_has_any", expressions=a)
    if name == "array_union" and n == 2:
        return exp.Anonymous(this="list_distinct", expressions=[
            exp.Anonymous(this="list_concat", expressions=a)])
    if name == "btrim":
        return exp.func("trim", *a, dialect="spark") if n == 1 else \
            exp.Trim(this=a[0], expression=a[1], position="BOTH")
    if name == "find_in_set" and n == 2:
        return exp.func("coalesce", exp.Anonymous(this="list_position", expressions=[
            exp.Anonymous(this="string_split", expressions=[a[1], exp.Literal.string(",")]),
            a[0]]), _n(0), dialect="spark")
    if name == "elt" and n >= 2:
        return exp.Anonymous(this="list_extract", expressions=[
            exp.Array(expressions=a[1:]), a[0]])
    if name in ("try_sum", "try_avg") and n == 1:
        return exp.func(name[4:], a[0], dialect="spark")
    if name in ("try_to_timestamp", "try_to_date") and n == 1:
        return exp.TryCast(this=a[0], to=exp.DataType.build(
            "TIMESTAMP" if name == "try_to_timestamp" else "DATE"))
    if name == "try_mod" and n == 2:
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=a[1], expression=_n(0)),
                                    true=exp.Null())],
                        default=exp.Mod(this=a[0], expression=a[1].copy()))
    if name == "current_timezone" and n == 0 and tr.session is not None:
        return exp.Literal.string(tr.session.conf.get("spark.sql.session.timeZone"))
    if name == "width_bucket" and n == 4:
        v, lo, hi, buckets = a
        inner = exp.Add(this=exp.func("floor", exp.Mul(this=exp.Div(
            this=exp.Paren(this=exp.Sub(this=v, expression=lo)),
            expression=exp.Paren(this=exp.Sub(this=hi, expression=lo.copy()))),
            expression=buckets), dialect="spark"), expression=_n(1))
        return exp.Cast(this=exp.Case(ifs=[
            exp.If(this=exp.LT(this=v.copy(), expression=lo.copy()), true=_n(0)),
            exp.If(this=exp.GTE(this=v.copy(), expression=hi.copy()),
                   true=exp.Add(this=buckets.copy(), expression=_n(1)))], default=inner),
            to=exp.DataType.build("BIGINT"))
    if name in ("transform", "filter") and n == 2 and isinstance(a[1], exp.Lambda) and \
            len(a[1].expressions) == 2:
        # Spark counts a lambda's index from 0, DuckDB from 1
        index = a[1].expressions[1].name
        body = a[1].this.transform(lambda x: exp.Paren(this=exp.Sub(
            this=exp.to_identifier(index), expression=_n(1)))
            if isinstance(x, exp.Identifier) and x.name == index and
            not isinstance(x.parent, exp.Lambda) else x)
        fixed = exp.Lambda(this=body, expressions=a[1].expressions)
        return exp.func(name, a[0], fixed, dialect="spark")
    return None


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
