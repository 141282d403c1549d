"""Phrase matching over positions. An exact phrase (slop 0) is a join of
(doc, position - offset) keys across the phrase's terms, all in numpy. A
sloppy phrase allows the terms to be moved SLOP positions in all (Lucene's
edit distance of positions): per candidate document, the smallest window
of shifted positions holding one of each term, counted 1 / (1 + width) as
Lucene's sloppy frequency."""

from __future__ import annotations

import heapq

import numpy as np

_SHIFT = np.int64(1 << 32)


def matches(f, ords: list[int], offsets: list[int], slop: int) -> tuple[np.ndarray, np.ndarray]:
    """(docs, phrase frequencies) of the phrase of term ordinals ORDS at
    relative positions OFFSETS in field index F."""
    order = sorted(range(len(ords)), key=lambda i: f.doc_freq(ords[i]))
    docs = None
    for i in order:
        d, _ = f.postings(ords[i])
        docs = d if docs is None else np.intersect1d(docs, d, assume_unique=True)
        if not len(docs):
            return docs.astype(np.int64), np.zeros(0, np.float32)
    if slop == 0:
        return _exact(f, ords, offsets, docs)
    return _sloppy(f, ords, offsets, docs, slop)


def _keys(f, o: int, offset: int, docs: np.ndarray) -> np.ndarray:
    pdocs, pos = f.positions_of(o)
    keep = np.isin(pdocs, docs)
    return pdocs[keep].astype(np.int64) * _SHIFT + (pos[keep].astype(np.int64) - offset + 1024)


def _exact(f, ords, offsets, docs):
    keys = None
    for o, off in zip(ords, offsets, strict=True):
        k = np.unique(_keys(f, o, off, docs))
        keys = k if keys is None else np.intersect1d(keys, k, assume_unique=True)
        if not len(keys):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
    d = keys // _SHIFT
    uniq, counts = np.unique(d, return_counts=True)
    return uniq, counts.astype(np.float32)


def _sloppy(f, ords, offsets, docs, slop):
    per_term = []
    for o, off in zip(ords, offsets, strict=True):
        pdocs, pos = f.positions_of(o)
        keep = np.isin(pdocs, docs)
        per_term.append((pdocs[keep], pos[keep].astype(np.int64) - off))
    out_docs, out_freqs = [], []
    cursors = [0] * len(per_term)
    for d in docs.tolist():
        lists = []
        for t, (pd, ps) in enumerate(per_term):
            a = cursors[t]
            b = a + int(np.searchsorted(pd[a:], d, side="right"))
            lists.append(ps[a:b].tolist())
            cursors[t] = b
        freq = _windows(lists, slop)
        if freq > 0:
            out_docs.append(d)
            out_freqs.append(freq)
    return np.array(out_docs, np.int64), np.array(out_freqs, np.float32)


def _windows(lists: list[list[int]], slop: int) -> float:
    """Sum of 1 / (1 + width) over the minimal windows (one shifted position
    of each term) whose width is at most SLOP."""
    heap = [(lst[0], t, 0) for t, lst in enumerate(lists)]
    heapq.heapify(heap)
    hi = max(lst[0] for lst in lists)
    freq = 0.0
    while True:
        lo, t, i = heap[0]
        width = hi - lo
        if width <= slop:
            freq += 1.0 / (1.0 + width)
        if i + 1 >= len(lists[t]):
            return freq
        nxt = lists[t][i + 1]
        heapq.heapreplace(heap, (nxt, t, i + 1))
        hi = max(hi, nxt)
