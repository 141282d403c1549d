"""Queries (Lucene's Query objects), built from Elasticsearch's query DSL
or programmatically, each run against one segment with the shard's
statistics (Context) and giving Matches. Multi-term queries (prefix,
wildcard, regexp, range on strings) expand over the sorted term dictionary
and score constantly, as Elasticsearch rewrites them."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from stackyard.search import phrase
from stackyard.search.matches import Matches, exclude, intersect, union


class QueryError(ValueError):
    """A query Elasticsearch would refuse; KIND is its error type."""

    def __init__(self, msg: str, kind: str = "parsing_exception"):
        super().__init__(msg)
        self.kind = kind


class Query(ABC):
    boost: float = 1.0

    @abstractmethod
    def run(self, ctx, seg) -> Matches:
        """The documents of segment SEG this query matches, with their scores."""

    def terms(self) -> list[tuple[str, str]]:
        """(field, term) pairs a highlighter should mark."""
        return []


@dataclass
class MatchAll(Query):
    boost: float = 1.0

    def run(self, ctx, seg):
        return Matches(np.arange(seg.maxdoc, dtype=np.int64),
                       np.full(seg.maxdoc, self.boost, np.float32))


@dataclass
class MatchNone(Query):
    def run(self, ctx, seg):
        return Matches.empty()


@dataclass
class Term(Query):
    field: str
    value: str
    boost: float = 1.0

    def run(self, ctx, seg):
        f = seg.fields.get(self.field)
        if f is None:
            if self.field in seg.dv:
                return Range(self.field, gte=self.value, lte=self.value,
                             boost=self.boost).run(ctx, seg)
            return Matches.empty()
        i = f.ord(self.value)
        if i < 0:
            return Matches.empty()
        docs, freqs = f.postings(i)
        df, dc = ctx.term_stats(self.field, self.value)
        sim = ctx.similarity
        w = sim.weight(df, dc, self.boost)
        norms = seg.norms.get(self.field)
        if norms is None:
            norms = np.ones(seg.maxdoc, np.uint8)
        return Matches(docs, sim.score(w, freqs, norms[docs], ctx.avgdl(self.field)))

    def terms(self):
        return [(self.field, self.value)]


@dataclass
class Terms(Query):
    field: str
    values: list
    boost: float = 1.0

    def run(self, ctx, seg):
        parts = [Term(self.field, str(v)).run(ctx, seg) for v in self.values]
        return union(parts).constant(self.boost)

    def terms(self):
        return [(self.field, str(v)) for v in self.values]


@dataclass
class Bool(Query):
    must: list[Query] = field(default_factory=list)
    should: list[Query] = field(default_factory=list)
    must_not: list[Query] = field(default_factory=list)
    filter: list[Query] = field(default_factory=list)
    minimum_should_match: int | None = None
    boost: float = 1.0

    def run(self, ctx, seg):
        required = [q.run(ctx, seg) for q in self.must]
        filters = [q.run(ctx, seg) for q in self.filter]
        msm = self.minimum_should_match
        if msm is None:
            msm = 0 if (self.must or self.filter) else 1
        out = None
        for m in sorted(required, key=len):
            out = m if out is None else intersect(out, m)
        for m in sorted(filters, key=len):
            out = m.constant(0.0) if out is None else intersect(out, m, score_b=False)
        if self.should:
            shoulds = [q.run(ctx, seg) for q in self.should]
            if msm > 0:
                opt = union(shoulds, msm)
                out = opt if out is None else intersect(out, opt)
            elif out is not None:
                opt = union(shoulds)
                if len(opt):
                    # optional clauses add their score where they match
                    _, io, ip = np.intersect1d(out.docs, opt.docs, assume_unique=True,
                                               return_indices=True)
                    scores = out.scores.copy()
                    scores[io] += opt.scores[ip]
                    out = Matches(out.docs, scores)
        if out is None:
            out = MatchAll().run(ctx, seg) if self.must_not else Matches.empty()
            if self.must_not:
                out = out.constant(0.0)
        for q in self.must_not:
            out = exclude(out, q.run(ctx, seg))
        if not self.must and not self.should and len(out):
            out = out.constant(0.0)
        return out.scaled(self.boost)

    def terms(self):
        return [t for q in self.must + self.should + self.filter for t in q.terms()]


@dataclass
class DisMax(Query):
    queries: list[Query]
    tie_breaker: float = 0.0
    boost: float = 1.0

    def run(self, ctx, seg):
        return union([q.run(ctx, seg) for q in self.queries], 1, "max",
                     self.tie_breaker).scaled(self.boost)

    def terms(self):
        return [t for q in self.queries for t in q.terms()]


@dataclass
class ConstantScore(Query):
    query: Query
    boost: float = 1.0

    def run(self, ctx, seg):
        return self.query.run(ctx, seg).constant(self.boost)

    def terms(self):
        return self.query.terms()


class _Expanding(Query):
    """A query that stands for every term of the dictionary it accepts."""
    field: str

    @abstractmethod
    def accept(self, f) -> range | list[int]:
        """The ordinals of the terms of field index F this query stands for."""

    def run(self, ctx, seg):
        f = seg.fields.get(self.field)
        if f is None:
            return Matches.empty()
        ords = self.accept(f)
        if not len(ords):
            return Matches.empty()
        if isinstance(ords, range) and len(ords) > 64:
            docs = np.unique(f.docs[f.starts[ords.start]:f.starts[ords.stop]])
        else:
            docs = np.unique(np.concatenate([f.postings(i)[0] for i in ords]))
        return Matches(docs, np.full(len(docs), self.boost, np.float32))

    def expanded(self, seg) -> list[str]:
        f = seg.fields.get(self.field)
        return [f.terms[i] for i in self.accept(f)][:256] if f else []


@dataclass
class Prefix(_Expanding):
    field: str
    value: str
    boost: float = 1.0

    def accept(self, f):
        return f.prefixed(self.value)


def wildcard_regex(pattern: str) -> re.Pattern:
    out = []
    for c in pattern:
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return re.compile("".join(out), re.DOTALL)


@dataclass
class Wildcard(_Expanding):
    field: str
    value: str
    boost: float = 1.0

    def accept(self, f):
        literal = re.split(r"[*?]", self.value, maxsplit=1)[0]
        rx = wildcard_regex(self.value)
        cand = f.prefixed(literal) if literal else range(len(f.terms))
        return [i for i in cand if rx.fullmatch(f.terms[i])]


@dataclass
class Regexp(_Expanding):
    field: str
    value: str
    boost: float = 1.0

    def accept(self, f):
        try:
            rx = re.compile(self.value, re.DOTALL)
        except re.error as exc:
            raise QueryError(f"failed to parse regexp [{self.value}]: {exc}",
                             "query_shard_exception") from None
        return [i for i in range(len(f.terms)) if rx.fullmatch(f.terms[i])]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (transpositions count one), or
    limit + 1 as soon as it must exceed LIMIT."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        lo = cur[0]
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] \
                    and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            lo = min(lo, v)
        if lo > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def auto_fuzziness(term: str, spec) -> int:
    if spec in (None, "AUTO", "auto") or str(spec).upper().startswith("AUTO"):
        lo, hi = 3, 6
        if ":" in str(spec):
            lo, hi = (int(x) for x in str(spec).split(":", 1)[1].split(","))
        n = len(term)
        return 0 if n < lo else 1 if n < hi else 2
    return min(int(float(spec)), 2)


@dataclass
class Fuzzy(Query):
    field: str
    value: str
    fuzziness: object = "AUTO"
    prefix_length: int = 0
    max_expansions: int = 50
    transpositions: bool = True
    boost: float = 1.0

    def candidates(self, f) -> list[tuple[int, int]]:
        k = auto_fuzziness(self.value, self.fuzziness)
        prefix = self.value[:self.prefix_length]
        cand = f.prefixed(prefix) if prefix else range(len(f.terms))
        out = []
        for i in cand:
            t = f.terms[i]
            if abs(len(t) - len(self.value)) <= k:
                d = edit_distance(self.value, t, k)
                if d <= k:
                    out.append((d, -f.doc_freq(i), i))
        out.sort()
        return [(d, i) for d, _, i in out[:self.max_expansions]]

    def run(self, ctx, seg):
        f = seg.fields.get(self.field)
        if f is None:
            return Matches.empty()
        parts = []
        for d, i in self.candidates(f):
            boost = self.boost * (1.0 - d / max(min(len(f.terms[i]), len(self.value)), 1))
            parts.append(Term(self.field, f.terms[i], max(boost, 0.01)).run(ctx, seg))
        return union(parts, 1, "max")

    def terms(self):
        return [(self.field, self.value)]


@dataclass
class Phrase(Query):
    field: str
    words: list[str]
    offsets: list[int]
    slop: int = 0
    boost: float = 1.0

    def run(self, ctx, seg):
        f = seg.fields.get(self.field)
        if f is None or not self.words:
            return Matches.empty()
        if f.positions is None:
            raise QueryError(f"field:[{self.field}] was indexed without position data; "
                             "cannot run PhraseQuery", "illegal_state_exception")
        ords = [f.ord(w) for w in self.words]
        if min(ords) < 0:
            return Matches.empty()
        docs, freqs = phrase.matches(f, ords, self.offsets, self.slop)
        if not len(docs):
            return Matches.empty()
        w = sum(ctx.similarity.weight(*ctx.term_stats(self.field, t)) for t in self.words)
        norms = seg.norms.get(self.field, np.ones(seg.maxdoc, np.uint8))
        return Matches(docs, ctx.similarity.score(w * self.boost, freqs, norms[docs],
                                                  ctx.avgdl(self.field)))

    def terms(self):
        return [(self.field, w) for w in self.words]


@dataclass
class Range(Query):
    field: str
    gte: object = None
    gt: object = None
    lte: object = None
    lt: object = None
    boost: float = 1.0

    def run(self, ctx, seg):
        d = seg.dv.get(self.field)
        if d is not None and not d.keyword:
            conv = ctx.number(self.field)
            v = d.values
            ok = np.ones(len(v), bool)
            if self.gte is not None:
                ok &= v >= conv(self.gte)
            if self.gt is not None:
                ok &= v > conv(self.gt)
            if self.lte is not None:
                ok &= v <= conv(self.lte, True)
            if self.lt is not None:
                ok &= v < conv(self.lt)
            owner = np.repeat(np.arange(seg.maxdoc), np.diff(d.starts))
            docs = np.unique(owner[ok])
            return Matches(docs, np.full(len(docs), self.boost, np.float32))
        f = seg.fields.get(self.field)
        if f is None:
            return Matches.empty()
        lo = self.gte if self.gte is not None else self.gt
        hi = self.lte if self.lte is not None else self.lt
        r = f.range(None if lo is None else str(lo), None if hi is None else str(hi),
                    self.gt is None, self.lt is None)
        if not len(r):
            return Matches.empty()
        docs = np.unique(f.docs[f.starts[r.start]:f.starts[r.stop]])
        return Matches(docs, np.full(len(docs), self.boost, np.float32))


@dataclass
class Exists(Query):
    field: str
    boost: float = 1.0

    def run(self, ctx, seg):
        mask = np.zeros(seg.maxdoc, bool)
        for name in ctx.expand_field(self.field):
            mask |= seg.exists(name)
            f = seg.fields.get(name)
            if f is not None and name not in seg.norms:
                mask[np.unique(f.docs)] = True
        return Matches.mask(mask, self.boost)


@dataclass
class Ids(Query):
    values: list[str]
    boost: float = 1.0

    def run(self, ctx, seg):
        docs = sorted({d for v in self.values if (d := seg.doc_of(str(v))) >= 0})
        return Matches(np.array(docs, np.int64), np.full(len(docs), self.boost, np.float32))


@dataclass
class FunctionScore(Query):
    query: Query
    functions: list[dict]
    score_mode: str = "multiply"
    boost_mode: str = "multiply"
    max_boost: float = float("inf")
    min_score: float | None = None
    boost: float = 1.0

    def run(self, ctx, seg):
        m = self.query.run(ctx, seg)
        if not len(m):
            return m
        values = []
        for fn in self.functions:
            values.append(_function(fn, ctx, seg, m.docs))
        if values:
            stack = np.vstack(values)
            fv = {"multiply": stack.prod(0), "sum": stack.sum(0), "avg": stack.mean(0),
                  "max": stack.max(0), "min": stack.min(0),
                  "first": stack[0]}.get(self.score_mode)
            if fv is None:
                raise QueryError(f"illegal score_mode [{self.score_mode}]")
            fv = np.minimum(fv, self.max_boost)
            q = m.scores.astype(np.float64)
            combined = {"multiply": q * fv, "replace": fv, "sum": q + fv, "avg": (q + fv) / 2,
                        "max": np.maximum(q, fv), "min": np.minimum(q, fv)}.get(self.boost_mode)
            if combined is None:
                raise QueryError(f"illegal boost_mode [{self.boost_mode}]")
            m = Matches(m.docs, combined)
        if self.min_score is not None:
            m = m.keep(m.scores >= self.min_score)
        return m.scaled(self.boost)

    def terms(self):
        return self.query.terms()


_MODIFIERS = {"none": lambda v: v, "log": np.log10, "log1p": lambda v: np.log10(v + 1),
              "log2p": lambda v: np.log10(v + 2), "ln": np.log, "ln1p": np.log1p,
              "ln2p": lambda v: np.log(v + 2), "square": np.square, "sqrt": np.sqrt,
              "reciprocal": lambda v: 1.0 / v}


def _function(fn: dict, ctx, seg, docs: np.ndarray) -> np.ndarray:
    if "filter" in fn:      # a function applies only where its filter matches
        inside = np.isin(docs, fn["filter"].run(ctx, seg).docs)
        rest = {k: v for k, v in fn.items() if k != "filter"}
        return np.where(inside, _function(rest, ctx, seg, docs), 1.0)
    weight = float(fn.get("weight", 1.0))
    if "field_value_factor" in fn:
        spec = fn["field_value_factor"]
        d = seg.dv.get(spec["field"])
        vals = d.first()[docs].astype(np.float64) if d is not None and not d.keyword \
            else np.full(len(docs), np.nan)
        missing = spec.get("missing")
        if np.isnan(vals).any():
            if missing is None:
                raise QueryError(f"Missing value for field [{spec['field']}]",
                                 "illegal_argument_exception")
            vals = np.where(np.isnan(vals), float(missing), vals)
        mod = _MODIFIERS.get(spec.get("modifier", "none"))
        if mod is None:
            raise QueryError(f"Illegal modifier [{spec.get('modifier')}]")
        with np.errstate(all="ignore"):
            out = mod(vals * float(spec.get("factor", 1.0)))
        return out * weight
    if set(fn) <= {"weight"}:
        out = np.full(len(docs), weight)
    else:
        raise QueryError(f"function_score: unsupported function {sorted(set(fn) - {'filter'})}")
    return out
