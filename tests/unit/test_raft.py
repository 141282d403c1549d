"""The Raft core, driven step by step through a simulated network that drops,
duplicates, delays and reorders messages, with crashes, restarts from what was
persisted, partitions and log compaction, from many seeds. Checked all along:
never two leaders in one term; an entry applied anywhere is never applied
differently anywhere; after healing, every node converges on one history that
holds everything ever applied."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from stackyard.coord import raft
from stackyard.coord.raft import RaftNode, Role
from stackyard.coord.raft_types import NotLeader, Persisted, Ready, VoteRequest


class Sim:
    def __init__(self, n: int, seed: int, drop: float = 0.1, dup: float = 0.05):
        self.rng = random.Random(seed)
        self.seed = seed
        self.ids = [f"n{i}" for i in range(n)]
        self.store = {i: Persisted() for i in self.ids}
        self.nodes = {i: self._boot(i) for i in self.ids}
        self.sm: dict[str, list] = {i: [] for i in self.ids}    # applied (index, data)
        self.down: set[str] = set()
        self.cut: set[str] = set()                               # isolated nodes
        self.inflight: list = []
        self.drop, self.dup = drop, dup
        self.leaders: dict[int, str] = {}
        self.applied_at: dict[int, bytes] = {}
        self.sent_types: list[str] = []
        self.reads: dict[str, list] = {i: [] for i in self.ids}

    def _boot(self, nid: str) -> RaftNode:
        return RaftNode(nid, self.ids, copy.deepcopy(self.store[nid]), election_ticks=10,
                        heartbeat_ticks=2, seed=self.rng.randrange(1 << 30))

    def fail(self, what: str):
        raise AssertionError(f"seed {self.seed}: {what}")

    # -- a node's Ready, in the documented order ------------------------------------

    def handle(self, nid: str, ready: Ready) -> None:
        self.store[nid].save(ready)                      # 1. persist
        for m in ready.messages:                         # 2. send
            self.sent_types.append(type(m).__name__)
            if self.rng.random() < self.drop:
                continue
            self.inflight.append(m)
            if self.rng.random() < self.dup:
                self.inflight.append(m)
        if ready.restore is not None:                    # 3. apply
            self.sm[nid] = pickle.loads(ready.restore.data) if ready.restore.data else []
            if self.sm[nid] and self.sm[nid][-1][0] != ready.restore.index:
                self.fail(f"{nid} restored a snapshot that does not end at its index")
        for e in ready.committed:
            last = self.sm[nid][-1][0] if self.sm[nid] else 0
            if e.index != last + 1:
                self.fail(f"{nid} applied {e.index} after {last}")
            self.sm[nid].append((e.index, e.data))
            if self.applied_at.setdefault(e.index, e.data) != e.data:
                self.fail(f"entry {e.index} applied as {e.data!r} on {nid}, "
                          f"as {self.applied_at[e.index]!r} elsewhere")
        self.reads[nid].extend(ready.reads)
        node = self.nodes[nid]
        if node.role is Role.LEADER:
            if self.leaders.setdefault(node.term, nid) != nid:
                self.fail(f"two leaders in term {node.term}: {self.leaders[node.term]} and {nid}")

    # -- the world ------------------------------------------------------------------

    def tick(self, nid: str) -> None:
        if nid not in self.down:
            self.handle(nid, self.nodes[nid].tick())

    def deliver_one(self) -> None:
        if not self.inflight:
            return
        m = self.inflight.pop(self.rng.randrange(len(self.inflight)))   # any order
        if m.dst in self.down or m.dst in self.cut or m.src in self.cut:
            return
        self.handle(m.dst, self.nodes[m.dst].step(m))

    def propose(self, data: bytes) -> bool:
        for nid in self.ids:
            if nid not in self.down and self.nodes[nid].role is Role.LEADER:
                try:
                    _, ready = self.nodes[nid].propose(data)
                except NotLeader:
                    return False
                self.handle(nid, ready)
                return True
        return False

    def crash(self, nid: str) -> None:
        self.down.add(nid)

    def restart(self, nid: str) -> None:
        self.down.discard(nid)
        self.nodes[nid] = self._boot(nid)
        self.sm[nid] = []

    def compact(self, nid: str) -> None:
        node = self.nodes[nid]
        if nid not in self.down and node.applied > node.snap.index:
            data = pickle.dumps([x for x in self.sm[nid] if x[0] <= node.applied])
            self.handle(nid, node.compact(node.applied, data))

    def leader(self) -> str | None:
        up = [n for n in self.ids if n not in self.down and n not in self.cut
              and self.nodes[n].role is Role.LEADER]
        return up[0] if len(up) == 1 else None

    def chaos(self, steps: int, counter: list[int]) -> None:
        r = self.rng
        for _ in range(steps):
            x = r.random()
            if x < 0.35:
                self.tick(r.choice(self.ids))
            elif x < 0.80:
                self.deliver_one()
            elif x < 0.90:
                if self.propose(f"v{counter[0]}".encode()):
                    counter[0] += 1
            elif x < 0.93:
                quorum = len(self.ids) // 2 + 1
                if len(self.down) < len(self.ids) - quorum:
                    self.crash(r.choice(self.ids))
            elif x < 0.96 and self.down:
                self.restart(r.choice(sorted(self.down)))
            elif x < 0.975:
                self.cut = {r.choice(self.ids)} if not self.cut else set()
            else:
                self.compact(r.choice(self.ids))

    def settle(self, rounds: int = 4000) -> None:
        """Heal everything; run until every node applied the same history."""
        for nid in sorted(self.down):
            self.restart(nid)
        self.cut, self.drop, self.dup = set(), 0.0, 0.0
        marker = f"final-{self.seed}".encode()
        proposed = False
        for _ in range(rounds):
            for nid in self.ids:
                self.tick(nid)
            for _ in range(3 * len(self.inflight) + 1):
                self.deliver_one()
            if not proposed and self.leader():
                proposed = self.propose(marker)
            histories = {tuple(self.sm[n]) for n in self.ids}
            if proposed and len(histories) == 1 and any(d == marker for _, d in self.sm["n0"]):
                return
        self.fail("did not converge after healing: "
                  + ", ".join(f"{n} applied {len(self.sm[n])}" for n in self.ids))


@pytest.mark.parametrize("batch", [64, 1])
@pytest.mark.parametrize("seed", range(40))
def test_safety_and_convergence_under_chaos(seed, batch, monkeypatch):
    # one entry per Append exposes what batching hides: followers holding stale
    # entries past the part they verified, leaders counting older-term entries
    monkeypatch.setattr(raft, "MAX_BATCH", batch)
    n = 3 if seed % 2 else 5
    sim = Sim(n, seed)
    counter = [0]
    sim.chaos(4000, counter)
    sim.settle()
    final = sim.sm["n0"]
    for index, data in sim.applied_at.items():     # nothing ever applied was lost
        assert final[index - 1] == (index, data), f"seed {seed}: entry {index} lost"
    assert [i for i, _ in final] == list(range(1, len(final) + 1))


def drive(sim: Sim, rounds: int) -> None:
    for _ in range(rounds):
        for nid in sim.ids:
            sim.tick(nid)
        for _ in range(3 * len(sim.inflight) + 1):
            sim.deliver_one()


def test_single_node_commits_at_once():
    node = RaftNode("a", ["a"], election_ticks=5, heartbeat_ticks=1, seed=1)
    ready = Ready()
    for _ in range(10):
        ready = node.tick()
        if node.role is Role.LEADER:
            break
    assert node.role is Role.LEADER and ready.hard_state.term == 1
    index, ready = node.propose(b"x")
    assert [e.data for e in ready.entries] == [b"x"] and ready.committed[-1].index == index


def test_follower_refuses_proposals_and_names_the_leader():
    sim = Sim(3, seed=7, drop=0.0, dup=0.0)
    drive(sim, 60)
    leader = sim.leader()
    follower = next(n for n in sim.ids if n != leader)
    with pytest.raises(NotLeader) as info:
        sim.nodes[follower].propose(b"x")
    assert info.value.leader == leader


def test_lagging_node_catches_up_by_snapshot():
    sim = Sim(3, seed=3, drop=0.0, dup=0.0)
    drive(sim, 60)
    leader = sim.leader()
    lagging = next(n for n in sim.ids if n != leader)
    sim.crash(lagging)
    for i in range(300):
        assert sim.propose(f"e{i}".encode())
        drive(sim, 1)
    drive(sim, 20)
    sim.compact(leader)
    assert sim.nodes[leader].snap.index > 300
    sim.sent_types.clear()
    sim.restart(lagging)
    drive(sim, 80)
    assert "InstallSnapshot" in sim.sent_types
    assert sim.sm[lagging] == sim.sm[leader]
    assert sim.nodes[lagging].snap.index == sim.nodes[leader].snap.index


def test_restart_keeps_term_vote_and_log():
    sim = Sim(3, seed=11, drop=0.0, dup=0.0)
    drive(sim, 60)
    for i in range(20):
        sim.propose(f"k{i}".encode())
    drive(sim, 20)
    nid = sim.ids[1]
    before = sim.nodes[nid]
    sim.crash(nid)
    sim.restart(nid)
    after = sim.nodes[nid]
    assert (after.term, after.voted_for, after.last_index()) == (
        before.term, before.voted_for, before.last_index())
    drive(sim, 20)
    assert sim.sm[nid] == sim.sm[sim.leader()]


def test_read_index_needs_a_majority_and_isolated_leader_steps_down():
    sim = Sim(3, seed=5, drop=0.0, dup=0.0)
    drive(sim, 60)
    leader = sim.leader()
    sim.handle(leader, sim.nodes[leader].read_index("r1"))
    drive(sim, 3)
    assert [r.ctx for r in sim.reads[leader]] == ["r1"]
    assert sim.reads[leader][0].index >= 1
    sim.cut = {leader}                       # the leader alone on its side
    sim.handle(leader, sim.nodes[leader].read_index("r2"))
    drive(sim, 40)
    assert [r.ctx for r in sim.reads[leader]] == ["r1"]          # never confirmed
    assert sim.nodes[leader].role is not Role.LEADER             # check-quorum
    with pytest.raises(NotLeader):
        sim.nodes[leader].propose(b"stale")


def test_isolated_old_leader_cannot_commit():
    sim = Sim(5, seed=9, drop=0.0, dup=0.0)
    drive(sim, 60)
    old = sim.leader()
    sim.cut = {old}
    _, ready = sim.nodes[old].propose(b"lost write")
    sim.handle(old, ready)
    drive(sim, 80)
    assert all(d != b"lost write" for n in sim.ids for _, d in sim.sm[n])
    sim.cut = set()
    drive(sim, 80)
    assert sim.leader() is not None
    assert all(d != b"lost write" for n in sim.ids for _, d in sim.sm[n])
    assert len({tuple(sim.sm[n]) for n in sim.ids}) == 1


def test_a_replica_back_from_a_partition_does_not_depose_a_healthy_leader():
    """Pre-vote with check-quorum (thesis 9.6): the cut-off replica's timer
    fires again and again, but it never raises its term, and when it returns
    the leader and its term stay."""
    sim = Sim(3, seed=21, drop=0.0, dup=0.0)
    drive(sim, 60)
    leader, term = sim.leader(), sim.nodes[sim.leader()].term
    away = next(n for n in sim.ids if n != leader)
    sim.cut = {away}
    drive(sim, 200)                              # ten election timeouts alone
    assert sim.nodes[away].term == term and sim.nodes[away].role is Role.PRE_CANDIDATE
    sim.cut = set()
    drive(sim, 100)
    assert sim.leader() == leader and sim.nodes[leader].term == term
    assert sim.nodes[away].leader == leader


def test_a_higher_term_vote_request_is_ignored_while_a_leader_is_heard():
    sim = Sim(3, seed=22, drop=0.0, dup=0.0)
    drive(sim, 60)
    leader = sim.leader()
    follower = next(n for n in sim.ids if n != leader)
    node = sim.nodes[follower]
    term = node.term
    ready = node.step(VoteRequest(term + 5, "intruder", follower, 10**6, term + 4))
    assert node.term == term and not ready.messages and node.leader == leader


def test_bad_settings_named():
    with pytest.raises(ValueError, match="heartbeat_ticks"):
        RaftNode("a", ["a", "b"], election_ticks=2, heartbeat_ticks=2)
    node = RaftNode("a", ["a", "b"])
    with pytest.raises(ValueError, match="not applied"):
        node.compact(5, b"")


# -- the paper's Figure 8, scripted ------------------------------------------------

def _only(sim: Sim, keep) -> None:
    """Deliver in-flight messages that KEEP accepts (and what they cause); drop the rest."""
    for _ in range(200):
        if not sim.inflight:
            return
        m = sim.inflight.pop(0)
        if keep(m) and m.dst not in sim.down:
            sim.handle(m.dst, sim.nodes[m.dst].step(m))


def _elect(sim: Sim, nid: str, voters: set[str]) -> None:
    """Campaign (again, in a higher term, if voters already voted) with only
    VOTERS. Time passes on the voters first, so that none still counts on an
    old leader (with check-quorum, their pre-vote would say no)."""
    for _ in range(5):
        for v in voters - {nid}:
            sent = len(sim.inflight)
            for _ in range(20):                  # two election timeouts, heard from nobody
                sim.tick(v)
            del sim.inflight[sent:]
        while True:
            sim.tick(nid)
            node = sim.nodes[nid]
            if node.role is Role.LEADER or (node.role is Role.PRE_CANDIDATE
                                            and node.elapsed == 0):
                break
        _only(sim, lambda m: type(m).__name__.startswith("Vote")
              and {m.src, m.dst} <= voters | {nid})
        if sim.nodes[nid].role is Role.LEADER:
            return
    raise AssertionError(f"{nid} was not elected by {sorted(voters)}")


def _rounds(sim: Sim, leader: str, keep, n: int = 10) -> None:
    """Heartbeat rounds of LEADER, delivering what KEEP accepts."""
    for _ in range(n):
        sim.tick(leader)
        _only(sim, keep)


def test_figure8_leader_never_commits_an_older_term_entry_by_counting(monkeypatch):
    """'Raft never commits log entries from previous terms by counting replicas'
    (section 5.4.2). s1 gets its old-term entry X onto a majority but its own
    term's entry onto no majority, then dies; s5, whose log ends in a later
    term, can still win and overwrite X, so s1 must never have applied X."""
    monkeypatch.setattr(raft, "MAX_BATCH", 1)
    sim = Sim(5, seed=8, drop=0.0, dup=0.0)
    s1, s2, s3, s4, s5 = sim.ids
    _elect(sim, s1, set(sim.ids))                               # term 1: no-op at 1
    _rounds(sim, s1, lambda m: True)
    assert all(sim.nodes[n].commit == 1 for n in sim.ids)
    sim.propose(b"X")                                           # index 2, term 1, on s1 only
    sim.crash(s1)
    sim.inflight.clear()
    _elect(sim, s5, {s3, s4, s5})                               # term 2: its no-op at 2, on s5 only
    sim.crash(s5)
    sim.inflight.clear()
    sim.restart(s1)
    _elect(sim, s1, {s1, s2, s3})                               # term 3: no-op at 3

    def not_index_3(m) -> bool:        # an Append a follower would take with index 3 in it
        return not (hasattr(m, "entries") and any(e.index == 3 for e in m.entries)
                    and sim.nodes[m.dst].term_at(m.prev_index) == m.prev_term)
    _rounds(sim, s1, lambda m: not_index_3(m) and s4 not in (m.src, m.dst))
    assert [sim.nodes[n].last_index() for n in (s1, s2, s3)] == [3, 2, 2]
    assert sim.nodes[s1].match[s2] == sim.nodes[s1].match[s3] == 2   # X on a majority
    assert all(i != 2 for i, _ in sim.sm[s1]), "X (term 1) committed by counting"
    sim.crash(s1)
    sim.inflight.clear()
    sim.restart(s5)
    _elect(sim, s5, {s2, s3, s4, s5})                           # s5's log ends in term 2 > 1
    _rounds(sim, s5, lambda m: s1 not in (m.src, m.dst), n=30)
    assert sim.applied_at[2] == b""                             # s5's term-2 no-op won index 2
