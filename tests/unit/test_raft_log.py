"""The Raft log on disk rebuilds exactly what a node persisted, through
snapshots and restarts; a torn last record loses only that record."""

from __future__ import annotations

from stackyard.coord.raft_log import RaftLog
from stackyard.coord.raft_types import Entry, HardState, Ready
from tests.unit.test_raft import Sim


def test_disk_log_matches_what_the_node_persisted(tmp_path):
    sim = Sim(3, seed=21, drop=0.05, dup=0.02)
    logs = {nid: RaftLog(tmp_path / nid) for nid in sim.ids}
    for log in logs.values():
        log.load()
    handle = sim.handle

    def persist_too(nid, ready):
        logs[nid].save(ready)
        handle(nid, ready)
    sim.handle = persist_too
    counter = [0]
    sim.chaos(3000, counter)
    for nid, log in logs.items():
        log.close()
        again = RaftLog(tmp_path / nid).load()
        assert again == sim.store[nid], nid
    assert any(sim.store[n].snapshot.index for n in sim.ids), "chaos should have compacted"


def test_torn_last_record_is_dropped(tmp_path):
    log = RaftLog(tmp_path)
    log.load()
    log.save(Ready(hard_state=HardState(1, "a", 0), entries=[Entry(1, 1, b"x")]))
    log.save(Ready(hard_state=HardState(1, "a", 1), entries=[Entry(2, 1, b"y")]))
    log.close()
    seg = max(tmp_path.glob("edits.*"))
    seg.write_bytes(seg.read_bytes()[:-3])
    p = RaftLog(tmp_path).load()
    assert p.hard_state == HardState(1, "a", 0) and [e.data for e in p.entries] == [b"x"]
