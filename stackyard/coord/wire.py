"""Raft messages and tree commands as msgpack-able maps (and back).

A message is {"t": its class name, ...fields}; entries are [index, term,
data] and a snapshot [index, term, data]. A command is {"c": its class name,
...fields}, a Multi's ops a list of commands.
"""

from __future__ import annotations

import dataclasses
import math

import msgpack

from stackyard.coord import raft_types as rt
from stackyard.coord import tree

_MESSAGES = {c.__name__: c for c in (rt.VoteRequest, rt.VoteResponse, rt.Append,
                                     rt.AppendResponse, rt.InstallSnapshot,
                                     rt.SnapshotResponse)}
_COMMANDS = {c.__name__: c for c in (tree.OpenSession, tree.CloseSession, tree.Create,
                                     tree.SetData, tree.Delete, tree.Check, tree.Multi)}


def message_to_wire(m: rt.Message) -> dict:
    d = {"t": type(m).__name__}
    for f in dataclasses.fields(m):
        v = getattr(m, f.name)
        if f.name == "entries":
            v = [[e.index, e.term, e.data] for e in v]
        elif f.name == "snapshot":
            v = [v.index, v.term, v.data]
        d[f.name] = v
    return d


MAX_INT = (1 << 63) - 1          # terms and indexes: what the Raft log stores
MAX_NAME = 256
MAX_DATA = 64 << 20


class BadMessage(ValueError):
    """A peer message that is not one this replica could have been sent."""


def _int(name: str, v) -> int:
    if type(v) is not int or not 0 <= v <= MAX_INT:
        raise BadMessage(f"{name}: expected an integer in 0..2**63-1, got {str(v)[:40]}")
    return v


def _triple(name: str, v) -> tuple[int, int, bytes]:
    if not isinstance(v, list | tuple) or len(v) != 3 or not isinstance(v[2], bytes) \
            or len(v[2]) > MAX_DATA:
        raise BadMessage(f"{name}: expected [index, term, data]")
    return _int(f"{name} index", v[0]), _int(f"{name} term", v[1]), v[2]


def message_from_wire(d) -> rt.Message:
    """The message D stands for; BadMessage naming the field that is wrong
    (type, range, size), so that no forged or garbled message reaches the core."""
    if not isinstance(d, dict):
        raise BadMessage("a message must be a map")
    d = dict(d)
    cls = _MESSAGES.get(d.pop("t", None))
    if cls is None:
        raise BadMessage("unknown message type")
    out = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            if f.default is dataclasses.MISSING:
                raise BadMessage(f"{cls.__name__}: missing {f.name}")
            continue
        v = d.pop(f.name)
        if f.name == "entries":
            if not isinstance(v, list) or len(v) > 4096:
                raise BadMessage("entries: expected a list of at most 4096")
            v = tuple(rt.Entry(*_triple("entry", e)) for e in v)
        elif f.name == "snapshot":
            v = rt.Snapshot(*_triple("snapshot", v))
        elif f.type in ("str", str):
            if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME:
                raise BadMessage(f"{f.name}: expected a replica name")
        elif f.type in ("bool", bool):
            if type(v) is not bool:
                raise BadMessage(f"{f.name}: expected true or false")
        else:
            v = _int(f.name, v)
        out[f.name] = v
    if d:
        raise BadMessage(f"{cls.__name__}: unknown field(s) {', '.join(map(str, d))[:80]}")
    return cls(**out)


class Malformed(tree.BadArguments, ValueError):
    """A request no correct client sends: answered 400, never proposed."""


MAX_PATH = 4096
MAX_NODE_DATA = 1 << 20           # ZooKeeper's jute.maxbuffer


def check_command(cmd: tree.Command) -> tree.Command:
    """CMD if every field has its declared type and a sane size, else
    BadArguments naming the field: a command is applied on every replica and
    at every restart, so nothing malformed may enter the log."""
    if isinstance(cmd, tree.Multi):
        if not isinstance(cmd.ops, tuple) or len(cmd.ops) > 1000:
            raise Malformed("ops: expected a list of at most 1000 operations")
        for op in cmd.ops:
            if not isinstance(op, tree.Create | tree.SetData | tree.Delete | tree.Check):
                raise Malformed(f"{type(op).__name__} cannot be part of a multi")
            check_command(op)
        return cmd
    for f in dataclasses.fields(cmd):
        v = getattr(cmd, f.name)
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "str":
            ok = isinstance(v, str) and len(v) <= MAX_PATH
        elif kind == "bytes":
            ok = isinstance(v, bytes) and len(v) <= MAX_NODE_DATA
        elif kind == "bool":
            ok = type(v) is bool
        elif kind == "float":
            ok = type(v) in (int, float) and math.isfinite(v)
        else:
            ok = type(v) is int and -(1 << 63) <= v < (1 << 63)
        if not ok:
            raise Malformed(f"{f.name}: expected {kind}, got {str(v)[:40]!r}")
    return cmd


def command_map(cmd) -> dict:
    d = {"c": type(cmd).__name__}
    for f in dataclasses.fields(cmd):
        v = getattr(cmd, f.name)
        d[f.name] = [command_map(op) for op in v] if f.name == "ops" else v
    return d


def request_to_bytes(client: int, seq: int, cmd: tree.Command) -> bytes:
    """A log entry: the command and who asked (client id, request sequence)."""
    return msgpack.packb({"client": client, "seq": seq, "cmd": command_map(cmd)})


def request_from_bytes(data: bytes) -> tuple[int, int, tree.Command]:
    d = msgpack.unpackb(data)
    return d["client"], d["seq"], command_from_map(d["cmd"])


def command_from_map(d: dict) -> tree.Command:
    if not isinstance(d, dict):
        raise Malformed("a command must be a map")
    d = dict(d)
    cls = _COMMANDS.get(d.pop("c", None))
    if cls is None:
        raise Malformed("unknown command")
    if cls is tree.Multi:
        ops = d.get("ops")
        if not isinstance(ops, list):
            raise Malformed("ops: expected a list of operations")
        return tree.Multi(tuple(command_from_map(op) for op in ops))
    try:
        return cls(**d)
    except TypeError as exc:
        raise Malformed(str(exc)) from None


def stat_to_wire(stat: tree.Stat | None) -> dict | None:
    return dataclasses.asdict(stat) if stat is not None else None
