"""The master's replicated op log (dfs/journal.py) driven step by step: three
journals in one process, messages carried by hand, partitions by not
carrying them. The state machine is a list of the records applied."""

from __future__ import annotations

import msgpack
import pytest

from stackyard import errors
from stackyard.dfs.journal import Journal

PEERS = {"m1": "h:1", "m2": "h:2", "m3": "h:3"}


class Member:
    def __init__(self, name: str, root):
        self.state: list[bytes] = []
        self.deposed = 0
        self.j = Journal(root / name, name, PEERS, self.apply, self.restore,
                         election_ticks=10, heartbeat_ticks=2)
        self.j.on_deposed = self.rebuild

    def apply(self, data: bytes, _index: int) -> None:
        self.state.append(data)

    def restore(self, image: bytes) -> None:
        self.state = list(msgpack.unpackb(image)) if image else []

    def rebuild(self) -> None:
        self.deposed += 1
        image, records = self.j.committed_state()
        self.restore(image)
        self.state += [d for _i, d in records]

    def write(self, data: bytes) -> None:
        """As Master.mutate: applied at once, then submitted."""
        self.j.check_active()
        self.state.append(data)
        self.j.submit(data)


def carry(members: dict[str, Member], cut: set[str] = frozenset(), rounds: int = 50) -> None:
    """Deliver messages (not to or from CUT) until none are left, ticking."""
    for _ in range(rounds):
        moved = False
        for name, m in members.items():
            for peer, box in m.j.outbox.items():
                if not box:
                    continue
                batch, m.j.outbox[peer] = box, []
                if name in cut or peer in cut:
                    continue
                moved = True
                members[peer].j._step_all(name, batch)
        if not moved:
            for name, m in members.items():
                if name not in cut:
                    m.j.process(m.j.node.tick())


def active(members: dict[str, Member], cut: set[str] = frozenset()) -> Member:
    for _ in range(200):
        carry(members, cut, rounds=1)
        lead = [m for n, m in members.items() if m.j.active and n not in cut]
        if lead:
            return lead[0]
    raise AssertionError("no member became active")


@pytest.fixture
def group(tmp_path):
    return {n: Member(n, tmp_path) for n in PEERS}


def test_records_commit_everywhere_and_apply_once(group):
    lead = active(group)
    for i in range(5):
        lead.write(f"r{i}".encode())
    carry(group)
    want = [f"r{i}".encode() for i in range(5)]
    assert all(m.state == want for m in group.values())
    assert lead.j.acked == lead.j.submitted == 5 and lead.j.settled
    standby = next(m for m in group.values() if m is not lead)
    with pytest.raises(errors.StandbyError) as refused:
        standby.write(b"no")
    assert refused.value.active == PEERS[lead.j.id]


def test_a_partitioned_active_member_loses_what_was_not_committed(group):
    old = active(group)
    old.write(b"committed")
    carry(group)
    cut = {old.j.id}
    old.write(b"never acknowledged")            # applied there, but no quorum hears it
    carry(group, cut)
    assert old.j.acked < old.j.submitted
    new = active(group, cut)
    assert new is not old and new.j.epoch > old.j.epoch
    new.write(b"after failover")
    carry(group, cut)
    carry(group)                               # the link heals: the old one hears the new term
    assert not old.j.active and old.deposed == 1
    want = [b"committed", b"after failover"]
    assert all(m.state == want for m in group.values()), [m.state for m in group.values()]


def test_a_restarted_member_rebuilds_from_its_disk(group, tmp_path):
    lead = active(group)
    for i in range(3):
        lead.write(f"r{i}".encode())
    carry(group)
    standby = next(n for n, m in group.items() if m is not lead)
    group[standby].j.close()
    again = Member(standby, tmp_path)
    assert again.state == [b"r0", b"r1", b"r2"]


def test_a_snapshot_reaches_a_member_whose_disk_was_wiped(group, tmp_path):
    import shutil
    lead = active(group)
    for i in range(4):
        lead.write(f"r{i}".encode())
    carry(group)
    lead.j.compact(msgpack.packb(lead.state))
    victim = next(n for n, m in group.items() if m is not lead)
    group[victim].j.close()
    shutil.rmtree(tmp_path / victim)
    group[victim] = Member(victim, tmp_path)
    lead.write(b"r4")
    carry(group)
    assert group[victim].state == [f"r{i}".encode() for i in range(5)]
