"""The Raft consensus algorithm (Ongaro & Ousterhout) as a pure state machine.

No I/O and no clock: the caller feeds messages (`step`) and timer ticks
(`tick`), proposes entries (`propose`), asks for linearizable reads
(`read_index`) and compacts the log (`compact`). Each call returns a
`Ready` (raft_types.py) saying what to persist, what to send and what to
apply, in that order. A restarted node is rebuilt from exactly what earlier
Readys persisted (`Persisted`).

Invariants kept here (the paper's Figure 3):
- at most one leader per term: a node votes once per term, and only for a
  candidate whose log is at least as up to date as its own;
- a leader never overwrites or deletes its own entries, and commits only
  entries of its own term by counting (older ones are committed with them);
- if two logs hold an entry with the same index and term, they are equal up
  to it (Append carries prev_index / prev_term and followers check them);
- an applied entry is never applied differently anywhere.

Also: a new leader appends a no-op so that earlier terms' entries commit;
a leader that has not heard from a majority for an election timeout steps
down (check-quorum), so an isolated leader stops serving; reads are
confirmed by a round of heartbeats (ReadIndex, section 6.4 of the thesis).

Pre-vote and check-quorum together (thesis section 9.6): a node whose
election timer fires first asks whether it could win, in a pre-vote that
changes nobody's term, and campaigns only when a majority says yes. A node
that has heard from a leader within the last election timeout says no and
ignores vote requests of higher terms. So a replica that rejoins after a
partition, however long it was away, cannot depose a healthy leader.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from enum import Enum

from stackyard.coord.raft_types import (
    Append,
    AppendResponse,
    Entry,
    HardState,
    InstallSnapshot,
    Message,
    NotLeader,
    Persisted,
    ReadState,
    Ready,
    Snapshot,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)

MAX_BATCH = 64     # entries per Append message


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class RaftNode:
    def __init__(self, node_id: str, peers: Iterable[str], persisted: Persisted | None = None,
                 election_ticks: int = 10, heartbeat_ticks: int = 2, seed: int | None = None):
        if heartbeat_ticks >= election_ticks:
            raise ValueError("heartbeat_ticks: must be smaller than election_ticks")
        self.id = node_id
        self.peers = sorted(set(peers) - {node_id})
        self.quorum = (len(self.peers) + 1) // 2 + 1
        self.election_ticks, self.heartbeat_ticks = election_ticks, heartbeat_ticks
        self.rng = random.Random(seed if seed is not None else hash(node_id))
        p = persisted or Persisted()
        self.term, self.voted_for = p.hard_state.term, p.hard_state.voted_for
        self.snap = p.snapshot
        self.log: list[Entry] = [e for e in p.entries if e.index > self.snap.index]
        self.commit = max(p.hard_state.commit, self.snap.index)
        self.applied = self.snap.index
        self.role, self.leader = Role.FOLLOWER, None
        self.votes: set[str] = set()
        self.next: dict[str, int] = {}
        self.match: dict[str, int] = {}
        self.active: set[str] = set()
        self.quorum_elapsed = 0
        self.heartbeat_seq = 0
        self.reads: list[list] = []          # [ctx, seq, acks]
        self._ready = Ready()
        self._hard = p.hard_state
        self._reset_election_timer()
        if self.snap.index:
            self._ready.restore = self.snap   # the state machine starts from the snapshot

    # -- the log ------------------------------------------------------------------

    def last_index(self) -> int:
        return self.log[-1].index if self.log else self.snap.index

    def last_term(self) -> int:
        return self.log[-1].term if self.log else self.snap.term

    def term_at(self, index: int) -> int | None:
        if index == self.snap.index:
            return self.snap.term
        off = index - self.snap.index - 1
        return self.log[off].term if 0 <= off < len(self.log) else None

    def _slice(self, first: int, limit: int) -> tuple[Entry, ...]:
        off = first - self.snap.index - 1
        return tuple(self.log[off:off + limit])

    # -- inputs -------------------------------------------------------------------

    def tick(self) -> Ready:
        self.elapsed += 1
        if self.role is Role.LEADER:
            self.quorum_elapsed += 1
            if self.quorum_elapsed >= self.election_ticks:
                self.quorum_elapsed = 0
                if len(self.active) + 1 < self.quorum:
                    self._become_follower(self.term, None)      # check-quorum: isolated
                    return self._take()
                self.active = set()
            if self.elapsed >= self.heartbeat_ticks:
                self.elapsed = 0
                self._broadcast()
        elif self.elapsed >= self.timeout:
            self._pre_campaign()
        return self._take()

    def propose(self, data: bytes) -> tuple[int, Ready]:
        """Append DATA to the log; its index, and what to do. Only on the leader."""
        indexes, ready = self.propose_batch([data])
        return indexes[0], ready

    def propose_batch(self, datas: list[bytes]) -> tuple[list[int], Ready]:
        """Append several entries at once: one Ready, so one fsync (group commit)."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader)
        first = self.last_index() + 1
        entries = [Entry(first + i, self.term, d) for i, d in enumerate(datas)]
        self._append(entries)
        self._broadcast()
        self._maybe_commit()
        return [e.index for e in entries], self._take()

    def read_index(self, ctx: object) -> Ready:
        """Ask for a linearizable read: a later Ready carries ReadState(ctx, index)
        once a majority confirmed this node still leads; serve the read when the
        state machine has applied `index`."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader)
        self.heartbeat_seq += 1
        self.reads.append([ctx, self.heartbeat_seq, {self.id}])
        self._broadcast()
        self._confirm_reads()
        return self._take()

    def compact(self, index: int, data: bytes) -> Ready:
        """The state machine, serialised as DATA, reflects entries up to INDEX:
        drop them from the log."""
        if index <= self.snap.index:
            return self._take()
        if index > self.applied:
            raise ValueError(f"index: {index} is not applied yet (applied {self.applied})")
        self.snap = Snapshot(index, self.term_at(index), data)
        self.log = [e for e in self.log if e.index > index]
        self._ready.snapshot = self.snap
        return self._take()

    def step(self, m: Message) -> Ready:
        if m.dst != self.id:
            return self._take()
        if m.term > self.term:
            if isinstance(m, VoteRequest) and self._in_lease():
                return self._take()             # a leader is alive: no election now
            if not _names_a_future_term(m):
                leader = m.src if isinstance(m, Append | InstallSnapshot) else None
                self._become_follower(m.term, leader)
        elif m.term < self.term:
            if isinstance(m, Append | InstallSnapshot):     # tell a stale leader
                self._send(AppendResponse(self.term, self.id, m.src, False, self.last_index()))
            return self._take()
        handler = getattr(self, "_on_" + type(m).__name__)
        handler(m)
        return self._take()

    # -- elections ------------------------------------------------------------------

    def _reset_election_timer(self) -> None:
        self.elapsed = 0
        self.timeout = self.rng.randrange(self.election_ticks, 2 * self.election_ticks)

    def _in_lease(self) -> bool:
        """Has this node heard from a live leader (or been one) within the
        last election timeout?"""
        return self.leader is not None and self.elapsed < self.election_ticks

    def _pre_campaign(self) -> None:
        self.role, self.leader = Role.PRE_CANDIDATE, None
        self.votes = {self.id}
        self._reset_election_timer()
        if len(self.votes) >= self.quorum:
            self._campaign()
            return
        for p in self.peers:
            self._send(VoteRequest(self.term + 1, self.id, p, self.last_index(),
                                   self.last_term(), prevote=True))

    def _campaign(self) -> None:
        self.role, self.leader = Role.CANDIDATE, None
        self.term += 1
        self.voted_for = self.id
        self.votes = {self.id}
        self._reset_election_timer()
        if len(self.votes) >= self.quorum:
            self._become_leader()
            return
        for p in self.peers:
            self._send(VoteRequest(self.term, self.id, p, self.last_index(), self.last_term()))

    def _on_VoteRequest(self, m: VoteRequest) -> None:
        up_to_date = (m.last_term, m.last_index) >= (self.last_term(), self.last_index())
        if m.prevote:
            granted = up_to_date and m.term > self.term
            self._send(VoteResponse(m.term if granted else self.term, self.id, m.src, granted,
                                    prevote=True))
            return
        granted = self.voted_for in (None, m.src) and up_to_date
        if granted:
            self.voted_for = m.src
            self._reset_election_timer()
        self._send(VoteResponse(self.term, self.id, m.src, granted))

    def _on_VoteResponse(self, m: VoteResponse) -> None:
        if m.prevote:
            if self.role is Role.PRE_CANDIDATE and m.granted and m.term == self.term + 1:
                self.votes.add(m.src)
                if len(self.votes) >= self.quorum:
                    self._campaign()
            return
        if self.role is Role.CANDIDATE and m.granted:
            self.votes.add(m.src)
            if len(self.votes) >= self.quorum:
                self._become_leader()

    def _become_follower(self, term: int, leader: str | None) -> None:
        if term > self.term:
            self.term, self.voted_for = term, None
        self.role, self.leader = Role.FOLLOWER, leader
        self.reads = []
        self._reset_election_timer()

    def _become_leader(self) -> None:
        self.role, self.leader = Role.LEADER, self.id
        self.next = {p: self.last_index() + 1 for p in self.peers}
        self.match = {p: 0 for p in self.peers}
        self.active, self.quorum_elapsed, self.elapsed = set(), 0, 0
        self._append([Entry(self.last_index() + 1, self.term, b"")])  # commits older terms
        self._broadcast()
        self._maybe_commit()

    # -- replication ----------------------------------------------------------------

    def _append(self, entries: list[Entry]) -> None:
        self.log.extend(entries)
        self._ready.entries.extend(entries)

    def _broadcast(self) -> None:
        for p in self.peers:
            self._send_append(p)

    def _send_append(self, p: str) -> None:
        nxt = self.next[p]
        if nxt <= self.snap.index:
            self._send(InstallSnapshot(self.term, self.id, p, self.snap))
            return
        prev = nxt - 1
        entries = self._slice(nxt, MAX_BATCH)
        self._send(Append(self.term, self.id, p, prev, self.term_at(prev), entries, self.commit,
                          self.heartbeat_seq))
        if entries:
            # pipelining (etcd's replicate state): the next send starts after
            # these, instead of repeating every unacknowledged entry; a lost
            # message shows up as a rejection, which moves `next` back
            self.next[p] = entries[-1].index + 1

    def _on_Append(self, m: Append) -> None:
        if self.role is not Role.FOLLOWER or self.leader != m.src:
            self._become_follower(self.term, m.src)
        self._reset_election_timer()
        entries, prev, prev_term = m.entries, m.prev_index, m.prev_term
        if prev < self.snap.index:                 # the start is in our snapshot: committed
            entries = tuple(e for e in entries if e.index > self.snap.index)
            prev, prev_term = self.snap.index, self.snap.term
            if entries and entries[0].index != prev + 1:
                entries = ()
        if self.term_at(prev) != prev_term:
            hint = min(self.last_index(), prev - 1)
            self._send(AppendResponse(self.term, self.id, m.src, False, hint, m.seq))
            return
        for i, e in enumerate(entries):
            have = self.term_at(e.index)
            if have == e.term:
                continue
            if have is not None:                    # conflict: drop it and all after it
                self.log = self.log[:e.index - self.snap.index - 1]
                self._ready.entries = [x for x in self._ready.entries if x.index < e.index]
                t = self._ready.truncate_from
                self._ready.truncate_from = e.index if t is None else min(t, e.index)
            self._append(list(entries[i:]))
            break
        last_new = prev + len(entries) if entries else prev
        if m.commit > self.commit:
            self.commit = max(self.commit, min(m.commit, last_new))
        self._send(AppendResponse(self.term, self.id, m.src, True, last_new, m.seq))

    def _on_AppendResponse(self, m: AppendResponse) -> None:
        if self.role is not Role.LEADER:
            return
        p = m.src
        self.active.add(p)
        for read in self.reads:
            if m.seq >= read[1]:
                read[2].add(p)
        if m.success:
            if m.match > self.match[p]:
                self.match[p] = m.match
                self._maybe_commit()
            self.next[p] = max(self.next[p], m.match + 1)
            if self.next[p] <= self.last_index():
                self._send_append(p)
        else:
            self.next[p] = max(1, min(self.next[p] - 1, m.match + 1))
            self._send_append(p)
        self._confirm_reads()

    def _on_InstallSnapshot(self, m: InstallSnapshot) -> None:
        self._become_follower(self.term, m.src)
        s = m.snapshot
        if s.index > self.commit:
            keep = self.term_at(s.index) == s.term
            self.log = [e for e in self.log if e.index > s.index] if keep else []
            if not keep:
                self._ready.truncate_from = s.index + 1
                self._ready.entries = []
            self.snap = s
            self.commit = self.applied = s.index
            self._ready.snapshot = self._ready.restore = s
            self._ready.committed = []
        self._send(SnapshotResponse(self.term, self.id, m.src, s.index))

    def _on_SnapshotResponse(self, m: SnapshotResponse) -> None:
        if self.role is not Role.LEADER:
            return
        self.active.add(m.src)
        self.match[m.src] = max(self.match[m.src], m.match)
        self.next[m.src] = self.match[m.src] + 1
        self._maybe_commit()
        if self.next[m.src] <= self.last_index():
            self._send_append(m.src)

    def _maybe_commit(self) -> None:
        matched = sorted([self.last_index(), *self.match.values()], reverse=True)
        n = matched[self.quorum - 1]
        if n > self.commit and self.term_at(n) == self.term:
            self.commit = n
            self._broadcast()                # tell followers now, not at the next heartbeat

    def _confirm_reads(self) -> None:
        # a read is safe once a majority answered a heartbeat sent after it and
        # this leader has committed an entry of its own term (its no-op)
        if not self.reads or self.term_at(self.commit) != self.term:
            return
        done = [r for r in self.reads if len(r[2]) >= self.quorum]
        for ctx, _seq, _acks in done:
            self._ready.reads.append(ReadState(ctx, self.commit))
        self.reads = [r for r in self.reads if len(r[2]) < self.quorum]

    # -- output ---------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        self._ready.messages.append(m)

    def _take(self) -> Ready:
        r, self._ready = self._ready, Ready()
        hard = HardState(self.term, self.voted_for, self.commit)
        if hard != self._hard:
            r.hard_state = self._hard = hard
        if self.commit > self.applied:
            r.committed.extend(self._slice(self.applied + 1, self.commit - self.applied))
            self.applied = self.commit
        return r


def _names_a_future_term(m: Message) -> bool:
    """A pre-vote, or a pre-vote granted, carries the term an election would
    have, not one anybody is in: it changes nobody's term."""
    return (isinstance(m, VoteRequest) and m.prevote) or (
        isinstance(m, VoteResponse) and m.prevote and m.granted)
