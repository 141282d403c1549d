"""One shard's search: a request body run over the shard's segments (a
point-in-time list), giving its top hits, total and partial aggregations
for the coordinating node to gather (Elasticsearch's query-and-fetch).

Scores use the shard's own statistics (term and field statistics summed
over its segments), as Elasticsearch's default query_then_fetch does;
a coordinator may pass statistics gathered from every shard instead
(dfs_query_then_fetch)."""

from __future__ import annotations

import bisect
import json

import numpy as np

from stackyard.search import aggs, highlight
from stackyard.search.dsl import Parser
from stackyard.search.mapping import parse_date, to_number
from stackyard.search.query import QueryError
from stackyard.search.schema import Schema

MAX_WINDOW = 10_000          # index.max_result_window
_WHOLE = frozenset({"long", "integer", "short", "byte", "date", "boolean", "unsigned_long"})


class Context:
    def __init__(self, schema: Schema, segments: list, stats: dict | None = None):
        self.schema, self.segments = schema, segments
        self.similarity = schema.similarity
        self._stats = stats or {}
        self._field: dict[str, tuple[int, int, int]] = {}
        self._terms: dict[str, tuple[int, int]] = {}

    def term_stats(self, field: str, term: str) -> tuple[int, int]:
        """(documents with TERM, documents with FIELD) over the shard; asked once
        per segment a query runs on, so summed over the segments only once."""
        key = f"{field}\x00{term}"
        if key in self._stats:
            return tuple(self._stats[key])
        if key not in self._terms:
            df = 0
            for s in self.segments:
                f = s.fields.get(field)
                if f is not None and (i := f.ord(term)) >= 0:
                    df += f.doc_freq(i)
            self._terms[key] = (df, max(self.field_stats(field)[0], df, 1))
        return self._terms[key]

    def field_stats(self, field: str) -> tuple[int, int, int]:
        """(documents with the field, its tokens, its postings) over the shard."""
        if f"{field}\x00" in self._stats:
            return tuple(self._stats[f"{field}\x00"])
        if field not in self._field:
            dc = ttf = postings = 0
            for s in self.segments:
                f = s.fields.get(field)
                if f is not None:
                    dc += f.doc_count
                    ttf += f.sum_ttf
                    postings += len(f.docs)
            self._field[field] = (dc, ttf, postings)
        return self._field[field]

    def avgdl(self, field: str) -> float:
        dc, ttf, postings = self.field_stats(field)
        return (ttf or postings) / dc if dc else 1.0

    def number(self, field: str):
        f = self.schema.get(field)
        if f is not None and f.type == "date":
            return lambda v, upper=False: _date_bound(v, field, upper)
        if f is not None:
            return lambda v, upper=False: to_number(f, v)
        return lambda v, upper=False: float(v)

    def expand_field(self, pattern: str) -> list[str]:
        return self.schema.expand(pattern)


def _date_bound(v, field: str, upper: bool) -> float:
    s = str(v)
    if s.startswith("now"):
        import time
        now = time.time() * 1000
        rest = s[3:].split("/")[0]
        units = {"s": 1e3, "m": 6e4, "h": 3.6e6, "d": 8.64e7, "w": 6.048e8, "M": 2.592e9,
                 "y": 3.1536e10}
        if rest:
            sign = -1 if rest[0] == "-" else 1
            now += sign * float(rest[1:-1]) * units[rest[-1]]
        return now
    return parse_date(v, field)


class Sort:
    """One sort key: a field's first value, the score or the doc number."""

    def __init__(self, spec):
        if isinstance(spec, str):
            name, order, missing = spec, None, None
        else:
            name, opts = next(iter(spec.items()))
            if isinstance(opts, str):
                opts = {"order": opts}
            order, missing = opts.get("order"), opts.get("missing")
        self.name = name
        self.desc = (order or ("desc" if name == "_score" else "asc")) == "desc"
        self.missing_first = missing == "_first"

    def column(self, seg, m, base: int, schema=None) -> tuple[np.ndarray, list]:
        """Ascending-is-first numbers for M's documents, and the raw values."""
        if self.name == "_score":
            v = m.scores.astype(np.float64)
            return (-v if self.desc else v), v.tolist()
        if self.name == "_doc":
            v = (m.docs + base).astype(np.float64)
            return (-v if self.desc else v), v.astype(np.int64).tolist()
        d = seg.dv.get(self.name)
        if d is None:
            inf = -np.inf if self.missing_first else np.inf
            return np.full(len(m), inf), [None] * len(m)
        first = d.first()[m.docs]
        if d.keyword:
            terms = seg.fields[self.name].terms
            raw = [terms[o] if o >= 0 else None for o in first.tolist()]
            v = first.astype(np.float64)
            miss = first < 0
        else:
            f = schema.get(self.name) if schema is not None else None
            whole = f is not None and f.type in _WHOLE
            raw = [None if x != x else int(x) if whole else x for x in first.tolist()]
            v = first.astype(np.float64)
            miss = np.isnan(v)
        v = -v if self.desc else v
        v[miss] = -np.inf if self.missing_first else np.inf
        return v, raw

    def after(self, seg, value, base: int) -> float:
        """A search_after value on this segment's scale of column()."""
        if value is None:
            return -np.inf if self.missing_first else np.inf
        if self.name in ("_score", "_doc"):
            v = float(value)
        else:
            d = seg.dv.get(self.name)
            if d is not None and d.keyword:
                terms = seg.fields[self.name].terms
                i = bisect.bisect_left(terms, str(value))
                v = float(i) if i < len(terms) and terms[i] == str(value) else i - 0.5
            else:
                v = float(value)
        return -v if self.desc else v


def parse_sort(spec) -> list[Sort]:
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str) and ":" in item:
            name, order = item.split(":", 1)
            item = {name: order}
        out.append(Sort(item))
    return out


def _source_filter(src: dict, spec):
    if spec is True or spec is None:
        return src
    if spec is False:
        return None
    if isinstance(spec, str):
        spec = [spec]
    includes = spec if isinstance(spec, list) else spec.get("includes", spec.get("include", []))
    excludes = [] if isinstance(spec, list) else spec.get("excludes", spec.get("exclude", []))
    import fnmatch
    out = {}
    for k, v in src.items():
        if includes and not any(fnmatch.fnmatchcase(k, p) or p.startswith(k + ".")
                                for p in includes):
            continue
        if any(fnmatch.fnmatchcase(k, p) for p in excludes):
            continue
        out[k] = v
    return out


def search(schema: Schema, segments: list, body: dict, stats: dict | None = None,
           shard: int = 0) -> dict:
    body = body or {}
    start = int(body.get("from", 0))
    size = int(body.get("size", 10))
    if start < 0 or size < 0:
        raise QueryError("[from] and [size] must not be negative", "illegal_argument_exception")
    if start + size > MAX_WINDOW and not body.get("_scroll"):
        raise QueryError(f"Result window is too large, from + size must be less than or equal "
                         f"to: [{MAX_WINDOW}] but was [{start + size}]",
                         "illegal_argument_exception")
    body = {k: v for k, v in body.items() if k != "_scroll"}
    ctx = Context(schema, segments, stats)
    parser = Parser(schema)
    query = parser.parse(body.get("query"))
    post = parser.parse(body["post_filter"]) if body.get("post_filter") else None
    sorts = parse_sort(body.get("sort"))
    after = body.get("search_after")
    if after is not None and len(after) != max(len(sorts), 1):
        raise QueryError("search_after has " + str(len(after)) + " value(s) but sort has "
                         + str(len(sorts)), "illegal_argument_exception")
    min_score = body.get("min_score")
    window = start + size
    total, max_score = 0, None
    matched, cands = [], []
    base = 0
    keys = sorts or [Sort("_score")]
    for si, seg in enumerate(segments):
        m = query.run(ctx, seg)
        if len(m):
            m = m.keep(seg.live[m.docs])
        if min_score is not None and len(m):
            m = m.keep(m.scores >= float(min_score))
        matched.append((seg, m))
        if post is not None and len(m):
            pm = post.run(ctx, seg)
            m = m.keep(np.isin(m.docs, pm.docs))
        total += len(m)
        if len(m):
            top = float(m.scores.max())
            max_score = top if max_score is None else max(max_score, top)
        if not len(m) or window == 0:
            base += seg.maxdoc
            continue
        cols = [k.column(seg, m, base, schema) for k in keys]
        arrays = [c[0] for c in cols]
        ok = np.ones(len(m), bool)
        if after is not None:
            greater = np.zeros(len(m), bool)
            equal = np.ones(len(m), bool)
            for k, a, v in zip(keys, arrays, after, strict=True):
                av = k.after(seg, v, base)
                greater |= equal & (a > av)
                equal &= a == av
            ok = greater
        idx = np.flatnonzero(ok)
        if len(idx) > window:
            order = np.lexsort([m.docs[idx]] + [a[idx] for a in arrays[::-1]])[:window]
            idx = idx[order]
        for i in idx.tolist():
            cands.append(([c[1][i] for c in cols], si, int(m.docs[i]), float(m.scores[i])))
        base += seg.maxdoc
    cands = _order(cands, keys)[:window]
    hits = []
    for values, si, doc, score in cands[start:]:
        seg = segments[si]
        hit = {"_id": seg.ids[doc], "_score": None if sorts and not any(
            k.name == "_score" for k in sorts) else score}
        if sorts:
            hit["sort"] = values
        if body.get("seq_no_primary_term"):
            hit["_seq_no"], hit["_primary_term"] = int(seg.seq[doc]), int(seg.term[doc])
        if body.get("version"):
            hit["_version"] = int(seg.version[doc])
        src = json.loads(seg.source(doc))
        if body.get("highlight"):
            hl = highlight.highlight(schema, query, src, body["highlight"])
            if hl:
                hit["highlight"] = hl
        if body.get("explain"):
            hit["_explanation"] = explain(ctx, query, seg, doc, score)
        filtered = _source_filter(src, body.get("_source", True))
        if filtered is not None:
            hit["_source"] = filtered
        hit["_shard_doc"] = [shard, si, doc]
        hits.append(hit)
    out = {"total": total, "max_score": max_score, "hits": hits, "sorted": bool(sorts)}
    if body.get("aggs") or body.get("aggregations"):
        out["aggs"] = aggs.collect(body.get("aggs") or body["aggregations"], ctx, matched)
    return out


def _order(cands: list, keys: list[Sort]) -> list:
    """Candidates from every segment in one order (strings compared as strings)."""
    def key(c):
        out = []
        for k, v in zip(keys, c[0], strict=True):
            missing = v is None
            out.append((missing != k.missing_first, _Rev(v) if k.desc and not missing else v
                        if not missing else 0))
        return (out, c[1], c[2])
    return sorted(cands, key=key)


class _Rev:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return other.v < self.v

    def __eq__(self, other):
        return other.v == self.v


def explain(ctx: Context, query, seg, doc: int, score: float) -> dict:
    details = []
    for field, term in query.terms():
        f = seg.fields.get(field)
        if f is None or (i := f.ord(term)) < 0:
            continue
        docs, freqs = f.postings(i)
        j = int(np.searchsorted(docs, doc))
        if j >= len(docs) or docs[j] != doc:
            continue
        df, dc = ctx.term_stats(field, term)
        norm = int(seg.norms[field][doc]) if field in seg.norms else 1
        e = ctx.similarity.explain(None, int(freqs[j]), norm, ctx.avgdl(field), df, dc)
        details.append({"value": e["value"], "description": f"weight({field}:{term} in {doc})",
                        "details": [e]})
    return {"value": score, "description": "sum of:" if len(details) != 1 else
            details[0]["description"], "details": details}
