"""HBase's filter language, parsed and evaluated on the tablet server:

    PrefixFilter ('row1') AND (QualifierFilter (>=, 'binary:b') OR KeyOnlyFilter ())

A filter takes one row (its key and its cells `(family, qualifier, ts,
value)` in order) and returns the cells it keeps; no cells drops the row.
AND binds tighter than OR, as in HBase. `SKIP f` drops a row if f would drop
any of its cells; `WHILE f` ends the scan at the first such row.
Comparators: binary:, binaryprefix:, regexstring:, substring: (which ignores
case, as HBase's does). Errors name the position in the string.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass

OPS = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, "=": lambda c: c == 0,
       "!=": lambda c: c != 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}


class FilterError(ValueError):
    pass


class StopScan(Exception):
    """A WHILE filter (or a full page) ends the scan."""


@dataclass
class Comparator:
    kind: str
    value: bytes

    @classmethod
    def parse(cls, text: bytes) -> Comparator:
        kind, sep, value = text.partition(b":")
        kind = kind.decode().lower()
        if not sep or kind not in ("binary", "binaryprefix", "regexstring", "substring"):
            raise FilterError(f"comparator {text!r}: expected binary:, binaryprefix:, "
                              "regexstring: or substring:")
        c = cls(kind, value)
        if kind == "regexstring":
            try:
                c.regex = re.compile(value)
            except re.error as exc:
                raise FilterError(f"comparator {text!r}: bad regular expression: {exc}") from None
        return c

    def compare(self, x: bytes) -> int:
        if self.kind == "binary":
            return (x > self.value) - (x < self.value)
        if self.kind == "binaryprefix":
            head = x[:len(self.value)]
            return (head > self.value) - (head < self.value)
        if self.kind == "regexstring":
            return 0 if self.regex.search(x) else 1
        return 0 if self.value.lower() in x.lower() else 1


def _check_op(op: str, comp: Comparator) -> None:
    if comp.kind in ("regexstring", "substring") and op not in ("=", "!="):
        raise FilterError(f"{comp.kind}: comparator allows only = and !=, got {op}")


class Filter(abc.ABC):
    @abc.abstractmethod
    def apply(self, row: bytes, cells: list) -> list:
        """The cells of ROW this filter keeps; raises StopScan to end the scan."""

    def done(self) -> bool:
        return False


class _Cmp(Filter):
    def __init__(self, op: str, comp: Comparator):
        _check_op(op, comp)
        self.test, self.comp = OPS[op], comp


class RowFilter(_Cmp):
    def apply(self, row, cells):
        return cells if self.test(self.comp.compare(row)) else []


class FamilyFilter(_Cmp):
    def apply(self, row, cells):
        return [c for c in cells if self.test(self.comp.compare(c[0].encode()))]


class QualifierFilter(_Cmp):
    def apply(self, row, cells):
        return [c for c in cells if self.test(self.comp.compare(c[1]))]


class ValueFilter(_Cmp):
    def apply(self, row, cells):
        return [c for c in cells if self.test(self.comp.compare(c[3]))]


class PrefixFilter(Filter):
    def __init__(self, prefix: bytes):
        self.prefix = prefix

    def apply(self, row, cells):
        return cells if row.startswith(self.prefix) else []


class ColumnPrefixFilter(Filter):
    def __init__(self, *prefixes: bytes):
        self.prefixes = tuple(prefixes)

    def apply(self, row, cells):
        return [c for c in cells if c[1].startswith(self.prefixes)]


class SingleColumnValueFilter(Filter):
    def __init__(self, family: bytes, qualifier: bytes, op: str, comp: Comparator,
                 if_missing: bool = False, latest_only: bool = True):
        _check_op(op, comp)
        self.family, self.qualifier = family.decode(), qualifier
        self.test, self.comp = OPS[op], comp
        self.if_missing, self.latest_only = if_missing, latest_only

    def apply(self, row, cells):
        values = [c[3] for c in cells if c[0] == self.family and c[1] == self.qualifier]
        if not values:
            return [] if self.if_missing else cells
        if self.latest_only:
            values = values[:1]
        return cells if any(self.test(self.comp.compare(v)) for v in values) else []


class PageFilter(Filter):
    def __init__(self, size: int):
        if size < 0:
            raise FilterError("PageFilter: the page size must be 0 or more")
        self.size, self.seen = size, 0

    def apply(self, row, cells):
        if self.seen >= self.size:
            raise StopScan
        self.seen += 1
        return cells

    def done(self):
        return self.seen >= self.size


class KeyOnlyFilter(Filter):
    def apply(self, row, cells):
        return [(f, q, ts, b"") for f, q, ts, _v in cells]


class FirstKeyOnlyFilter(Filter):
    def apply(self, row, cells):
        return cells[:1]


class ColumnCountGetFilter(Filter):
    def __init__(self, n: int):
        self.n = n

    def apply(self, row, cells):
        return cells[:self.n]


class TimestampsFilter(Filter):
    def __init__(self, *stamps: int):
        self.stamps = set(stamps)

    def apply(self, row, cells):
        return [c for c in cells if c[2] in self.stamps]


class InclusiveStopFilter(Filter):
    def __init__(self, stop: bytes):
        self.stop = stop

    def apply(self, row, cells):
        if row > self.stop:
            raise StopScan
        return cells


class Skip(Filter):
    def __init__(self, inner: Filter):
        self.inner = inner

    def apply(self, row, cells):
        kept = self.inner.apply(row, cells)
        return cells if len(kept) == len(cells) else []


class While(Filter):
    def __init__(self, inner: Filter):
        self.inner = inner

    def apply(self, row, cells):
        kept = self.inner.apply(row, cells)
        if len(kept) != len(cells):
            raise StopScan
        return cells


class And(Filter):
    def __init__(self, parts: list[Filter]):
        self.parts = parts

    def apply(self, row, cells):
        for p in self.parts:
            cells = p.apply(row, cells)
            if not cells:
                return []
        return cells

    def done(self):
        return any(p.done() for p in self.parts)


class Or(Filter):
    def __init__(self, parts: list[Filter]):
        self.parts = parts

    def apply(self, row, cells):
        keep, out = [], []
        for p in self.parts:
            keep.append(p.apply(row, cells))
        for c in cells:
            for kept in keep:
                hit = next((k for k in kept if k[:3] == c[:3]), None)
                if hit is not None:
                    out.append(hit)
                    break
        return out

    def done(self):
        return all(p.done() for p in self.parts)


# name -> (class, argument kinds): s string, o operator, c comparator, b bool, i int,
# "*s" / "*i" any number of those
SIGNATURES = {
    "RowFilter": (RowFilter, "oc"), "FamilyFilter": (FamilyFilter, "oc"),
    "QualifierFilter": (QualifierFilter, "oc"), "ValueFilter": (ValueFilter, "oc"),
    "PrefixFilter": (PrefixFilter, "s"), "ColumnPrefixFilter": (ColumnPrefixFilter, "s"),
    "MultipleColumnPrefixFilter": (ColumnPrefixFilter, "*s"),
    "SingleColumnValueFilter": (SingleColumnValueFilter, "ssoc|bb"),
    "PageFilter": (PageFilter, "i"), "KeyOnlyFilter": (KeyOnlyFilter, ""),
    "FirstKeyOnlyFilter": (FirstKeyOnlyFilter, ""),
    "ColumnCountGetFilter": (ColumnCountGetFilter, "i"),
    "TimestampsFilter": (TimestampsFilter, "*i"),
    "InclusiveStopFilter": (InclusiveStopFilter, "s"),
}

_TOKEN = re.compile(rb"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op><=|>=|!=|<|>|=)
                       |(?P<num>-?\d+)|(?P<word>[A-Za-z_]\w*)|(?P<punct>[(),]))""", re.X)


def _tokens(text: bytes) -> list[tuple[str, object, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == b"":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise FilterError(f"filter string: unexpected {text[pos:pos + 10]!r} at "
                              f"position {pos}")
        kind = m.lastgroup
        raw = m.group(kind)
        value = raw[1:-1].replace(b"''", b"'") if kind == "str" else raw
        out.append((kind, value, m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: bytes):
        self.toks, self.i, self.text = _tokens(text), 0, text

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", None, len(self.text))

    def take(self, kind: str | None = None, value=None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            want = value.decode() if isinstance(value, bytes) else (value or kind)
            got = "the end" if tok[0] == "end" else repr(tok[1].decode("utf-8", "replace"))
            raise FilterError(f"filter string: expected {want} at position {tok[2]}, got {got}")
        self.i += 1
        return tok

    def expr(self) -> Filter:
        parts = [self.conj()]
        while self.peek()[0] == "word" and self.peek()[1].upper() == b"OR":
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else Or(parts)

    def conj(self) -> Filter:
        parts = [self.term()]
        while self.peek()[0] == "word" and self.peek()[1].upper() == b"AND":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else And(parts)

    def term(self) -> Filter:
        kind, value, pos = self.peek()
        if kind == "punct" and value == b"(":
            self.take()
            inner = self.expr()
            self.take("punct", b")")
            return inner
        if kind == "word" and value.upper() in (b"SKIP", b"WHILE"):
            self.take()
            inner = self.term()
            return Skip(inner) if value.upper() == b"SKIP" else While(inner)
        if kind != "word":
            got = "the end" if kind == "end" else repr(value.decode("utf-8", "replace"))
            raise FilterError(f"filter string: expected a filter at position {pos}, got {got}")
        return self.call()

    def call(self) -> Filter:
        _, name, pos = self.take("word")
        sig = SIGNATURES.get(name.decode())
        if sig is None:
            raise FilterError(f"filter string: unknown filter {name.decode()!r} at position "
                              f"{pos} (known: {', '.join(sorted(SIGNATURES))})")
        cls, kinds = sig
        self.take("punct", b"(")
        args = []
        while not (self.peek()[0] == "punct" and self.peek()[1] == b")"):
            if self.peek()[0] == "end":
                self.take("punct", b")")
            if args:
                self.take("punct", b",")
            args.append(self.peek())
            self.take()
        self.take("punct", b")")
        return cls(*self.convert(name.decode(), kinds, args, pos))

    def convert(self, name: str, kinds: str, args: list, pos: int) -> list:
        required, _, optional = kinds.partition("|")
        if required.startswith("*"):
            required = required[1] * len(args)
        if not len(required) <= len(args) <= len(required) + len(optional):
            raise FilterError(f"{name} at position {pos}: expected {len(required)} "
                              f"argument(s), got {len(args)}")
        out = []
        for want, (kind, value, at) in zip(required + optional, args, strict=False):
            if want == "s" and kind == "str":
                out.append(value)
            elif want == "o" and kind == "op":
                out.append(value.decode())
            elif want == "c" and kind == "str":
                out.append(Comparator.parse(value))
            elif want == "i" and kind == "num":
                out.append(int(value))
            elif want == "b" and kind == "word" and value.lower() in (b"true", b"false"):
                out.append(value.lower() == b"true")
            else:
                what = {"s": "a quoted string", "o": "a comparison operator",
                        "c": "a quoted comparator", "i": "a number", "b": "true or false"}
                raise FilterError(f"{name}: expected {what[want]} at position {at}")
        return out


def parse(text) -> Filter:
    if isinstance(text, str):
        text = text.encode()
    p = _Parser(bytes(text))
    f = p.expr()
    p.take("end")
    return f
