"""Mappings: the fields of an index, their types, and how a JSON document
becomes the values each field indexes (Elasticsearch's mapping, with its
dynamic mapping of fields the mapping does not name yet).

Types: text (analyzed, with positions), keyword (one term per value),
the numeric types, date (kept as epoch milliseconds) and boolean. Numbers,
dates and booleans are doc values (for ranges, sorting and aggregations);
keywords are both terms and doc values. A string seen for the first time
becomes `text` with a `keyword` sub-field, as Elasticsearch maps it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float",
                     "scaled_float", "unsigned_long"})
TYPES = NUMERIC | {"text", "keyword", "date", "boolean", "object", "match_only_text"}
IGNORE_ABOVE = 256
POSITION_GAP = 100          # position_increment_gap between values of one text field
_DATEISH = re.compile(r"^\d{4}[-/]\d{2}[-/]\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


class MappingError(ValueError):
    """A mapping that cannot be, or a value its field cannot take; `kind` is
    Elasticsearch's error type."""

    def __init__(self, msg: str, kind: str = "mapper_parsing_exception"):
        super().__init__(msg)
        self.kind = kind


@dataclass
class Field:
    name: str
    type: str
    analyzer: str = "standard"
    search_analyzer: str = ""
    index: bool = True
    doc_values: bool = True
    offsets: bool = False                  # index_options: offsets
    ignore_above: int = 0
    format: str = ""
    subfields: dict[str, Field] = field(default_factory=dict)

    @property
    def analyzed(self) -> bool:
        return self.type in ("text", "match_only_text")

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC or self.type in ("date", "boolean")

    def to_dict(self) -> dict:
        out: dict = {"type": self.type}
        if self.analyzed and self.analyzer != "standard":
            out["analyzer"] = self.analyzer
        if self.search_analyzer:
            out["search_analyzer"] = self.search_analyzer
        if self.offsets:
            out["index_options"] = "offsets"
        if self.ignore_above:
            out["ignore_above"] = self.ignore_above
        if self.format:
            out["format"] = self.format
        if not self.index:
            out["index"] = False
        if self.subfields:
            out["fields"] = {k.rsplit(".", 1)[1]: f.to_dict() for k, f in self.subfields.items()}
        return out


def _field(name: str, spec: dict) -> Field:
    kind = spec.get("type", "object" if "properties" in spec else None)
    if kind not in TYPES:
        raise MappingError(f"No handler for type [{kind}] declared on field [{name}]")
    f = Field(name, kind, analyzer=spec.get("analyzer", "standard"),
              search_analyzer=spec.get("search_analyzer", ""),
              index=bool(spec.get("index", True)), doc_values=bool(spec.get("doc_values", True)),
              offsets=spec.get("index_options") == "offsets",
              ignore_above=int(spec.get("ignore_above", 0)), format=spec.get("format", ""))
    for sub, sspec in (spec.get("fields") or {}).items():
        f.subfields[f"{name}.{sub}"] = _field(f"{name}.{sub}", sspec)
    return f


def parse_date(value, name: str = "") -> float:
    """Epoch milliseconds from an ISO 8601 date or date-time, or a number of ms."""
    if isinstance(value, bool):
        raise MappingError(f"failed to parse date field [{value}] of [{name}]")
    if isinstance(value, int | float):
        return float(value)
    s = str(value).strip()
    if s.lstrip("-").isdigit() and len(s) != 8:
        return float(s)
    try:
        d = dt.datetime.fromisoformat(s.replace("/", "-").replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"failed to parse field [{name}] of type [date]: "
                           f"failed to parse date field [{value}] with format "
                           "[strict_date_optional_time||epoch_millis]") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp() * 1000.0


def format_date(ms: float) -> str:
    d = dt.datetime.fromtimestamp(ms / 1000.0, tz=dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def to_number(f: Field, value) -> float:
    if f.type == "date":
        return parse_date(value, f.name)
    if f.type == "boolean":
        if value in (True, "true"):
            return 1.0
        if value in (False, "false", ""):
            return 0.0
        raise MappingError(f"failed to parse field [{f.name}] of type [boolean]: "
                           f"only [true] or [false] are allowed, not [{value}]")
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise MappingError(f"failed to parse field [{f.name}] of type [{f.type}]: "
                           f"for input string: \"{value}\"") from None
    if f.type in ("long", "integer", "short", "byte", "unsigned_long") and not n.is_integer():
        n = float(int(n))
    return n


@dataclass
class Parsed:
    """One document's values per field: text to analyze, keyword terms, numbers."""
    text: dict[str, list[str]] = field(default_factory=dict)
    keyword: dict[str, list[str]] = field(default_factory=dict)
    numbers: dict[str, list[float]] = field(default_factory=dict)


class Mapping:
    def __init__(self, spec: dict | None = None):
        spec = spec or {}
        self.dynamic = spec.get("dynamic", True)
        if self.dynamic in ("true", "false"):
            self.dynamic = self.dynamic == "true"
        self.fields: dict[str, Field] = {}
        self._add(spec.get("properties") or {}, "")

    def _add(self, props: dict, prefix: str) -> None:
        for name, spec in props.items():
            if not isinstance(spec, dict):
                raise MappingError(f"Expected map for property [{name}]")
            full = prefix + name
            if "properties" in spec:
                self._add(spec["properties"], full + ".")
                continue
            self.fields[full] = f = _field(full, spec)
            self.fields.update(f.subfields)

    def merge(self, spec: dict) -> None:
        """PUT _mapping: new fields may be added; a field's type may not change."""
        other = Mapping(spec)
        for name, f in other.fields.items():
            old = self.fields.get(name)
            if old is not None and old.type != f.type:
                raise MappingError(f"mapper [{name}] cannot be changed from type [{old.type}] "
                                   f"to [{f.type}]", "illegal_argument_exception")
        self.fields.update(other.fields)
        if "dynamic" in spec:
            self.dynamic = spec["dynamic"]

    def to_dict(self) -> dict:
        props: dict = {}
        subs = {s for f in self.fields.values() for s in f.subfields}
        for name, f in sorted(self.fields.items()):
            if name in subs:
                continue
            node = props
            parts = name.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {"properties": {}})["properties"]
            node[parts[-1]] = f.to_dict()
        out = {"properties": props}
        if self.dynamic is not True:
            out["dynamic"] = self.dynamic
        return out

    def _dynamic(self, name: str, value) -> Field | None:
        if self.dynamic is False or self.dynamic == "false":
            return None
        if self.dynamic == "strict":
            raise MappingError(f"mapping set to strict, dynamic introduction of [{name}] "
                               "within [_doc] is not allowed", "strict_dynamic_mapping_exception")
        if isinstance(value, bool):
            f = Field(name, "boolean")
        elif isinstance(value, int):
            f = Field(name, "long")
        elif isinstance(value, float):
            f = Field(name, "float")
        elif isinstance(value, str) and _DATEISH.match(value):
            try:
                parse_date(value, name)
                f = Field(name, "date")
            except MappingError:
                f = None
            if f is None:
                f = self._text(name)
        else:
            f = self._text(name)
        self.fields[name] = f
        self.fields.update(f.subfields)
        return f

    @staticmethod
    def _text(name: str) -> Field:
        f = Field(name, "text")
        f.subfields[f"{name}.keyword"] = Field(f"{name}.keyword", "keyword",
                                               ignore_above=IGNORE_ABOVE)
        return f

    def parse(self, source: dict) -> tuple[Parsed, bool]:
        """The document's values, and whether the mapping grew new fields."""
        out = Parsed()
        before = len(self.fields)
        self._walk(source, "", out)
        return out, len(self.fields) != before

    def _walk(self, obj: dict, prefix: str, out: Parsed) -> None:
        for key, value in obj.items():
            name = prefix + key
            if isinstance(value, dict):
                self._walk(value, name + ".", out)
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, dict):
                    self._walk(v, name + ".", out)
                elif v is not None:
                    self._value(name, v, out)

    def _value(self, name: str, v, out: Parsed) -> None:
        f = self.fields.get(name) or self._dynamic(name, v)
        if f is None or f.type == "object":
            return
        for g in (f, *f.subfields.values()):
            if not g.index and not g.doc_values:
                continue
            if g.analyzed:
                out.text.setdefault(g.name, []).append(v if isinstance(v, str) else str(v))
            elif g.type == "keyword":
                s = v if isinstance(v, str) else ("true" if v is True else "false"
                                                  if v is False else str(v))
                if not g.ignore_above or len(s) <= g.ignore_above:
                    out.keyword.setdefault(g.name, []).append(s)
            else:
                out.numbers.setdefault(g.name, []).append(to_number(g, v))
