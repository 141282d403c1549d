"""SQL expression text inside a DataFrame call (`expr("age * 2")`,
`selectExpr`, `filter("age > 3")`): parsed in Spark's dialect, its column
names resolved against the DataFrame's columns."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from stackyard.sparkconnect.errors import ConnectError


def resolve_text(text: str, scope) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(text, read="spark", into=exp.Expression) \
            if False else sqlglot.parse_one(f"SELECT {text}", read="spark").expressions[0]
    except sqlglot.errors.ParseError as e:
        err = e.errors[0] if e.errors else {}
        raise ConnectError("PARSE_SYNTAX_ERROR",
                           f"Syntax error at or near '{err.get('highlight', '')}' in "
                           f"{text!r}", "42601", kind="org.apache.spark.sql.catalyst.parser."
                           "ParseException") from None
    lambdas = {i.name for lam in tree.find_all(exp.Lambda) for i in lam.expressions}

    def fix(node):
        if isinstance(node, exp.Column) and node.name not in lambdas:
            ident = ".".join(p.name for p in node.parts)
            ref, _ = scope.resolve(ident)
            return ref
        return node
    return tree.transform(fix)


def text_name(text: str) -> str:
    """The column name Spark gives an expression string: its own SQL."""
    try:
        tree = sqlglot.parse_one(f"SELECT {text}", read="spark").expressions[0]
    except sqlglot.errors.ParseError:
        return text
    if isinstance(tree, exp.Alias):
        return tree.alias
    return sql_name(tree)


_OPS = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%", exp.EQ: "=",
        exp.NEQ: "!=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.And: "AND",
        exp.Or: "OR", exp.NullSafeEQ: "<=>"}


def sql_name(e: exp.Expression) -> str:
    if isinstance(e, exp.Paren):
        return sql_name(e.this)
    if isinstance(e, exp.Column):
        return e.name
    if isinstance(e, exp.Literal):
        return str(e.this)
    if isinstance(e, exp.Boolean):
        return "true" if e.this else "false"
    if isinstance(e, exp.Null):
        return "NULL"
    if isinstance(e, exp.Star):
        return "*"
    for cls, op in _OPS.items():
        if type(e) is cls:
            return f"({sql_name(e.this)} {op} {sql_name(e.expression)})"
    if isinstance(e, exp.Not):
        return f"(NOT {sql_name(e.this)})"
    if isinstance(e, exp.Neg):
        return f"(- {sql_name(e.this)})"
    if isinstance(e, exp.Cast):
        return f"CAST({sql_name(e.this)} AS {e.to.sql(dialect='spark').upper()})"
    if isinstance(e, exp.Count) and isinstance(e.this, exp.Star):
        return "count(1)"
    if isinstance(e, exp.Func):
        args = [sql_name(a) for a in e.args.values() if isinstance(a, exp.Expression)]
        for a in e.args.values():
            if isinstance(a, list):
                args += [sql_name(x) for x in a if isinstance(x, exp.Expression)]
        name = e.sql_name().lower() if not isinstance(e, exp.Anonymous) else e.name
        return f"{name}({', '.join(args)})"
    return e.sql(dialect="spark")
