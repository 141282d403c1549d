"""A linearizability checker for recorded client histories (Wing & Gong's
search with Lowe's memoisation, the algorithm behind Knossos and Porcupine).

A history is a list of Op(client, invoke, response, kind, key, arg, result).
`response` is None when the outcome is unknown (the reply was lost to a
failover or a timeout): such an operation may have taken effect at any point
after `invoke`, or never. Keys are independent, so each key's history is
checked on its own (P-compositionality).

The model is one versioned register per key, as the coordination tree gives
a node: state (value, version), None while the key does not exist.
    read            result: (value, version) or None
    write arg=v     result: the new version
    cas arg=(ver,v) result: the new version, or "bad_version"
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

INF = float("inf")


@dataclass(frozen=True)
class Op:
    client: int
    invoke: float
    response: float | None
    kind: str                 # read | write | cas
    key: str
    arg: object = None
    result: object = None


def step(state, op: Op):
    """(acceptable?, next state) for OP applied to STATE giving op.result."""
    unknown = op.response is None
    if op.kind == "read":
        return (unknown or op.result == state), state
    if op.kind == "write":
        new = (op.arg, 1 if state is None else state[1] + 1)
        return (unknown or op.result == new[1]), new
    if op.kind == "cas":
        version, value = op.arg
        if state is not None and state[1] == version:
            new = (value, version + 1)
            return (unknown or op.result == new[1]), new
        return (unknown or op.result == "bad_version"), state
    raise ValueError(f"unknown operation {op.kind}")


class _Event:
    __slots__ = ("op", "id", "is_call", "match", "prev", "next")

    def __init__(self, op, id_, is_call):
        self.op, self.id, self.is_call = op, id_, is_call
        self.match = self.prev = self.next = None


def _check_key(ops: list[Op], initial=None) -> bool:
    events = []
    for i, op in enumerate(ops):
        call, ret = _Event(op, i, True), _Event(op, i, False)
        call.match = ret
        events.append((op.invoke, 0, call))
        events.append((INF if op.response is None else op.response, 1, ret))
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Event(None, -1, False)
    prev = head
    for _, _, ev in events:
        prev.next, ev.prev = ev, prev
        prev = ev

    def lift(call):
        call.prev.next = call.next
        if call.next:
            call.next.prev = call.prev
        ret = call.match
        ret.prev.next = ret.next
        if ret.next:
            ret.next.prev = ret.prev

    def unlift(call):
        ret = call.match
        ret.prev.next = ret
        if ret.next:
            ret.next.prev = ret
        call.prev.next = call
        if call.next:
            call.next.prev = call

    state, linearized = initial, 0
    seen: set = set()
    stack: list = []
    entry = head.next
    while head.next is not None:
        if entry is None:
            return False
        if entry.is_call:
            ok, new_state = step(state, entry.op)
            key = (linearized | (1 << entry.id), new_state)
            if ok and key not in seen:
                seen.add(key)
                stack.append((entry, state))
                state, linearized = new_state, linearized | (1 << entry.id)
                lift(entry)
                entry = head.next
                continue
            entry = entry.next
        else:
            if not stack:
                return False
            call, state = stack.pop()
            linearized &= ~(1 << call.id)
            unlift(call)
            entry = call.next
    return True


def linearizable(history: list[Op], initial=None) -> tuple[bool, str | None]:
    """(True, None), or (False, the first key whose history is not linearizable).
    INITIAL is every key's state before the history (None: absent)."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    for key, ops in sorted(by_key.items()):
        if not _check_key(ops, initial):
            return False, key
    return True, None
