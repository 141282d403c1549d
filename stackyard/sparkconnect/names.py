"""The name Spark gives a column it was not told to name: `age`,
`(age + 1)`, `sum(age)`, `count(1)`, `CASE WHEN ... END`,
`CAST(age AS STRING)`: what `df.columns`, `Row(...)` and `show()` print."""

from __future__ import annotations

from pyspark.sql.connect.proto import expressions_pb2 as E

from stackyard.sparkconnect import types
from stackyard.sparkconnect.expressions import literal_text, split_identifier

_INFIX = {"==": "=", "<=>": "<=>", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=",
          "+": "+", "-": "-", "*": "*", "/": "/", "%": "%", "and": "AND", "or": "OR",
          "|": "|", "&": "&", "^": "^"}
_WORDS = {"like": "LIKE", "ilike": "ilike"}
# functions Spark names in capitals (its math expressions, RLIKE and kin)
_UPPER = {"acos", "acosh", "asin", "asinh", "atan", "atanh", "atan2", "cbrt", "ceil",
          "cos", "cosh", "cot", "csc", "degrees", "exp", "expm1", "floor", "hypot",
          "log10", "log1p", "log2", "power", "pow", "radians", "sec", "signum", "sin",
          "sinh", "sqrt", "tan", "tanh", "rlike", "regexp_like", "regexp", "pi", "e",
          "spark_partition_id"}
_UPPER_AS = {"pow": "POWER"}
_TRIM = {"trim": "BOTH", "ltrim": "LEADING", "rtrim": "TRAILING"}
_RENAMED = {"mean": "avg", "isNaN": "isnan", "startsWith": "startswith",
            "endsWith": "endswith", "count_distinct": "count", "countDistinct": "count",
            "sumDistinct": "sum", "sum_distinct": "sum", "pow": "power",
            "approxCountDistinct": "approx_count_distinct"}


def name_of(e: E.Expression) -> str:
    kind = e.WhichOneof("expr_type")
    if kind == "alias":
        return e.alias.name[0] if e.alias.name else name_of(e.alias.expr)
    if kind == "unresolved_attribute":
        return split_identifier(e.unresolved_attribute.unparsed_identifier)[-1]
    if kind == "literal":
        return literal_text(e.literal)
    if kind == "unresolved_star":
        return "*"
    if kind == "expression_string":
        from stackyard.sparkconnect.sqltext import text_name
        return text_name(e.expression_string.expression)
    if kind == "cast":
        if e.cast.expr.WhichOneof("expr_type") == "unresolved_attribute":
            return name_of(e.cast.expr)        # Spark keeps a cast column's own name
        to = e.cast.type_str if e.cast.HasField("type_str") else types.to_sql(e.cast.type)
        return f"CAST({name_of(e.cast.expr)} AS {to.upper()})"
    if kind == "sort_order":
        return name_of(e.sort_order.child)
    if kind == "unresolved_extract_value":
        x = e.unresolved_extract_value
        key = x.extraction
        return f"{name_of(x.child)}[{name_of(key)}]"
    if kind == "window":
        return name_of(e.window.window_function) + " OVER (" + _window(e.window) + ")"
    if kind == "common_inline_user_defined_function":
        f = e.common_inline_user_defined_function
        return f"{f.function_name}({', '.join(name_of(a) for a in f.arguments)})"
    if kind == "lambda_function":
        f = e.lambda_function
        args = ", ".join(".".join(v.name_parts) for v in f.arguments)
        return f"lambdafunction({name_of(f.function)}, {args})"
    if kind == "unresolved_named_lambda_variable":
        return ".".join(e.unresolved_named_lambda_variable.name_parts)
    if kind in ("unresolved_function", "call_function"):
        f = getattr(e, kind)
        return _function(f.function_name, list(f.arguments),
                         getattr(f, "is_distinct", False))
    return kind or "col"


def _function(name: str, args: list[E.Expression], distinct: bool) -> str:
    parts = [name_of(a) for a in args]
    if name in _INFIX and len(args) == 2:
        return f"({parts[0]} {_INFIX[name]} {parts[1]})"
    if name in _WORDS and len(args) == 2:
        return f"{parts[0]} {_WORDS[name]} {parts[1]}"
    if name in ("not", "!") and len(args) == 1:
        return f"(NOT {parts[0]})"
    if name == "negative":
        return f"negative({parts[0]})"
    if name == "positive":
        return f"(+ {parts[0]})"
    if name in ("round", "bround") and len(args) == 1:
        return f"{name}({parts[0]}, 0)"
    if name == "regexp_replace" and len(args) == 3:
        return f"regexp_replace({', '.join(parts)}, 1)"
    if name in ("regexp_extract_all",) and len(args) == 2:
        return f"{name}({', '.join(parts)}, 1)"
    if name == "regexp_instr" and len(args) == 2:
        return f"{name}({', '.join(parts)}, 0)"
    if name == "uuid":
        return "uuid()"
    if name == "dateadd":
        return f"date_add({', '.join(parts)})"
    if name in ("isNull", "isnull"):
        return f"({parts[0]} IS NULL)"
    if name in ("isNotNull", "isnotnull"):
        return f"({parts[0]} IS NOT NULL)"
    if name == "in":
        return f"({parts[0]} IN ({', '.join(parts[1:])}))"
    if name == "when":
        text = "CASE"
        for i in range(0, len(parts) - 1, 2):
            text += f" WHEN {parts[i]} THEN {parts[i + 1]}"
        if len(parts) % 2:
            text += f" ELSE {parts[-1]}"
        return text + " END"
    if name == "count" and len(args) == 1 and (args[0].WhichOneof("expr_type") ==
                                                "unresolved_star" or parts[0] == "*"):
        return "count(1)"
    if name == "~":
        return f"~{parts[0]}"
    if name in ("explode", "explode_outer"):
        return "col"
    if name in ("current_database", "current_schema"):
        return "current_schema()"
    if name in ("count_distinct", "countDistinct") or (distinct and name == "count"):
        return f"count(DISTINCT {', '.join(parts)})"
    if name in ("sum_distinct", "sumDistinct") or (distinct and name == "sum"):
        return f"sum(DISTINCT {', '.join(parts)})"
    if name == "between" and len(args) == 3:
        return f"(({parts[0]} >= {parts[1]}) AND ({parts[0]} <= {parts[2]}))"
    if name in ("first", "last", "first_value", "last_value", "any_value") and len(args) == 2:
        return f"{name}({parts[0]})"
    if name in _TRIM and len(args) == 2:
        return f"TRIM({_TRIM[name]} {parts[0]} FROM {parts[1]})"
    if name in ("substr", "substring") and len(args) == 2:
        return f"{name}({parts[0]}, {parts[1]}, 2147483647)"
    if name in ("listagg", "string_agg") and len(args) == 1:
        return f"{name}({'DISTINCT ' if distinct else ''}{parts[0]}, NULL)"
    if name == "log" and len(args) == 1:
        return f"ln({parts[0]})"
    if name in ("ceil", "floor") and len(args) == 2:
        return f"{name}({', '.join(parts)})"
    if name in _UPPER or (name == "log" and len(args) == 2):
        return f"{_UPPER_AS.get(name, name.upper())}({', '.join(parts)})"
    return f"{_RENAMED.get(name, name)}({', '.join(parts)})"


def _window(w: E.Expression.Window) -> str:
    bits = []
    if w.partition_spec:
        bits.append("PARTITION BY " + ", ".join(name_of(p) for p in w.partition_spec))
    if w.order_spec:
        orders = []
        for o in w.order_spec:
            so = o
            desc = so.direction == E.Expression.SortOrder.SORT_DIRECTION_DESCENDING
            nf = so.null_ordering == E.Expression.SortOrder.SORT_NULLS_FIRST \
                if so.null_ordering else not desc
            orders.append(f"{name_of(so.child)} {'DESC' if desc else 'ASC'} "
                          f"NULLS {'FIRST' if nf else 'LAST'}")
        bits.append("ORDER BY " + ", ".join(orders))
    if w.HasField("frame_spec"):
        fr = w.frame_spec
        kind = "ROWS" if fr.frame_type == 1 else "RANGE"
        bits.append(f"{kind} BETWEEN {_bound(fr.lower, 'PRECEDING')} AND "
                    f"{_bound(fr.upper, 'FOLLOWING')}")
    elif w.order_spec:
        bits.append("RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW")
    else:
        bits.append("ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING")
    return " ".join(bits)


def _bound(b, side: str) -> str:
    if b.HasField("current_row") and b.current_row:
        return "CURRENT ROW"
    if b.HasField("unbounded") and b.unbounded:
        return f"UNBOUNDED {side}"
    text = name_of(b.value)
    if text.startswith("-"):
        return f"{text[1:]} PRECEDING"
    return f"{text} FOLLOWING"
