"""What goes in and out of the Raft core: log entries, persisted state,
messages, and the `Ready` batch a step returns.

The one ordering that matters (etcd's Ready): the caller makes `hard_state`,
`truncate_from`, `entries` and `snapshot` durable FIRST, then sends
`messages`, then applies `committed` (and `restore`) to its state machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    index: int
    term: int
    data: bytes          # b"" for the no-op a new leader appends


@dataclass(frozen=True)
class Snapshot:
    index: int           # last entry the snapshot covers
    term: int
    data: bytes          # the state machine, as the application serialised it


@dataclass(frozen=True)
class HardState:
    term: int
    voted_for: str | None
    commit: int


@dataclass(frozen=True)
class VoteRequest:
    term: int            # a pre-vote asks for the term the sender would campaign in
    src: str
    dst: str
    last_index: int
    last_term: int
    prevote: bool = False


@dataclass(frozen=True)
class VoteResponse:
    term: int
    src: str
    dst: str
    granted: bool
    prevote: bool = False


@dataclass(frozen=True)
class Append:
    term: int
    src: str
    dst: str
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    seq: int = 0         # heartbeat round, echoed back: confirms leadership for reads


@dataclass(frozen=True)
class AppendResponse:
    term: int
    src: str
    dst: str
    success: bool
    match: int           # success: last index now known to match; failure: follower's last index
    seq: int = 0


@dataclass(frozen=True)
class InstallSnapshot:
    term: int
    src: str
    dst: str
    snapshot: Snapshot


@dataclass(frozen=True)
class SnapshotResponse:
    term: int
    src: str
    dst: str
    match: int


Message = (VoteRequest | VoteResponse | Append | AppendResponse | InstallSnapshot
           | SnapshotResponse)


@dataclass(frozen=True)
class ReadState:
    """A linearizable read may be served once the state machine has applied `index`."""
    ctx: object
    index: int


@dataclass
class Ready:
    hard_state: HardState | None = None
    truncate_from: int | None = None     # drop stable entries with index >= this, then append
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None     # persist; the stable log now starts after it
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    restore: Snapshot | None = None      # the state machine must load this before `committed`
    reads: list[ReadState] = field(default_factory=list)


@dataclass
class Persisted:
    """What a restarted node is built from: exactly what earlier Readys persisted."""
    hard_state: HardState = HardState(0, None, 0)
    snapshot: Snapshot = Snapshot(0, 0, b"")
    entries: list[Entry] = field(default_factory=list)

    def save(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self.snapshot = ready.snapshot
            self.entries = [e for e in self.entries if e.index > ready.snapshot.index]
        if ready.truncate_from is not None:
            self.entries = [e for e in self.entries if e.index < ready.truncate_from]
        self.entries.extend(ready.entries)
        if ready.hard_state is not None:
            self.hard_state = ready.hard_state


class NotLeader(Exception):
    """Proposals and reads go to the leader; `leader` is the best guess, or None."""

    def __init__(self, leader: str | None):
        super().__init__(f"not the leader (leader: {leader or 'unknown'})")
        self.leader = leader
