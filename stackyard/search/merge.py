"""Merging segments: which to merge (Lucene's TieredMergePolicy, as a pure
decision over segment sizes) and the merge itself, which rewrites postings,
norms, doc values and stored fields of the live documents into one new
segment with array operations, without analyzing anything again. Deleted
documents are dropped here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackyard.search.segment import DocValues, FieldIndex, Segment, _ranges


@dataclass
class TieredPolicy:
    """Segments of about equal size merge ten at a time; a segment past
    max_segment_docs is left alone unless it is more than deletes_pct_allowed
    deleted (Lucene: segments_per_tier 10, max_merge_at_once 10, 5 GB, 20%)."""
    segments_per_tier: int = 10
    max_merge_at_once: int = 10
    floor_docs: int = 1000
    max_segment_docs: int = 5_000_000
    deletes_pct_allowed: float = 20.0

    def pick(self, segments: list[tuple[str, int, int]]) -> list[str] | None:
        """SEGMENTS as (name, maxdoc, live); the names to merge next, or None."""
        for name, maxdoc, live in segments:
            if maxdoc and 100.0 * (maxdoc - live) / maxdoc > self.deletes_pct_allowed \
                    and maxdoc >= self.max_segment_docs:
                return [name]
        eligible = sorted(((max(live, self.floor_docs), name) for name, maxdoc, live in segments
                           if live < self.max_segment_docs // 2), reverse=True)
        if len(eligible) <= self.segments_per_tier:
            dead = [name for name, maxdoc, live in segments
                    if maxdoc and 100.0 * (maxdoc - live) / maxdoc > self.deletes_pct_allowed]
            return dead[:self.max_merge_at_once] or None
        best, best_score = None, None
        for start in range(len(eligible) - self.max_merge_at_once + 1):
            group = eligible[start:start + self.max_merge_at_once]
            if sum(s for s, _ in group) > self.max_segment_docs:
                continue
            skew = group[0][0] / max(sum(s for s, _ in group), 1)   # lower: more even
            score = skew * (sum(s for s, _ in group) ** 0.05)
            if best_score is None or score < best_score:
                best, best_score = [n for _, n in group], score
        return best


def merge(name: str, segments: list[Segment]) -> Segment:
    remaps, bases, base = [], [], 0
    for s in segments:
        remap = np.full(s.maxdoc, -1, np.int64)
        remap[s.live] = np.arange(base, base + s.live_count)
        remaps.append(remap)
        bases.append(base)
        base += s.live_count
    n = base
    names = sorted({f for s in segments for f in s.fields})
    fields = {f: _merge_field([(s.fields.get(f), r) for s, r in zip(segments, remaps,
                                                                   strict=True)])
              for f in names}
    norms = {}
    for f in sorted({f for s in segments for f in s.norms}):
        norms[f] = np.concatenate([s.norms[f][s.live] if f in s.norms
                                   else np.zeros(s.live_count, np.uint8) for s in segments])
    dv = {}
    for f in sorted({f for s in segments for f in s.dv}):
        dv[f] = _merge_dv(f, segments, fields)
    live_docs = [np.flatnonzero(s.live) for s in segments]
    ids = [s.ids[d] for s, docs in zip(segments, live_docs, strict=True) for d in docs.tolist()]
    sources = [s.source(d) for s, docs in zip(segments, live_docs, strict=True)
               for d in docs.tolist()]
    cat = lambda attr: np.concatenate([getattr(s, attr)[s.live] for s in segments]) \
        if segments else np.zeros(0, np.int64)  # noqa: E731
    for f in fields.values():
        if f.doc_count == 0 and f.terms:
            f.doc_count = len(np.unique(f.docs))
    return Segment(name, n, fields, norms, dv, ids, cat("seq"), cat("version"), cat("term"),
                   sources)


def _merge_field(parts: list[tuple[FieldIndex | None, np.ndarray]]) -> FieldIndex:
    present = [(f, r) for f, r in parts if f is not None]
    terms = sorted(set().union(*(f.terms for f, _ in present)))
    gord = {t: i for i, t in enumerate(terms)}
    positional = all(f.positions is not None for f, _ in present)
    tcol, dcol, fcol, pcol = [], [], [], []
    for f, remap in present:
        local_to_global = np.array([gord[t] for t in f.terms], np.int64)
        tcol_s = np.repeat(local_to_global, np.diff(f.starts))
        newdoc = remap[f.docs]
        keep = newdoc >= 0
        tcol.append(tcol_s[keep])
        dcol.append(newdoc[keep])
        fcol.append(f.freqs[keep])
        if positional:
            pcol.append((f.positions, f.pstarts[:-1][keep], f.freqs[keep]))
    t = np.concatenate(tcol) if tcol else np.zeros(0, np.int64)
    d = np.concatenate(dcol) if dcol else np.zeros(0, np.int64)
    fr = np.concatenate(fcol) if fcol else np.zeros(0, np.int32)
    order = np.lexsort((d, t))
    positions = None
    if positional:
        flat = np.concatenate([p for p, _, _ in pcol]) if pcol else np.zeros(0, np.int32)
        offset, starts = 0, []
        for p, s, _ in pcol:
            starts.append(s + offset)
            offset += len(p)
        pstart = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        positions = flat[_ranges(pstart[order], fr[order].astype(np.int64))].astype(np.int32)
    counts = np.bincount(t, minlength=len(terms)) if len(terms) else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    docs, freqs = d[order].astype(np.int32), fr[order].astype(np.int32)
    sum_ttf = sum(f.sum_ttf for f, _ in present) if positional else 0
    if positional:      # tokens of deleted documents no longer count
        sum_ttf = int(freqs.sum())
    doc_count = len(np.unique(docs)) if len(docs) else 0
    return FieldIndex(terms, starts, docs, freqs, positions, doc_count, sum_ttf)


def _merge_dv(name: str, segments: list[Segment], fields: dict[str, FieldIndex]) -> DocValues:
    starts_parts, values_parts, keyword = [], [], False
    for s in segments:
        live = np.flatnonzero(s.live)
        d = s.dv.get(name)
        if d is None:
            starts_parts.append(np.zeros(len(live), np.int64))
            continue
        keyword = d.keyword
        lens = d.starts[live + 1] - d.starts[live]
        vals = d.values[_ranges(d.starts[live], lens)]
        if d.keyword:
            local = s.fields[name].terms
            gmap = np.array([fields[name].ord(t) for t in local], np.int32)
            vals = gmap[vals] if len(vals) else vals.astype(np.int32)
        starts_parts.append(lens)
        values_parts.append(vals)
    lens = np.concatenate(starts_parts) if starts_parts else np.zeros(0, np.int64)
    values = np.concatenate(values_parts) if values_parts else \
        np.zeros(0, np.int32 if keyword else np.float64)
    return DocValues(np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), values, keyword)
