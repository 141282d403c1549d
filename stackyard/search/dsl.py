"""Elasticsearch's query DSL (JSON) into Query objects. Text is analyzed
here, with the field's search analyzer, so a query tree holds only terms."""

from __future__ import annotations

from stackyard.search import query as q
from stackyard.search.query import QueryError

_LEAF_VALUE = {"term": "value", "prefix": "value", "wildcard": "value", "regexp": "value",
               "fuzzy": "value", "match": "query", "match_phrase": "query",
               "match_phrase_prefix": "query", "match_bool_prefix": "query"}


def _one(kind: str, body) -> tuple[str, dict]:
    if not isinstance(body, dict) or len(body) != 1:
        raise QueryError(f"[{kind}] query doesn't support multiple fields, found "
                         f"{sorted(body) if isinstance(body, dict) else body!r}")
    name, spec = next(iter(body.items()))
    if not isinstance(spec, dict):
        spec = {_LEAF_VALUE[kind]: spec}
    return name, spec


def _msm(spec, n: int) -> int:
    if spec is None:
        return 1
    s = str(spec).strip()
    if s.endswith("%"):
        pct = int(s[:-1])
        k = int(n * abs(pct) / 100)
        return max(1, k if pct >= 0 else n - k)
    k = int(s)
    return max(0, k if k >= 0 else n + k)


class Parser:
    def __init__(self, fields):
        self.fields = fields             # Fields: types and analyzers of the index

    def parse(self, body: dict | None) -> q.Query:
        if not body:
            return q.MatchAll()
        if not isinstance(body, dict) or len(body) != 1:
            raise QueryError("[_na] query malformed, must start with start_object"
                             if not isinstance(body, dict) else
                             f"[{sorted(body)[1]}] malformed query, expected [END_OBJECT] "
                             "but found [FIELD_NAME]")
        kind, spec = next(iter(body.items()))
        fn = getattr(self, f"_{kind}", None)
        if fn is None:
            raise QueryError(f"unknown query [{kind}]", "parsing_exception")
        return fn(spec)

    def _list(self, v) -> list[q.Query]:
        if v is None:
            return []
        return [self.parse(x) for x in (v if isinstance(v, list) else [v])]

    def _match_all(self, spec):
        return q.MatchAll(float((spec or {}).get("boost", 1.0)))

    def _match_none(self, spec):
        return q.MatchNone()

    def _term(self, spec):
        name, s = _one("term", spec)
        value = s.get("value")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if s.get("case_insensitive"):
            return q.Regexp(name, _ci(str(value)), float(s.get("boost", 1.0)))
        return q.Term(name, str(value), float(s.get("boost", 1.0)))

    def _terms(self, spec):
        spec = dict(spec)
        boost = float(spec.pop("boost", 1.0))
        if len(spec) != 1:
            raise QueryError("[terms] query does not support multiple fields")
        name, values = next(iter(spec.items()))
        if not isinstance(values, list):
            raise QueryError(f"[terms] query does not support [{name}] as a single value")
        return q.Terms(name, [("true" if v else "false") if isinstance(v, bool) else v
                              for v in values], boost)

    def _ids(self, spec):
        return q.Ids([str(v) for v in spec.get("values", [])], float(spec.get("boost", 1.0)))

    def _exists(self, spec):
        if "field" not in spec:
            raise QueryError("[exists] must be provided with a [field]")
        return q.Exists(spec["field"], float(spec.get("boost", 1.0)))

    def _bool(self, spec):
        n_should = len(spec.get("should", []) if isinstance(spec.get("should"), list)
                       else [spec["should"]] if "should" in spec else [])
        msm = spec.get("minimum_should_match")
        return q.Bool(self._list(spec.get("must")), self._list(spec.get("should")),
                      self._list(spec.get("must_not")), self._list(spec.get("filter")),
                      None if msm is None else _msm(msm, n_should),
                      float(spec.get("boost", 1.0)))

    def _dis_max(self, spec):
        return q.DisMax(self._list(spec.get("queries")), float(spec.get("tie_breaker", 0.0)),
                        float(spec.get("boost", 1.0)))

    def _constant_score(self, spec):
        if "filter" not in spec:
            raise QueryError("[constant_score] requires a 'filter' element")
        return q.ConstantScore(self.parse(spec["filter"]), float(spec.get("boost", 1.0)))

    def _prefix(self, spec):
        name, s = _one("prefix", spec)
        return q.Prefix(name, str(s["value"]), float(s.get("boost", 1.0)))

    def _wildcard(self, spec):
        name, s = _one("wildcard", spec)
        value = str(s.get("value", s.get("wildcard", "")))
        if s.get("case_insensitive"):
            value = value.lower()
        return q.Wildcard(name, value, float(s.get("boost", 1.0)))

    def _regexp(self, spec):
        name, s = _one("regexp", spec)
        return q.Regexp(name, str(s["value"]), float(s.get("boost", 1.0)))

    def _fuzzy(self, spec):
        name, s = _one("fuzzy", spec)
        return q.Fuzzy(name, str(s["value"]), s.get("fuzziness", "AUTO"),
                       int(s.get("prefix_length", 0)), int(s.get("max_expansions", 50)),
                       bool(s.get("transpositions", True)), float(s.get("boost", 1.0)))

    def _range(self, spec):
        name, s = _one("range", spec)
        for k in ("from", "to"):
            if k in s:
                s[{"from": "gte", "to": "lte"}[k]] = s.pop(k)
        return q.Range(name, s.get("gte"), s.get("gt"), s.get("lte"), s.get("lt"),
                       float(s.get("boost", 1.0)))

    def _match(self, spec):
        name, s = _one("match", spec)
        if "query" not in s:
            raise QueryError("[match] requires query value")
        return self.match(name, s["query"], s.get("operator", "or"),
                          s.get("minimum_should_match"), s.get("fuzziness"),
                          float(s.get("boost", 1.0)), s.get("analyzer"),
                          int(s.get("prefix_length", 0)))

    def match(self, name, text, operator="or", msm=None, fuzziness=None, boost=1.0,
              analyzer=None, prefix_length=0) -> q.Query:
        f = self.fields.get(name)
        if f is not None and not f.analyzed:
            if isinstance(text, bool):
                text = "true" if text else "false"
            if f.numeric:
                return q.Range(name, gte=text, lte=text, boost=boost)
            return q.Term(name, str(text), boost)
        words = self.fields.analyze(name, str(text), analyzer).terms
        if not words:
            return q.MatchNone()

        def one(w):
            if fuzziness is not None and auto_ok(w, fuzziness):
                return q.Fuzzy(name, w, fuzziness, prefix_length)
            return q.Term(name, w)
        if len(words) == 1:
            t = one(words[0])
            t.boost = boost
            return t
        clauses = [one(w) for w in words]
        if str(operator).lower() == "and":
            return q.Bool(must=clauses, boost=boost)
        return q.Bool(should=clauses, minimum_should_match=_msm(msm, len(clauses)), boost=boost)

    def _match_phrase(self, spec):
        name, s = _one("match_phrase", spec)
        return self.phrase(name, str(s["query"]), int(s.get("slop", 0)),
                           float(s.get("boost", 1.0)), s.get("analyzer"))

    def phrase(self, name, text, slop=0, boost=1.0, analyzer=None) -> q.Query:
        f = self.fields.get(name)
        if f is not None and not f.analyzed:
            return q.Term(name, text, boost)
        t = self.fields.analyze(name, text, analyzer)
        if not t.terms:
            return q.MatchNone()
        if len(t.terms) == 1:
            return q.Term(name, t.terms[0], boost)
        pos = t.pos()
        return q.Phrase(name, t.terms, [p - pos[0] for p in pos], slop, boost)

    def _match_phrase_prefix(self, spec):
        name, s = _one("match_phrase_prefix", spec)
        t = self.fields.analyze(name, str(s["query"]), s.get("analyzer"))
        if not t.terms:
            return q.MatchNone()
        *head, last = t.terms
        pre = q.Prefix(name, last)
        if not head:
            return pre
        return q.Bool(must=[self.phrase(name, " ".join(head)), pre],
                      boost=float(s.get("boost", 1.0)))

    def _multi_match(self, spec):
        text = spec.get("query")
        if text is None:
            raise QueryError("No text specified for multi_match query")
        names = spec.get("fields") or ["*"]
        kind = spec.get("type", "best_fields")
        parts = []
        for entry in names:
            name, _, boost = str(entry).partition("^")
            for full in self.fields.expand(name):
                b = float(boost or 1.0)
                if kind in ("phrase", "phrase_prefix"):
                    parts.append(self.phrase(full, str(text), int(spec.get("slop", 0)), b))
                else:
                    parts.append(self.match(full, text, spec.get("operator", "or"),
                                            spec.get("minimum_should_match"),
                                            spec.get("fuzziness"), b))
        if not parts:
            return q.MatchNone()
        if kind == "most_fields":
            return q.Bool(should=parts, boost=float(spec.get("boost", 1.0)))
        return q.DisMax(parts, float(spec.get("tie_breaker", 0.0)), float(spec.get("boost", 1.0)))

    def _query_string(self, spec):
        from stackyard.search.querystring import parse_query_string
        if "query" not in spec:
            raise QueryError("[query_string] must be provided with a [query]")
        return parse_query_string(spec["query"], self, spec.get("default_field", "*"),
                                  spec.get("default_operator", "or"),
                                  spec.get("fields"))

    def _simple_query_string(self, spec):
        return self._query_string(spec)

    def _function_score(self, spec):
        inner = self.parse(spec.get("query")) if spec.get("query") else q.MatchAll()
        functions = list(spec.get("functions", []))
        top = {k: spec[k] for k in ("field_value_factor", "weight") if k in spec}
        if top:
            functions.append(top)
        for fn in functions:
            if "filter" in fn:
                fn["filter"] = self.parse(fn["filter"])
        return q.FunctionScore(inner, functions, spec.get("score_mode", "multiply"),
                               spec.get("boost_mode", "multiply"),
                               float(spec.get("max_boost", float("inf"))),
                               spec.get("min_score"), float(spec.get("boost", 1.0)))


def auto_ok(word: str, fuzziness) -> bool:
    return q.auto_fuzziness(word, fuzziness) > 0


def _ci(value: str) -> str:
    import re
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in value)
