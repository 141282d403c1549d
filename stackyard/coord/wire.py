"""Raft messages and tree commands as msgpack-able maps (and back).

A message is {"t": its class name, ...fields}; entries are [index, term,
data] and a snapshot [index, term, data]. A command is {"c": its class name,
...fields}, a Multi's ops a list of commands.
"""

from __future__ import annotations

import dataclasses

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


def message_from_wire(d: dict) -> rt.Message:
    d = dict(d)
    cls = _MESSAGES[d.pop("t")]
    if "entries" in d:
        d["entries"] = tuple(rt.Entry(*e) for e in d["entries"])
    if "snapshot" in d:
        d["snapshot"] = rt.Snapshot(*d["snapshot"])
    return cls(**d)


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
    d = dict(d)
    cls = _COMMANDS.get(d.pop("c"))
    if cls is None:
        raise tree.BadArguments("unknown command")
    if cls is tree.Multi:
        return tree.Multi(tuple(command_from_map(op) for op in d["ops"]))
    try:
        return cls(**d)
    except TypeError as exc:
        raise tree.BadArguments(str(exc)) from None


def stat_to_wire(stat: tree.Stat | None) -> dict | None:
    return dataclasses.asdict(stat) if stat is not None else None
