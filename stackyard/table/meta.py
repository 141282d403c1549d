"""The METADATA table: where every tablet is. Bigtable's three levels are a
file in Chubby naming the root tablet, the root tablet listing METADATA
tablets, and those listing user tablets; as in HBase since 0.96 the middle
level is folded in: the coordination cell names the one METADATA tablet
(`/yard-table/root`), which is never split, and its rows name user tablets.

A row's key is `table NUL` followed by `NUL end-row` (or `\\x01` for the
table's last tablet), so the tablet holding row R is the first row at or
after `table NUL NUL R NUL`: the first whose end is past R.
"""

from __future__ import annotations

import msgpack

from stackyard.table.model import Family, Schema, TabletInfo

META_TABLE = "yard.meta"
META_TABLET = "meta-0"
COORD = "/yard-table"
ROOT = f"{COORD}/root"
SERVERS = f"{COORD}/servers"
SCHEMAS = f"{COORD}/schemas"
MASTER = f"{COORD}/master"
FAMILY = "info"


def meta_schema() -> Schema:
    return Schema(META_TABLE, {FAMILY: Family(FAMILY, max_versions=1, in_memory=True)})


def meta_tablet() -> TabletInfo:
    return TabletInfo(META_TABLE, META_TABLET)


def server_node(address: str, chunkserver: str) -> bytes:
    """What a tablet server's lock node holds: where it answers, and the
    chunkserver beside it (jobs over its tablets run on that machine)."""
    return msgpack.packb({"address": address, "chunkserver": chunkserver})


def parse_server_node(data: bytes) -> dict:
    try:
        node = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException):
        node = None
    if not isinstance(node, dict):        # a server from before the node held a map
        return {"address": data.decode(), "chunkserver": ""}
    return node


def row_key(table: str, end: bytes) -> bytes:
    return table.encode() + b"\x00" + (b"\x00" + end if end else b"\x01")


def lookup_key(table: str, row: bytes) -> bytes:
    return table.encode() + b"\x00\x00" + row + b"\x00"


def table_range(table: str) -> tuple[bytes, bytes]:
    return table.encode() + b"\x00", table.encode() + b"\x01"


def edits(info: TabletInfo, server: str = "", address: str = "", extra: dict | None = None):
    """The row mutation that records INFO (and where it is served)."""
    from stackyard.table.model import Kind
    cells = [[FAMILY, b"tablet", None, int(Kind.PUT), msgpack.packb(info.to_dict())],
             [FAMILY, b"server", None, int(Kind.PUT), server.encode()],
             [FAMILY, b"address", None, int(Kind.PUT), address.encode()]]
    for k, v in (extra or {}).items():
        cells.append([FAMILY, k.encode(), None, int(Kind.PUT), msgpack.packb(v)])
    return cells


def parse(cells: list) -> dict:
    """A METADATA row's cells [family, qualifier, ts, value] -> its fields."""
    out = {}
    for _f, q, _ts, v in cells:
        q = bytes(q)
        if q == b"tablet":
            out["tablet"] = TabletInfo.from_dict(msgpack.unpackb(v, raw=False))
        elif q in (b"server", b"address"):
            out[q.decode()] = bytes(v).decode()
        else:
            out[q.decode()] = msgpack.unpackb(v, raw=False)
    return out
