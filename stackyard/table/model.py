"""The table store's data model: tables of rows, column families, qualifiers
and timestamped versions (Bigtable's map of (row, column, time) -> value).

A cell as kept inside one family's store is a tuple

    (row, qualifier, timestamp, kind, value)

and stores sort it by `sort_key`: row ascending, qualifier ascending,
timestamp descending (newest first), then delete markers before puts of the
same timestamp, so a reader meets a marker before the versions it hides.
Timestamps are milliseconds since the epoch, as HBase's.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from enum import IntEnum

MAX_ROW = 64 * 1024            # Bigtable's and HBase's bound on a row key
LATEST = (1 << 63) - 1         # "no upper bound" for time ranges
CODECS = ("none", "zstd", "lz4", "snappy")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


class Kind(IntEnum):
    PUT = 4
    DELETE = 8              # one version: exactly this timestamp
    DELETE_COLUMN = 12      # every version of a column at or before the timestamp
    DELETE_FAMILY = 14      # every column of the family at or before the timestamp


Cell = tuple  # (row: bytes, qualifier: bytes, ts: int, kind: int, value: bytes)


def sort_key(cell: Cell) -> tuple:
    return (cell[0], cell[1], -cell[2], -cell[3])


def now_ms() -> int:
    return int(time.time() * 1000)


def check_row(row) -> bytes:
    if isinstance(row, str):
        row = row.encode()
    if not isinstance(row, bytes | bytearray):
        raise ValueError(f"row key: expected bytes, got {type(row).__name__}")
    if not row:
        raise ValueError("row key: must not be empty")
    if len(row) > MAX_ROW:
        raise ValueError(f"row key: {len(row)} bytes, more than the {MAX_ROW} allowed")
    return bytes(row)


def split_column(column) -> tuple[str, bytes]:
    """b"cf:qual" -> ("cf", b"qual"); b"cf" or b"cf:" -> ("cf", b"")."""
    if isinstance(column, str):
        column = column.encode()
    family, _, qualifier = bytes(column).partition(b":")
    if not family:
        raise ValueError(f"column {column!r}: expected family:qualifier")
    return family.decode("utf-8", "replace"), qualifier


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r}: use 1-200 letters, digits, '_', '-' or '.'")
    return name


@dataclass
class Family:
    """A column family's settings, with HBase's defaults."""
    name: str
    max_versions: int = 1          # HBase 2's VERSIONS default
    ttl: int = 0                   # seconds a cell lives; 0: forever (HBase's FOREVER)
    compression: str = "none"      # per block: none, zstd, lz4, snappy
    bloom: bool = True             # a row bloom filter per SSTable (HBase: ROW)
    in_memory: bool = False        # served first from the block cache
    block_cache: bool = True

    def validate(self) -> Family:
        check_name("family", self.name)
        if ":" in self.name:
            raise ValueError(f"family {self.name!r}: must not contain ':'")
        if not isinstance(self.max_versions, int) or self.max_versions < 1:
            raise ValueError(f"family {self.name}: VERSIONS must be 1 or more")
        if not isinstance(self.ttl, int) or self.ttl < 0:
            raise ValueError(f"family {self.name}: TTL must be 0 (forever) or more seconds")
        self.compression = str(self.compression).lower()
        if self.compression not in CODECS:
            raise ValueError(f"family {self.name}: COMPRESSION must be one of "
                             f"{', '.join(c.upper() for c in CODECS)}, got {self.compression!r}")
        return self


@dataclass
class Schema:
    """A table's schema and state, as kept in the coordination cell."""
    name: str
    families: dict[str, Family]
    enabled: bool = True
    durability: str = "hflush"     # "hsync": the table asks for fsync before acknowledging
    acl: dict[str, list[str]] = field(default_factory=dict)   # user -> ["read", "write", "admin"]
    family_acl: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # family -> user -> rights
    owner: str = ""
    merge: bool = True             # small neighbours merge (HBase's NORMALIZATION_ENABLED)

    def validate(self) -> Schema:
        check_name("table", self.name)
        if not self.families:
            raise ValueError(f"table {self.name}: needs at least one column family")
        for f in self.families.values():
            f.validate()
        if self.durability not in ("hflush", "hsync"):
            raise ValueError("durability: hflush or hsync")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["families"] = [asdict(f) for f in self.families.values()]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        fams = {f["name"]: Family(**f) for f in d["families"]}
        return cls(**{**d, "families": fams})

    def family(self, name: str) -> Family:
        try:
            return self.families[name]
        except KeyError:
            raise ValueError(f"table {self.name}: no column family {name!r} "
                             f"(it has {', '.join(self.families)})") from None

    def allowed(self, user: str, right: str, family: str | None = None) -> bool:
        """HBase's model: with no grants anyone may; the owner may anything;
        a table grant covers every family, a family grant only that family."""
        if not self.acl and not self.family_acl:
            return True
        if user == self.owner or "admin" in self.acl.get(user, ()):
            return True
        if right in self.acl.get(user, ()):
            return True
        if family is not None:
            return right in self.family_acl.get(family, {}).get(user, ())
        return False


@dataclass(frozen=True)
class TabletInfo:
    """One tablet: a table's rows from `start` (inclusive) to `end` (exclusive,
    b"" for the table's end)."""
    table: str
    tablet_id: str
    start: bytes = b""
    end: bytes = b""

    def contains(self, row: bytes) -> bool:
        return row >= self.start and (not self.end or row < self.end)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TabletInfo:
        return cls(d["table"], d["tablet_id"], bytes(d["start"]), bytes(d["end"]))
