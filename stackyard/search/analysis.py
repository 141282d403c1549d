"""Analysis: text into terms, as Lucene's analysis chain (character filters,
a tokenizer, token filters) and Elasticsearch's named analyzers.

A token stream is kept as parallel lists (terms, positions, start and end
offsets) rather than one object per token: indexing a million documents
spends its time here, and lists of strings are what Python does fastest.
Offsets are computed only when a caller asks for them (highlighting, or a
field indexed with offsets).

The standard tokenizer follows Unicode word boundaries (UAX #29) in the
common cases: runs of letters, digits and underscores, kept together across
an apostrophe, period or colon between two of them ("can't", "3.14",
"e.g"). Ideographs are one token each, as UAX #29 makes them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

import snowballstemmer

MAX_TOKEN = 255      # the standard tokenizer's max_token_length


class AnalysisError(ValueError):
    """An analyzer, tokenizer or filter that does not exist or is misconfigured."""


@dataclass
class Tokens:
    terms: list[str]
    positions: list[int] = field(default_factory=list)   # empty: 0, 1, 2, ...
    starts: list[int] | None = None
    ends: list[int] | None = None

    def pos(self) -> list[int]:
        return self.positions or list(range(len(self.terms)))

    def keep(self, mask: list[bool]) -> Tokens:
        pos = self.pos()
        return Tokens([t for t, k in zip(self.terms, mask, strict=True) if k],
                      [p for p, k in zip(pos, mask, strict=True) if k],
                      None if self.starts is None else
                      [s for s, k in zip(self.starts, mask, strict=True) if k],
                      None if self.ends is None else
                      [e for e, k in zip(self.ends, mask, strict=True) if k])


# -- tokenizers ---------------------------------------------------------------------------

_IDEO = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_STANDARD = re.compile(rf"[{_IDEO}]|(?:(?![{_IDEO}])\w)+(?:['\u2019.:](?:(?![{_IDEO}])\w)+)*")
_LETTERS = re.compile(r"[^\W\d_]+")
_WHITESPACE = re.compile(r"\S+")


class Tokenizer:
    def __init__(self, pattern: re.Pattern | None, max_len: int = MAX_TOKEN, split=False,
                 group: int = -1):
        self.pattern, self.max_len, self.split, self.group = pattern, max_len, split, group

    def __call__(self, text: str, offsets: bool) -> Tokens:
        if self.pattern is None:                      # keyword: the whole input, one token
            return Tokens([text], [0], [0] if offsets else None, [len(text)] if offsets else None)
        if self.split:                                # pattern tokenizer: the pattern separates
            terms, starts, ends, at = [], [], [], 0
            for m in self.pattern.finditer(text):
                if m.start() > at:
                    terms.append(text[at:m.start()])
                    starts.append(at)
                    ends.append(m.start())
                at = max(at, m.end())
            if at < len(text):
                terms.append(text[at:])
                starts.append(at)
                ends.append(len(text))
            return Tokens(terms, [], starts if offsets else None, ends if offsets else None)
        if not offsets and self.group < 0:
            terms = self.pattern.findall(text)
            if self.max_len and any(len(t) > self.max_len for t in terms):
                terms = [t[i:i + self.max_len] for t in terms
                         for i in range(0, len(t), self.max_len)]
            return Tokens(terms)
        terms, starts, ends = [], [], []
        g = max(self.group, 0)
        for m in self.pattern.finditer(text):
            t, s = m.group(g), m.start(g)
            for i in range(0, len(t), self.max_len or len(t) or 1):
                piece = t[i:i + self.max_len] if self.max_len else t
                terms.append(piece)
                starts.append(s + i)
                ends.append(s + i + len(piece))
        return Tokens(terms, [], starts, ends)


def make_tokenizer(spec: dict | str) -> Tokenizer:
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.get("type")
    if kind == "standard":
        return Tokenizer(_STANDARD, int(spec.get("max_token_length", MAX_TOKEN)))
    if kind in ("letter", "lowercase"):
        return Tokenizer(_LETTERS, 0)
    if kind == "whitespace":
        return Tokenizer(_WHITESPACE, int(spec.get("max_token_length", MAX_TOKEN)))
    if kind == "keyword":
        return Tokenizer(None)
    if kind == "pattern":
        try:
            pattern = re.compile(spec.get("pattern", r"\W+"),
                                 re.IGNORECASE if "CASE_INSENSITIVE" in spec.get("flags", "")
                                 else 0)
        except re.error as exc:
            raise AnalysisError(f"pattern tokenizer: bad pattern: {exc}") from None
        group = int(spec.get("group", -1))
        return Tokenizer(pattern, 0, split=group < 0, group=group)
    raise AnalysisError(f"unknown tokenizer type [{kind}]")


# -- token filters ------------------------------------------------------------------------

ENGLISH_STOP = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split())
_STOP_LISTS = {"_english_": ENGLISH_STOP, "_none_": frozenset()}
_STEM_LANGS = {"english": "english", "light_english": "porter", "porter": "porter",
               "german": "german", "french": "french", "spanish": "spanish",
               "italian": "italian", "dutch": "dutch", "portuguese": "portuguese",
               "russian": "russian", "swedish": "swedish", "norwegian": "norwegian",
               "danish": "danish", "finnish": "finnish"}


def _fold(term: str) -> str:
    if term.isascii():
        return term
    decomposed = unicodedata.normalize("NFKD", term)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _map(fn):
    def apply(t: Tokens) -> Tokens:
        return Tokens([fn(x) for x in t.terms], t.positions, t.starts, t.ends)
    return apply


def _stemmer(language: str):
    name = _STEM_LANGS.get(language.lower())
    if name is None:
        raise AnalysisError(f"stemmer: no language [{language}]; one of {sorted(_STEM_LANGS)}")
    stem = snowballstemmer.stemmer(name).stemWord
    return _map(functools.lru_cache(maxsize=200_000)(stem))


def _stop(words) -> callable:
    def apply(t: Tokens) -> Tokens:
        if not any(x in words for x in t.terms):
            return t
        return t.keep([x not in words for x in t.terms])
    return apply


def _ngrams(lo: int, hi: int, edge: bool):
    if lo < 1 or hi < lo:
        raise AnalysisError(f"ngram: min_gram {lo} and max_gram {hi} must be 1 <= min <= max")

    def apply(t: Tokens) -> Tokens:
        out = Tokens([], [], [] if t.starts is not None else None,
                     [] if t.ends is not None else None)
        for i, (term, p) in enumerate(zip(t.terms, t.pos(), strict=True)):
            for s in range(1 if edge else len(term)):
                for n in range(lo, hi + 1):
                    if s + n > len(term):
                        break
                    out.terms.append(term[s:s + n])
                    out.positions.append(p)
                    if out.starts is not None:
                        out.starts.append(t.starts[i])
                        out.ends.append(t.ends[i])
        return out
    return apply


def make_filter(spec: dict | str):
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.get("type")
    if kind == "lowercase":
        return _map(str.lower)
    if kind == "uppercase":
        return _map(str.upper)
    if kind == "asciifolding":
        return _map(_fold)
    if kind == "trim":
        return _map(str.strip)
    if kind == "stop":
        words = spec.get("stopwords", "_english_")
        if isinstance(words, str):
            if words not in _STOP_LISTS:
                raise AnalysisError(f"stop: unknown stopwords list [{words}]")
            words = _STOP_LISTS[words]
        return _stop(frozenset(words))
    if kind in ("snowball", "stemmer", "porter_stem", "kstem"):
        lang = spec.get("language", spec.get("name", "english" if kind != "porter_stem"
                                             else "porter"))
        return _stemmer(lang)
    if kind in ("ngram", "nGram"):
        return _ngrams(int(spec.get("min_gram", 1)), int(spec.get("max_gram", 2)), False)
    if kind in ("edge_ngram", "edgeNGram"):
        return _ngrams(int(spec.get("min_gram", 1)), int(spec.get("max_gram", 2)), True)
    if kind == "length":
        lo, hi = int(spec.get("min", 0)), int(spec.get("max", 1 << 31))

        def length(t: Tokens) -> Tokens:
            return t.keep([lo <= len(x) <= hi for x in t.terms])
        return length
    raise AnalysisError(f"unknown token filter type [{kind}]")


# -- character filters --------------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>")


def make_char_filter(spec: dict | str):
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.get("type")
    if kind == "html_strip":   # same length, so offsets still point into the original
        return lambda s: _TAG.sub(lambda m: " " * len(m.group()), s)
    if kind == "mapping":
        pairs = [m.split("=>", 1) for m in spec.get("mappings", [])]
        pairs = [(a.strip(), b.strip()) for a, b in pairs]
        return lambda s: functools.reduce(lambda acc, ab: acc.replace(*ab), pairs, s)
    raise AnalysisError(f"unknown char filter type [{kind}]")


# -- analyzers ----------------------------------------------------------------------------

class Analyzer:
    def __init__(self, tokenizer: Tokenizer, filters=(), char_filters=()):
        self.tokenizer, self.filters, self.char_filters = tokenizer, list(filters), \
            list(char_filters)

    def __call__(self, text: str, offsets: bool = False) -> Tokens:
        for cf in self.char_filters:
            text = cf(text)
        t = self.tokenizer(text, offsets)
        for f in self.filters:
            t = f(t)
        if "" in t.terms:
            t = t.keep([bool(x) for x in t.terms])
        return t

    def terms(self, text: str) -> list[str]:
        return self(text).terms


def _named(analysis: dict, kind: str, ref):
    """A component by the name the settings define it under, or as given."""
    if isinstance(ref, str):
        return (analysis.get(kind) or {}).get(ref, ref)
    return ref


def _builtin(name: str) -> Analyzer | None:
    lower = make_filter("lowercase")
    if name == "standard":
        return Analyzer(make_tokenizer("standard"), [lower])
    if name == "simple":
        return Analyzer(make_tokenizer("letter"), [lower])
    if name == "whitespace":
        return Analyzer(make_tokenizer("whitespace"))
    if name == "keyword":
        return Analyzer(make_tokenizer("keyword"))
    if name == "stop":
        return Analyzer(make_tokenizer("letter"), [lower, make_filter("stop")])
    if name == "pattern":
        return Analyzer(make_tokenizer("pattern"), [lower])
    if name in _STEM_LANGS and name not in ("porter", "light_english"):
        stops = [make_filter("stop")] if name == "english" else []
        return Analyzer(make_tokenizer("standard"),
                        [lower, *stops, make_filter({"type": "stemmer", "language": name})])
    return None


class Registry:
    """The analyzers an index knows: the built-in ones and those its settings
    define under `analysis` (custom analyzers, tokenizers, filters)."""

    def __init__(self, analysis: dict | None = None):
        analysis = analysis or {}
        self.settings = analysis
        self._cache: dict[str, Analyzer] = {}
        for name, spec in (analysis.get("analyzer") or {}).items():
            self._cache[name] = self._custom(name, spec, analysis)

    def _custom(self, name: str, spec: dict, analysis: dict) -> Analyzer:
        if spec.get("type", "custom") != "custom":
            base = _builtin(spec["type"])
            if base is None:
                raise AnalysisError(f"analyzer [{name}]: unknown type [{spec['type']}]")
            if "stopwords" in spec:
                base.filters.append(make_filter({"type": "stop", "stopwords": spec["stopwords"]}))
            return base
        tok = spec.get("tokenizer")
        if tok is None:
            raise AnalysisError(f"analyzer [{name}] must specify a tokenizer")
        tokenizer = make_tokenizer(_named(analysis, "tokenizer", tok))
        filters = [make_filter(_named(analysis, "filter", f)) for f in spec.get("filter", [])]
        chars = [make_char_filter(_named(analysis, "char_filter", c))
                 for c in spec.get("char_filter", [])]
        return Analyzer(tokenizer, filters, chars)

    def get(self, name: str) -> Analyzer:
        if name not in self._cache:
            a = _builtin(name)
            if a is None:
                raise AnalysisError(f"failed to find analyzer [{name}]")
            self._cache[name] = a
        return self._cache[name]

    def adhoc(self, body: dict) -> Analyzer:
        """`_analyze` with a tokenizer and filters given in the request."""
        if "analyzer" in body:
            return self.get(body["analyzer"])
        a = self.settings
        tok = body.get("tokenizer", "standard")
        tokenizer = make_tokenizer(_named(a, "tokenizer", tok))
        filters = [make_filter(_named(a, "filter", f)) for f in body.get("filter", [])]
        chars = [make_char_filter(c) for c in body.get("char_filter", [])]
        return Analyzer(tokenizer, filters, chars)
