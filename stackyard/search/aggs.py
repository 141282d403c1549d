"""Aggregations, in two halves as Elasticsearch runs them: `collect` on
each shard over its matching documents (per segment, from doc values)
gives a partial result; `reduce` on the coordinating node merges the
shards' partials into the response.

A terms aggregation asks each shard for shard_size buckets (size * 1.5 +
10), so a term that is frequent overall but not in one shard's top list can
be undercounted; the response says by how much at most
(doc_count_error_upper_bound), as Elasticsearch's does."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from stackyard.search.mapping import format_date
from stackyard.search.matches import Matches
from stackyard.search.query import QueryError

METRICS = ("min", "max", "avg", "sum", "value_count", "stats")
HLL_P = 14
EXACT_LIMIT = 3000


def _kind(spec: dict) -> tuple[str, dict, dict]:
    subs = spec.get("aggs") or spec.get("aggregations") or {}
    kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise QueryError(f"Expected one aggregation type, found {kinds}")
    return kinds[0], spec[kinds[0]] or {}, subs


def _values(seg, m: Matches, field: str):
    """(values, owner index into M) of FIELD's doc values; keywords as strings."""
    d = seg.dv.get(field)
    if d is None:
        if field in seg.fields and field in seg.norms:
            raise QueryError(f"Fielddata is disabled on [{field}] in [index]. Text fields are "
                             "not optimised for operations that require per-document field "
                             "data; use a keyword field instead", "illegal_argument_exception")
        return None, None
    vals, owner = d.of(m.docs)
    return (vals, owner, seg.fields[field].terms) if d.keyword else (vals, owner, None)


# -- collect -------------------------------------------------------------------------------

def collect(specs: dict, ctx, matched: list[tuple[object, Matches]]) -> dict:
    return {name: _collect(spec, ctx, matched) for name, spec in specs.items()}


def _collect(spec: dict, ctx, matched):
    kind, opts, subs = _kind(spec)
    fn = _COLLECT.get(kind)
    if fn is None:
        raise QueryError(f"Unknown aggregation type [{kind}]", "parsing_exception")
    return fn(opts, subs, ctx, matched)


def _buckets_by(matched, keyer) -> dict:
    """key -> [(seg, Matches)] of the documents having it (each once per key)."""
    out: dict = {}
    for seg, m in matched:
        if not len(m):
            continue
        keys, owner = keyer(seg, m)
        if keys is None:
            continue
        if not len(keys):
            continue
        pairs = np.unique(np.stack([owner.astype(np.float64), keys.astype(np.float64)]), axis=1) \
            if not isinstance(keys, list) else None
        if pairs is None:
            continue
        for k in np.unique(pairs[1]):
            idx = pairs[0][pairs[1] == k].astype(np.int64)
            out.setdefault(float(k), []).append((seg, Matches(m.docs[idx], m.scores[idx])))
    return out


def _sub(subs, ctx, parts):
    return collect(subs, ctx, parts) if subs else {}


def _terms(opts, subs, ctx, matched):
    field = opts.get("field")
    if field is None:
        raise QueryError("Required [field] for terms aggregation")
    size = int(opts.get("size", 10))
    shard_size = int(opts.get("shard_size", size * 1.5 + 10))
    counts: dict = {}
    numeric = False
    for seg, m in matched:
        if not len(m):
            continue
        got = _values(seg, m, field)
        if got[0] is None:
            continue
        vals, owner, terms = got
        if terms is not None:
            c = np.bincount(vals, minlength=len(terms))
            for o in np.flatnonzero(c).tolist():
                counts[terms[o]] = counts.get(terms[o], 0) + int(c[o])
        else:
            numeric = True
            u, c = np.unique(np.unique(np.stack([owner, vals]), axis=1)[1], return_counts=True)
            for k, n in zip(u.tolist(), c.tolist(), strict=True):
                counts[k] = counts.get(k, 0) + n
    ordered = _order_buckets(list(counts.items()), opts.get("order"))
    top = ordered[:shard_size]
    out = []
    for key, n in top:
        parts = []
        if subs:
            for seg, m in matched:
                got = _values(seg, m, field) if len(m) else (None,)
                if got[0] is None:
                    continue
                vals, owner, terms = got
                if terms is not None:
                    try:
                        o = terms.index(key) if len(terms) < 64 else _ord(seg, field, key)
                    except ValueError:
                        continue
                    idx = np.unique(owner[vals == o])
                else:
                    idx = np.unique(owner[vals == key])
                if len(idx):
                    parts.append((seg, Matches(m.docs[idx], m.scores[idx])))
        out.append([key, n, _sub(subs, ctx, parts)])
    total = sum(counts.values())
    return {"t": "terms", "buckets": out, "other": total - sum(n for _, n, _ in out),
            "last": top[-1][1] if len(ordered) > shard_size and top else 0, "numeric": numeric}


def _ord(seg, field, key):
    o = seg.fields[field].ord(key)
    if o < 0:
        raise ValueError(key)
    return o


def _order_buckets(items: list, order) -> list:
    order = order or {"_count": "desc"}
    if isinstance(order, list):
        order = order[0]
    (by, direction), = order.items()
    if by in ("_key", "_term"):
        return sorted(items, key=lambda kv: kv[0], reverse=direction == "desc")
    if by == "_count":
        if direction == "desc":
            return sorted(items, key=lambda kv: (-kv[1], kv[0]))
        return sorted(items, key=lambda kv: (kv[1], kv[0]))
    raise QueryError(f"Invalid aggregation order path [{by}]")


def _hist_key(opts, date: bool):
    if not date:
        interval = float(opts.get("interval", 0))
        if interval <= 0:
            raise QueryError("[interval] must be >0 for histogram aggregation [histogram]")
        offset = float(opts.get("offset", 0))
        return lambda v: np.floor((v - offset) / interval) * interval + offset
    cal = opts.get("calendar_interval") or opts.get("interval")
    fixed = opts.get("fixed_interval")
    if fixed:
        ms = _duration(fixed)
        return lambda v: np.floor(v / ms) * ms
    unit = {"minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "D", "1d": "D",
            "week": "W", "1w": "W", "month": "M", "1M": "M", "quarter": "Q", "1q": "Q",
            "year": "Y", "1y": "Y"}.get(str(cal))
    if unit is None:
        raise QueryError(f"The supplied interval [{cal}] could not be parsed as a calendar "
                         "interval.", "illegal_argument_exception")
    if unit == "W":
        day = 86_400_000.0
        return lambda v: (np.floor(v / day) - ((np.floor(v / day) + 3) % 7)) * day
    if unit == "Q":
        def quarter(v):
            months = v.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
            return ((months // 3) * 3).astype("datetime64[M]").astype(
                "datetime64[ms]").astype(np.float64)
        return quarter
    return lambda v: v.astype("datetime64[ms]").astype(f"datetime64[{unit}]").astype(
        "datetime64[ms]").astype(np.float64)


def _duration(s: str) -> float:
    units = {"ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6, "d": 8.64e7}
    for u in ("ms", "s", "m", "h", "d"):
        if str(s).endswith(u) and str(s)[:-len(u)].replace(".", "").isdigit():
            return float(str(s)[:-len(u)]) * units[u]
    raise QueryError(f"failed to parse setting [fixed_interval] with value [{s}]")


def _histogram(opts, subs, ctx, matched, date=False):
    field = opts.get("field")
    keyf = _hist_key(opts, date)

    def keyer(seg, m):
        got = _values(seg, m, field)
        if got[0] is None or got[2] is not None:
            return None, None
        return keyf(got[0]), got[1]
    buckets = _buckets_by(matched, keyer)
    return {"t": "date_histogram" if date else "histogram",
            # a list, not a map: our RPC's msgpack takes only string keys
            "buckets": [[k, sum(len(m) for _, m in parts), _sub(subs, ctx, parts)]
                        for k, parts in buckets.items()]}


def _range(opts, subs, ctx, matched):
    field = opts.get("field")
    out = []
    for r in opts.get("ranges", []):
        lo, hi = r.get("from"), r.get("to")
        parts = []
        for seg, m in matched:
            got = _values(seg, m, field) if len(m) else (None,)
            if got[0] is None:
                continue
            vals, owner, _ = got
            ok = np.ones(len(vals), bool)
            if lo is not None:
                ok &= vals >= float(lo)
            if hi is not None:
                ok &= vals < float(hi)
            idx = np.unique(owner[ok])
            if len(idx):
                parts.append((seg, Matches(m.docs[idx], m.scores[idx])))
        out.append([r, sum(len(m) for _, m in parts), _sub(subs, ctx, parts)])
    return {"t": "range", "buckets": out}


def _filter(opts, subs, ctx, matched):
    from stackyard.search.dsl import Parser
    q = Parser(ctx.schema).parse(opts)
    parts = []
    for seg, m in matched:
        f = q.run(ctx, seg)
        keep = np.isin(m.docs, f.docs)
        parts.append((seg, m.keep(keep)))
    return {"t": "filter", "count": sum(len(m) for _, m in parts), "subs": _sub(subs, ctx, parts)}


def _metric(kind):
    def collect_metric(opts, subs, ctx, matched):
        field = opts.get("field")
        n, total, lo, hi = 0, 0.0, math.inf, -math.inf
        for seg, m in matched:
            got = _values(seg, m, field) if len(m) else (None,)
            if got[0] is None:
                continue
            vals = got[0].astype(np.float64) if got[2] is None else got[0]
            if not len(vals):
                continue
            n += len(vals)
            if got[2] is None:
                total += float(vals.sum())
                lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
        f = ctx.schema.get(field)
        return {"t": kind, "n": n, "sum": total, "min": lo, "max": hi,
                "date": f is not None and f.type == "date"}
    return collect_metric


def _hash64(values: list) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(),
                                    "big") for v in values], dtype=np.uint64)


def _cardinality(opts, subs, ctx, matched):
    field = opts.get("field")
    seen: set = set()
    for seg, m in matched:
        got = _values(seg, m, field) if len(m) else (None,)
        if got[0] is None:
            continue
        vals, _, terms = got
        u = np.unique(vals)
        seen.update(terms[o] for o in u.tolist()) if terms is not None else \
            seen.update(float(x) for x in u.tolist())
    hashes = _hash64([_norm_key(v) for v in seen])
    if len(hashes) <= EXACT_LIMIT:
        return {"t": "cardinality", "set": hashes.tolist()}
    return {"t": "cardinality", "hll": _registers(hashes).tobytes()}


def _norm_key(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _registers(hashes: np.ndarray) -> np.ndarray:
    m = 1 << HLL_P
    idx = (hashes >> np.uint64(64 - HLL_P)).astype(np.int64)
    rest = (hashes << np.uint64(HLL_P)) | np.uint64(1 << (HLL_P - 1))
    # rank: leading zeros of the remaining bits, plus one
    rank = np.zeros(len(hashes), np.uint8)
    r = rest.copy()
    for bit in range(64 - HLL_P + 1):
        top = (r >> np.uint64(63)) == 0
        rank += (top & (rank == bit)).astype(np.uint8)
        r = r << np.uint64(1)
    rank += 1
    reg = np.zeros(m, np.uint8)
    np.maximum.at(reg, idx, rank)
    return reg


def _hll_estimate(reg: np.ndarray) -> int:
    m = len(reg)
    alpha = 0.7213 / (1 + 1.079 / m)
    est = alpha * m * m / float(np.sum(2.0 ** -reg.astype(np.float64)))
    zeros = int((reg == 0).sum())
    if est <= 2.5 * m and zeros:
        est = m * math.log(m / zeros)
    return int(round(est))


def _top_hits(opts, subs, ctx, matched):
    from stackyard.search.searcher import _source_filter
    size = int(opts.get("size", 3))
    cands = []
    for seg, m in matched:
        if not len(m):
            continue
        order = np.lexsort((m.docs, -m.scores))[:size]
        for i in order.tolist():
            cands.append((float(m.scores[i]), seg, int(m.docs[i])))
    cands.sort(key=lambda c: -c[0])
    hits = [{"_id": seg.ids[d], "_score": s,
             "_source": _source_filter(json.loads(seg.source(d)), opts.get("_source", True))}
            for s, seg, d in cands[:size]]
    return {"t": "top_hits", "n": sum(len(m) for _, m in matched), "hits": hits}


_COLLECT = {"terms": _terms, "histogram": _histogram, "range": _range, "filter": _filter,
            "date_histogram": lambda o, s, c, m: _histogram(o, s, c, m, True),
            "cardinality": _cardinality, "top_hits": _top_hits,
            **{k: _metric(k) for k in METRICS}}


# -- reduce ----------------------------------------------------------------------------------

def reduce(specs: dict, partials: list[dict]) -> dict:
    return {name: _reduce(spec, [p[name] for p in partials if name in p])
            for name, spec in specs.items()}


def _reduce(spec: dict, parts: list[dict]) -> dict:
    kind, opts, subs = _kind(spec)
    if kind == "terms":
        counts, sub_parts = {}, {}
        for p in parts:
            for key, n, s in p["buckets"]:
                counts[key] = counts.get(key, 0) + n
                sub_parts.setdefault(key, []).append(s)
        size = int(opts.get("size", 10))
        ordered = _order_buckets(list(counts.items()), opts.get("order"))
        ordered = [kv for kv in ordered if kv[1] >= int(opts.get("min_doc_count", 1))]
        top = ordered[:size]
        total = sum(sum(n for _, n, _ in p["buckets"]) + p["other"] for p in parts)
        buckets = []
        for key, n in top:
            b = {"key": _num_key(key) if isinstance(key, float) else key, "doc_count": n}
            if isinstance(key, float) and opts.get("format") is None and _is_date(parts):
                b["key_as_string"] = format_date(key)
            if subs:
                b.update(reduce(subs, sub_parts[key]))
            buckets.append(b)
        return {"doc_count_error_upper_bound": sum(p["last"] for p in parts),
                "sum_other_doc_count": total - sum(n for _, n in top), "buckets": buckets}
    if kind in ("histogram", "date_histogram"):
        return _reduce_hist(kind, opts, subs, parts)
    if kind == "range":
        out = []
        for i, (r, _, _) in enumerate(parts[0]["buckets"] if parts else []):
            n = sum(p["buckets"][i][1] for p in parts)
            lo, hi = r.get("from"), r.get("to")
            b = {"key": r.get("key") or f"{'*' if lo is None else float(lo)}-"
                 f"{'*' if hi is None else float(hi)}"}
            if lo is not None:
                b["from"] = float(lo)
            if hi is not None:
                b["to"] = float(hi)
            b["doc_count"] = n
            if subs:
                b.update(reduce(subs, [p["buckets"][i][2] for p in parts]))
            out.append(b)
        return {"buckets": out}
    if kind == "filter":
        out = {"doc_count": sum(p["count"] for p in parts)}
        if subs:
            out.update(reduce(subs, [p["subs"] for p in parts]))
        return out
    if kind in METRICS:
        n = sum(p["n"] for p in parts)
        total = sum(p["sum"] for p in parts)
        lo = min((p["min"] for p in parts), default=math.inf)
        hi = max((p["max"] for p in parts), default=-math.inf)
        date = any(p["date"] for p in parts)
        if kind == "stats":
            return {"count": n, "min": lo if n else None, "max": hi if n else None,
                    "avg": total / n if n else None, "sum": total}
        value = {"min": lo if n else None, "max": hi if n else None, "sum": total,
                 "avg": total / n if n else None, "value_count": n}[kind]
        out = {"value": value}
        if date and value is not None and kind in ("min", "max", "avg"):
            out["value_as_string"] = format_date(value)
        return out
    if kind == "cardinality":
        if all("set" in p for p in parts):
            union = set().union(*(p["set"] for p in parts))
            if len(union) <= EXACT_LIMIT:
                return {"value": len(union)}
        reg = np.zeros(1 << HLL_P, np.uint8)
        for p in parts:
            r = np.frombuffer(p["hll"], np.uint8) if "hll" in p else \
                _registers(np.array(p["set"], np.uint64))
            reg = np.maximum(reg, r)
        return {"value": _hll_estimate(reg)}
    if kind == "top_hits":
        size = int(opts.get("size", 3))
        hits = sorted((h for p in parts for h in p["hits"]), key=lambda h: -h["_score"])[:size]
        return {"hits": {"total": {"value": sum(p["n"] for p in parts), "relation": "eq"},
                         "max_score": hits[0]["_score"] if hits else None, "hits": hits}}
    raise QueryError(f"Unknown aggregation type [{kind}]")


def _is_date(parts) -> bool:
    return False


def _num_key(k: float):
    return int(k) if k.is_integer() else k


def _reduce_hist(kind, opts, subs, parts):
    merged: dict = {}
    for p in parts:
        for key, n, s in p["buckets"]:
            entry = merged.setdefault(float(key), [0, []])
            entry[0] += n
            entry[1].append(s)
    keys = sorted(merged)
    min_count = int(opts.get("min_doc_count", 0))
    if min_count == 0 and keys:
        keys = _fill(kind, opts, keys)
    out = []
    for k in keys:
        n, s = merged.get(k, [0, []])
        if n < min_count:
            continue
        b = {"key": k if kind == "histogram" else int(k), "doc_count": n}
        if kind == "date_histogram":
            b = {"key_as_string": format_date(k), **b}
        if subs:
            b.update(reduce(subs, s) if s else reduce(subs, [collect_empty(subs)]))
        out.append(b)
    return {"buckets": out}


def collect_empty(subs: dict) -> dict:
    return collect(subs, None, [])


def _fill(kind, opts, keys: list[float]) -> list[float]:
    keyf = _hist_key(opts, kind == "date_histogram")
    lo, hi = keys[0], keys[-1]
    if kind == "histogram":
        interval = float(opts["interval"])
        n = int(round((hi - lo) / interval))
        return [lo + i * interval for i in range(n + 1)] if n < 100_000 else keys
    out, k = [], lo
    step = min(3_600_000.0, _duration(opts["fixed_interval"])) if opts.get("fixed_interval") \
        else 3_600_000.0
    while k <= hi and len(out) < 100_000:
        out.append(k)
        nxt = k + step
        while float(keyf(np.array([nxt]))[0]) == k:
            nxt += step
        k = float(keyf(np.array([nxt]))[0])
    return out
