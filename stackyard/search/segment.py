"""A segment: an immutable slice of an index (Lucene's segment). Per field,
a sorted term dictionary over postings (doc ids, frequencies, positions);
per document, the field lengths as one norm byte, doc values for sorting
and aggregations, the stored `_source`, and the id, sequence number,
version and primary term of the write that made it. Only the deletes
(`live`) change after a segment is written; they go to a file of their own
per generation, as Lucene's .liv files.

Postings are numpy arrays rather than a compressed byte stream: queries
then score whole postings lists with array arithmetic. On disk each part
is a file in the container of codec.py (zstd, a CRC32C footer):

    _N.si   segment info: fields, document count, per-field statistics
    _N.tim  the term dictionary of every field
    _N.pst  postings: doc ids, frequencies, positions
    _N.dv   norms, doc values, ids' sequence numbers, versions, primary terms
    _N.fdt  stored fields: ids and _source, zstd in blocks
    _N_G.liv  the live documents after deletes of generation G
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import msgpack
import numpy as np
import zstandard

from stackyard.search import codec, similarity
from stackyard.search.mapping import POSITION_GAP, Parsed

SOURCE_BLOCK = 64          # documents per compressed block of stored fields
PARTS = ("si", "tim", "pst", "dv", "fdt")


@dataclass
class FieldIndex:
    terms: list[str]
    starts: np.ndarray                  # int64, len(terms) + 1: each term's postings
    docs: np.ndarray                    # int32
    freqs: np.ndarray                   # int32
    positions: np.ndarray | None        # int32, flat; a posting's run is its freq long
    doc_count: int = 0                  # documents with the field
    sum_ttf: int = 0                    # tokens in the field over all documents
    _ords: dict | None = None
    _pstarts: np.ndarray | None = None

    def ord(self, term: str) -> int:
        if self._ords is None:
            self._ords = {t: i for i, t in enumerate(self.terms)}
        return self._ords.get(term, -1)

    def postings(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.starts[i], self.starts[i + 1]
        return self.docs[a:b], self.freqs[a:b]

    def doc_freq(self, i: int) -> int:
        return int(self.starts[i + 1] - self.starts[i])

    @property
    def pstarts(self) -> np.ndarray:
        if self._pstarts is None:
            self._pstarts = np.concatenate([[0], np.cumsum(self.freqs, dtype=np.int64)])
        return self._pstarts

    def positions_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Term i's (doc per position, position) pairs, flat."""
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        pa, pb = int(self.pstarts[a]), int(self.pstarts[b])
        docs = np.repeat(self.docs[a:b], self.freqs[a:b])
        return docs, self.positions[pa:pb]

    def range(self, lo: str | None, hi: str | None, lo_inc=True, hi_inc=True) -> range:
        a = 0 if lo is None else (bisect.bisect_left(self.terms, lo) if lo_inc
                                  else bisect.bisect_right(self.terms, lo))
        b = len(self.terms) if hi is None else (bisect.bisect_right(self.terms, hi) if hi_inc
                                                else bisect.bisect_left(self.terms, hi))
        return range(a, max(a, b))

    def prefixed(self, prefix: str) -> range:
        a = bisect.bisect_left(self.terms, prefix)
        b = bisect.bisect_left(self.terms, prefix + "\U0010ffff")
        return range(a, b)


@dataclass
class DocValues:
    starts: np.ndarray                  # int64, maxdoc + 1
    values: np.ndarray                  # float64, or int32 term ordinals for keywords
    keyword: bool = False
    _first: np.ndarray | None = None

    def first(self) -> np.ndarray:
        """Each document's first value (NaN or -1 where it has none)."""
        if self._first is None:
            has = self.starts[1:] > self.starts[:-1]
            out = np.full(len(self.starts) - 1, -1 if self.keyword else np.nan,
                          dtype=np.int64 if self.keyword else np.float64)
            out[has] = self.values[self.starts[:-1][has]]
            self._first = out
        return self._first

    def of(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values of DOCS, flat, and the index into DOCS each belongs to."""
        lens = self.starts[docs + 1] - self.starts[docs]
        owner = np.repeat(np.arange(len(docs)), lens)
        return self.values[_ranges(self.starts[docs], lens)], owner


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The concatenation of range(s, s + n) for each (s, n), without a loop."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lens)
    offs = np.repeat(starts - (ends - lens), lens)
    return offs + np.arange(total)


class Segment:
    def __init__(self, name: str, maxdoc: int, fields: dict[str, FieldIndex],
                 norms: dict[str, np.ndarray], dv: dict[str, DocValues], ids: list[str],
                 seq: np.ndarray, version: np.ndarray, term: np.ndarray, sources,
                 live: np.ndarray | None = None, del_gen: int = 0):
        self.name, self.maxdoc = name, maxdoc
        self.fields, self.norms, self.dv = fields, norms, dv
        self.ids, self.seq, self.version, self.term = ids, seq, version, term
        self._sources = sources              # list of bytes, or (blocks, ends) compressed
        self.live = np.ones(maxdoc, bool) if live is None else live
        self.del_gen = del_gen

    @property
    def live_count(self) -> int:
        return int(self.live.sum())

    def doc_of(self, doc_id: str) -> int:
        f = self.fields.get("_id")
        i = f.ord(doc_id) if f else -1
        if i < 0:
            return -1
        docs, _ = f.postings(i)
        for d in docs.tolist()[::-1]:
            if self.live[d]:
                return d
        return -1

    def source(self, doc: int) -> bytes:
        if isinstance(self._sources, list):
            return self._sources[doc]
        return self._block(doc // SOURCE_BLOCK)[doc % SOURCE_BLOCK]

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a segment lives as long as its shard
    def _block(self, b: int) -> list[bytes]:
        blocks, ends = self._sources
        a = 0 if b == 0 else int(ends[b - 1])
        raw = zstandard.ZstdDecompressor().decompress(blocks[a:int(ends[b])])
        return msgpack.unpackb(raw)

    def exists(self, name: str) -> np.ndarray:
        if name in self.norms:
            return self.norms[name] > 0
        if name in self.dv:
            d = self.dv[name]
            return d.starts[1:] > d.starts[:-1]
        return np.zeros(self.maxdoc, bool)

    # -- files ------------------------------------------------------------------------------

    def files(self) -> dict[str, bytes]:
        info = {"name": self.name, "maxdoc": self.maxdoc,
                "fields": {n: [f.doc_count, f.sum_ttf, f.positions is not None]
                           for n, f in self.fields.items()},
                "norms": sorted(self.norms), "dv": {n: d.keyword for n, d in self.dv.items()}}
        tim, pst, dv = {}, {}, {}
        for n, f in self.fields.items():
            tim[f"{n}/blob"], tim[f"{n}/ends"] = codec.strings_to_blob(f.terms)
            tim[f"{n}/starts"] = f.starts
            pst[f"{n}/docs"], pst[f"{n}/freqs"] = f.docs, f.freqs
            if f.positions is not None:
                pst[f"{n}/pos"] = f.positions
        for n, a in self.norms.items():
            dv[f"norm/{n}"] = a
        for n, d in self.dv.items():
            dv[f"dv/{n}/starts"], dv[f"dv/{n}/values"] = d.starts, d.values
        dv["seq"], dv["version"], dv["term"] = self.seq, self.version, self.term
        blob, ends = codec.strings_to_blob(self.ids)
        blocks, block_ends = self._source_blocks()
        fdt = {"ids": blob, "ids_ends": ends, "blocks": blocks, "block_ends": block_ends}
        return {"si": codec.pack({}, info), "tim": codec.pack(tim), "pst": codec.pack(pst),
                "dv": codec.pack(dv), "fdt": codec.pack(fdt)}

    def _source_blocks(self) -> tuple[bytes, np.ndarray]:
        if not isinstance(self._sources, list):
            return self._sources
        cctx = zstandard.ZstdCompressor(level=3)
        out, ends, at = [], [], 0
        for i in range(0, self.maxdoc, SOURCE_BLOCK):
            c = cctx.compress(msgpack.packb(self._sources[i:i + SOURCE_BLOCK]))
            out.append(c)
            at += len(c)
            ends.append(at)
        return b"".join(out), np.array(ends, np.int64)

    def live_file(self) -> bytes:
        return codec.pack({"live": np.packbits(self.live)}, {"maxdoc": self.maxdoc})

    @classmethod
    def load(cls, name: str, read, del_gen: int = 0) -> Segment:
        """READ(suffix) gives a part's bytes; every part's checksum is checked here."""
        parts = {p: codec.unpack(read(p), f"{name}.{p}") for p in PARTS}
        info = parts["si"][0]
        tim, pst, dvs = parts["tim"][1], parts["pst"][1], parts["dv"][1]
        fields = {}
        for n, (doc_count, sum_ttf, has_pos) in info["fields"].items():
            fields[n] = FieldIndex(codec.blob_to_strings(tim[f"{n}/blob"], tim[f"{n}/ends"]),
                                   tim[f"{n}/starts"], pst[f"{n}/docs"], pst[f"{n}/freqs"],
                                   pst.get(f"{n}/pos") if has_pos else None, doc_count, sum_ttf)
        norms = {n: dvs[f"norm/{n}"] for n in info["norms"]}
        dv = {n: DocValues(dvs[f"dv/{n}/starts"], dvs[f"dv/{n}/values"], kw)
              for n, kw in info["dv"].items()}
        fdt = parts["fdt"][1]
        ids = codec.blob_to_strings(fdt["ids"], fdt["ids_ends"])
        live = None
        if del_gen:
            meta, arrays = codec.unpack(read(f"{del_gen}.liv"), f"{name}_{del_gen}.liv")
            live = np.unpackbits(arrays["live"])[:info["maxdoc"]].astype(bool)
        return cls(name, info["maxdoc"], fields, norms, dv, ids, dvs["seq"], dvs["version"],
                   dvs["term"], (fdt["blocks"], fdt["block_ends"]), live, del_gen)


# -- writing ------------------------------------------------------------------------------

class SegmentBuilder:
    """Documents in, one Segment out (Lucene's in-memory indexing chain)."""

    def __init__(self, name: str, analyze):
        self.name = name
        self.analyze = analyze          # (field, text) -> analysis.Tokens
        self.post: dict[str, dict[str, list]] = {}
        self.lengths: dict[str, dict[int, int]] = {}
        self.kw: dict[str, dict[int, list[str]]] = {}
        self.num: dict[str, dict[int, list[float]]] = {}
        self.field_docs: dict[str, int] = {}
        self.ids: list[str] = []
        self.sources: list[bytes] = []
        self.seq: list[int] = []
        self.version: list[int] = []
        self.term: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, doc_id: str, parsed: Parsed, source: bytes, seq: int, version: int,
            term: int) -> int:
        doc = len(self.ids)
        self.ids.append(doc_id)
        self.sources.append(source)
        self.seq.append(seq)
        self.version.append(version)
        self.term.append(term)
        self._terms("_id", doc, [doc_id])
        for name, values in parsed.text.items():
            local: dict[str, list[int]] = {}
            base, length = 0, 0
            for text in values:
                t = self.analyze(name, text)
                if t.positions:
                    for term_, p in zip(t.terms, t.positions, strict=True):
                        local.setdefault(term_, []).append(base + p)
                    length += len(set(t.positions))
                    last = t.positions[-1] if t.positions else -1
                else:
                    for p, term_ in enumerate(t.terms):
                        local.setdefault(term_, []).append(base + p)
                    length += len(t.terms)
                    last = len(t.terms) - 1
                base += last + 1 + POSITION_GAP
            post = self.post.setdefault(name, {})
            for term_, ps in local.items():
                entry = post.get(term_)
                if entry is None:
                    post[term_] = entry = [[], [], []]
                entry[0].append(doc)
                entry[1].append(len(ps))
                entry[2].extend(ps)
            self.lengths.setdefault(name, {})[doc] = length
        for name in parsed.keyword:
            self.field_docs[name] = self.field_docs.get(name, 0) + 1
        self.field_docs["_id"] = len(self.ids)
        for name, values in parsed.keyword.items():
            self._terms(name, doc, values)
            self.kw.setdefault(name, {})[doc] = values
        for name, values in parsed.numbers.items():
            self.num.setdefault(name, {})[doc] = values
        return doc

    def _terms(self, name: str, doc: int, values: list[str]) -> None:
        post = self.post.setdefault(name, {})
        for v in dict.fromkeys(values):
            entry = post.get(v)
            if entry is None:
                post[v] = entry = [[], [], None]
            entry[0].append(doc)
            entry[1].append(1)

    def build(self) -> Segment:
        n = len(self.ids)
        fields = {}
        for name, post in self.post.items():
            terms = sorted(post)
            docs, freqs, pos, starts = [], [], [], [0]
            positional = name in self.lengths
            for t in terms:
                e = post[t]
                docs.extend(e[0])
                freqs.extend(e[1])
                if positional:
                    pos.extend(e[2])
                starts.append(len(docs))
            lengths = self.lengths.get(name)
            fields[name] = FieldIndex(
                terms, np.array(starts, np.int64), np.array(docs, np.int32),
                np.array(freqs, np.int32), np.array(pos, np.int32) if positional else None,
                len(lengths) if lengths is not None else self.field_docs.get(name, 0),
                sum(lengths.values()) if lengths is not None else 0)
        norms = {}
        for name, lengths in self.lengths.items():
            a = np.zeros(n, np.int64)
            a[list(lengths)] = list(lengths.values())
            norms[name] = similarity.encode_lengths(a)
            norms[name][np.array(list(lengths), np.int64)] = np.maximum(
                norms[name][np.array(list(lengths), np.int64)], 1)
        dv = {}
        for name, per_doc in self.num.items():
            dv[name] = _csr(n, per_doc, np.float64)
        for name, per_doc in self.kw.items():
            f = fields[name]
            dv[name] = _csr(n, {d: sorted(f.ord(v) for v in dict.fromkeys(vs))
                                for d, vs in per_doc.items()}, np.int32, keyword=True)
        return Segment(self.name, n, fields, norms, dv, self.ids, np.array(self.seq, np.int64),
                       np.array(self.version, np.int64), np.array(self.term, np.int64),
                       self.sources)


def _csr(n: int, per_doc: dict[int, list], dtype, keyword: bool = False) -> DocValues:
    lens = np.zeros(n, np.int64)
    docs = sorted(per_doc)
    lens[docs] = [len(per_doc[d]) for d in docs]
    starts = np.concatenate([[0], np.cumsum(lens)])
    values = np.array([v for d in docs for v in per_doc[d]], dtype=dtype)
    return DocValues(starts, values, keyword)
