"""Lucene's query syntax, as Elasticsearch's query_string takes it:

    title:foo AND "bar baz"~2 -qux fuz~1 pre* (a OR b)^2 year:[2000 TO 2010} n:>=5

Clauses combine as Lucene's classic parser combines them: AND makes both
neighbours required, NOT and `-` prohibit, `+` requires, and the default
operator decides the rest. A syntax error names the position it is at.
"""

from __future__ import annotations

import re

from stackyard.search import query as q
from stackyard.search.query import QueryError

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lp>\() | (?P<rp>\))
  | (?P<op>AND\b|OR\b|NOT\b|&&|\|\|)
  | (?P<plus>\+) | (?P<minus>-) | (?P<bang>!)
  | (?P<range>[\[{](?:[^\]}\\]|\\.)*[\]}])
  | (?P<phrase>"(?:[^"\\]|\\.)*")
  | (?P<term>(?:[^\s()"\[\]{}:^~\\+\-!]|\\.)(?:[^\s()"\[\]{}:^~\\]|\\.)*)
  | (?P<colon>:)
  | (?P<fuzzy>~\d*(?:\.\d+)?)
  | (?P<boost>\^\d+(?:\.\d+)?)
""", re.VERBOSE)

MUST, SHOULD, NOT = "must", "should", "must_not"


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, at = [], 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None:
            raise QueryError(f"Failed to parse query [{text}]: Cannot parse at character "
                             f"{at + 1}: unexpected {text[at]!r}", "query_shard_exception")
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group(), at))
        at = m.end()
    return out


class _Parser:
    def __init__(self, text, dsl, default_field, default_op, fields):
        self.text, self.dsl = text, dsl
        self.toks = _tokens(text)
        self.i = 0
        self.default_fields = fields or [default_field]
        self.default_and = str(default_op).lower() == "and"

    def fail(self, why: str):
        at = self.toks[self.i][2] + 1 if self.i < len(self.toks) else len(self.text) + 1
        raise QueryError(f"Failed to parse query [{self.text}]: Cannot parse at character "
                         f"{at}: {why}", "query_shard_exception")

    def peek(self, kind=None):
        if self.i >= len(self.toks):
            return None
        t = self.toks[self.i]
        return t if kind is None or t[0] == kind else None

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def group(self, field=None) -> q.Query:
        clauses: list[list] = []          # [occur, query]
        conj = None
        while (t := self.peek()) is not None and t[0] != "rp":
            if t[0] == "op" and t[1] in ("AND", "&&", "OR", "||"):
                self.take()
                conj = "and" if t[1] in ("AND", "&&") else "or"
                if not clauses:
                    self.fail(f"{t[1]} with nothing before it")
                continue
            occur = None
            if t[0] in ("plus",):
                self.take()
                occur = MUST
            elif t[0] in ("minus", "bang") or (t[0] == "op" and t[1] == "NOT"):
                self.take()
                occur = NOT
            clause = self.clause(field)
            if occur is None:
                if conj == "and":
                    occur = MUST
                elif conj == "or":
                    occur = SHOULD
                else:
                    occur = MUST if self.default_and else SHOULD
            if conj == "and" and clauses and clauses[-1][0] == SHOULD:
                clauses[-1][0] = MUST
            if conj == "or" and self.default_and and clauses and clauses[-1][0] == MUST:
                clauses[-1][0] = SHOULD
            clauses.append([occur, clause])
            conj = None
        if conj is not None:
            self.fail("a conjunction with nothing after it")
        if len(clauses) == 1 and clauses[0][0] != NOT:
            return clauses[0][1]
        b = q.Bool()
        for occur, clause in clauses:
            getattr(b, occur).append(clause)
        if b.must_not and not b.must and not b.should:
            b.must.append(q.MatchAll())
        return b

    def clause(self, field) -> q.Query:
        t = self.peek()
        if t is None:
            self.fail("the query ends where a term was expected")
        if t[0] == "term" and self.i + 1 < len(self.toks) and self.toks[self.i + 1][0] == "colon":
            self.take()
            self.take()
            return self.clause(_unescape(t[1]))
        if t[0] == "lp":
            self.take()
            inner = self.group(field)
            if not self.peek("rp"):
                self.fail("a '(' is not closed")
            self.take()
            return self._boost(inner)
        if t[0] == "phrase":
            self.take()
            text = _unescape(t[1][1:-1])
            slop = 0
            if (f := self.peek("fuzzy")) is not None:
                self.take()
                slop = int(float(f[1][1:] or 2))
            return self._boost(self._fields(field, lambda n: self.dsl.phrase(n, text, slop)))
        if t[0] == "range":
            self.take()
            return self._boost(self._range(field, t[1]))
        if t[0] == "term":
            self.take()
            return self._boost(self._term(field, t[1]))
        self.fail(f"unexpected {t[1]!r}")

    def _boost(self, query: q.Query) -> q.Query:
        if (b := self.peek("boost")) is not None:
            self.take()
            query.boost = float(b[1][1:]) * (query.boost or 1.0)
        return query

    def _fields(self, field, make) -> q.Query:
        names = [field] if field else self.default_fields
        expanded = [n for name in names for n in self.dsl.fields.expand(name)]
        parts = [make(n) for n in expanded]
        if not parts:
            return q.MatchNone()
        return parts[0] if len(parts) == 1 else q.DisMax(parts)

    def _term(self, field, raw: str) -> q.Query:
        fuzzy = None
        if (f := self.peek("fuzzy")) is not None:
            self.take()
            fuzzy = f[1][1:] or "AUTO"
        for op, key in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt")):
            if raw.startswith(op):
                value = raw[len(op):]
                return self._fields(field, lambda n, k=key, v=value: q.Range(n, **{k: v}))
        text = _unescape(raw)
        if fuzzy is not None:
            return self._fields(field, lambda n: q.Fuzzy(n, text.lower(), fuzzy))
        if "*" in raw or "?" in raw:
            low = text.lower()
            if low == "*":
                return self._fields(field, lambda n: q.Exists(n)) if field else q.MatchAll()
            if low.endswith("*") and "*" not in low[:-1] and "?" not in low:
                return self._fields(field, lambda n: q.Prefix(n, low[:-1]))
            return self._fields(field, lambda n: q.Wildcard(n, low))
        return self._fields(field, lambda n: self.dsl.match(n, text))

    def _range(self, field, raw: str) -> q.Query:
        inner = raw[1:-1]
        parts = re.split(r"\s+TO\s+", inner.strip())
        if len(parts) != 2:
            self.fail(f"a range needs 'lo TO hi', not {raw!r}")
        lo, hi = (None if p == "*" else _unescape(p.strip('"')) for p in parts)
        lo_key = "gte" if raw[0] == "[" else "gt"
        hi_key = "lte" if raw[-1] == "]" else "lt"
        return self._fields(field, lambda n: q.Range(n, **{lo_key: lo, hi_key: hi}))


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def parse_query_string(text: str, dsl, default_field: str = "*", default_op: str = "or",
                       fields: list[str] | None = None) -> q.Query:
    p = _Parser(str(text), dsl, default_field, default_op, fields)
    if not p.toks:
        return q.MatchNone()
    out = p.group()
    if p.peek() is not None:
        p.fail("a ')' with no '(' before it")
    return out
