"""Scoring: BM25 (Lucene's and Elasticsearch's default, k1 1.2, b 0.75)
and classic TF-IDF, over document lengths kept as one byte per document
(Lucene's SmallFloat.intToByte4, which tantivy's field norms share: exact
up to 23, then four significant bits)."""

from __future__ import annotations

import math

import numpy as np

K1, B = 1.2, 0.75
_FREE = 24          # lengths below this are kept exactly


def _long_to_int4(i: int) -> int:
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits, shift = i & 0x07, (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


def encode_length(n: int) -> int:
    return n if n < _FREE else _FREE + _long_to_int4(n - _FREE)


def decode_length(b: int) -> int:
    return b if b < _FREE else _FREE + _int4_to_long(b - _FREE)


# the length each norm byte stands for
LENGTHS = np.array([decode_length(b) for b in range(256)], dtype=np.float64)
_ENCODE_CACHE = np.array([encode_length(n) for n in range(4096)], dtype=np.uint8)


def encode_lengths(lengths: np.ndarray) -> np.ndarray:
    lengths = np.asarray(lengths, dtype=np.int64)
    small = lengths < len(_ENCODE_CACHE)
    if small.all():
        return _ENCODE_CACHE[lengths]
    out = np.empty(len(lengths), np.uint8)
    out[small] = _ENCODE_CACHE[lengths[small]]
    out[~small] = [encode_length(int(n)) for n in lengths[~small]]
    return out


def idf(doc_freq: int, doc_count: int) -> float:
    return math.log(1 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


class BM25:
    name = "BM25"

    def __init__(self, k1: float = K1, b: float = B):
        self.k1, self.b = k1, b

    def weight(self, doc_freq: int, doc_count: int, boost: float = 1.0) -> float:
        return boost * idf(doc_freq, doc_count)

    def score(self, weight: float, freqs: np.ndarray, norms: np.ndarray,
              avgdl: float) -> np.ndarray:
        cache = self.k1 * (1 - self.b + self.b * LENGTHS / max(avgdl, 1e-9))
        f = freqs.astype(np.float32)
        return (weight * f / (f + cache[norms].astype(np.float32))).astype(np.float32)

    def explain(self, weight, freq, norm, avgdl, doc_freq, doc_count, boost=1.0) -> dict:
        dl = float(LENGTHS[norm])
        tf = freq / (freq + self.k1 * (1 - self.b + self.b * dl / avgdl))
        i = idf(doc_freq, doc_count)
        return {"value": boost * i * tf, "description": f"score(freq={freq}), computed as boost "
                "* idf * tf from:", "details": [
                    {"value": boost, "description": "boost", "details": []},
                    {"value": i, "description": "idf, computed as log(1 + (N - n + 0.5) / "
                     "(n + 0.5)) from:", "details": [
                        {"value": doc_freq, "description": "n, number of documents containing "
                         "term", "details": []},
                        {"value": doc_count, "description": "N, total number of documents with "
                         "field", "details": []}]},
                    {"value": tf, "description": "tf, computed as freq / (freq + k1 * (1 - b + "
                     "b * dl / avgdl)) from:", "details": [
                        {"value": freq, "description": "freq", "details": []},
                        {"value": self.k1, "description": "k1", "details": []},
                        {"value": self.b, "description": "b", "details": []},
                        {"value": dl, "description": "dl, length of field", "details": []},
                        {"value": avgdl, "description": "avgdl", "details": []}]}]}


class ClassicTFIDF:
    """Lucene's ClassicSimilarity: sqrt(tf) * idf^2 * 1/sqrt(length)."""
    name = "classic"

    def weight(self, doc_freq: int, doc_count: int, boost: float = 1.0) -> float:
        i = 1 + math.log((doc_count + 1) / (doc_freq + 1))
        return boost * i * i

    def score(self, weight, freqs, norms, avgdl):
        lengths = np.maximum(LENGTHS[norms], 1.0)
        return (weight * np.sqrt(freqs.astype(np.float64)) / np.sqrt(lengths)).astype(np.float32)

    def explain(self, weight, freq, norm, avgdl, doc_freq, doc_count, boost=1.0) -> dict:
        value = float(self.score(weight, np.array([freq]), np.array([norm]), avgdl)[0])
        return {"value": value, "description": f"tfidf(freq={freq}, docFreq={doc_freq}, "
                f"docCount={doc_count})", "details": []}


def make(spec: str | dict | None):
    if spec is None:
        return BM25()
    if isinstance(spec, str):
        spec = {"type": spec}
    kind = spec.get("type", "BM25")
    if kind == "BM25":
        return BM25(float(spec.get("k1", K1)), float(spec.get("b", B)))
    if kind in ("classic", "tfidf"):
        return ClassicTFIDF()
    raise ValueError(f"Unknown Similarity type [{kind}]")
