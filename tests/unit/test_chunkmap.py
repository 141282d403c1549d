"""The replica map driven step by step: events in, actions out, no network."""

from __future__ import annotations

import random

from stackyard.dfs import placement
from stackyard.dfs.chunkmap import ChunkMap, DeleteReplica, Replicate, Rollback
from stackyard.dfs.namespace import Chunk, Inode


def setup(n_servers=4, replication=3, version=2, length=100, racks=None):
    f = Inode("f", False, "u", "g", 0o644, 0.0, replication=replication)
    chunk = Chunk("00000000000000aa", version=version, length=length, issued=version, file=f)
    f.chunks.append(chunk)
    cm = ChunkMap({chunk.handle: chunk}, dead_after=10, replication_timeout=30, seed=1)
    for i in range(n_servers):
        rack = racks[i] if racks else "/r"
        cm.heartbeat(f"s{i}", f"h:{i}", rack, 10**9, 0, 10**9, now=0)
    return cm, chunk


def test_report_judges_versions():
    cm, c = setup()
    acts = cm.report("s0", [(c.handle, 2, 100)], full=True)      # good
    assert acts == [] and cm.replicas[c.handle] == {"s0"}
    acts = cm.report("s1", [(c.handle, 1, 100)], full=True)      # stale
    assert acts == [DeleteReplica("s1", c.handle)]
    c.issued = 3
    acts = cm.report("s2", [(c.handle, 3, 150)], full=True)      # uncommitted write
    assert acts == [Rollback("s2", c.handle, 2, 100, expect=3)]   # unless written since
    acts = cm.report("s3", [("00000000000000bb", 1, 5)], full=True)  # unknown chunk
    assert acts == [DeleteReplica("s3", "00000000000000bb")]


def test_uncommitted_replica_left_alone_while_file_is_written():
    cm, c = setup()
    c.file.holder = "writer"
    c.issued = 3
    assert cm.report("s0", [(c.handle, 3, 150)], full=True) == []


def test_a_report_does_not_revive_a_replica_known_corrupt():
    """A full report of a replica a reader found corrupt must not count it
    again: repair would then see enough replicas and delete the bad one
    before a good copy exists elsewhere."""
    cm, c = setup()
    cm.committed(c.handle, ["s0", "s1", "s2"])
    cm.bad_replica(c.handle, "s0")
    assert cm.report("s0", [(c.handle, 2, 100)], full=True) == []
    assert cm.replicas[c.handle] == {"s1", "s2"} and cm.corrupt[c.handle] == {"s0"}
    acts = cm.tick(1, replicate=True, busy=set())
    assert [type(a).__name__ for a in acts] == ["Replicate"] and acts[0].server_id == "s3"


def test_a_truncated_chunks_longer_replicas_are_trimmed_but_not_while_written():
    cm, c = setup()
    cm.report("s0", [(c.handle, 2, 100)], full=True)
    c.length = 40                                     # the file was truncated
    assert cm.trim(c.handle) == [Rollback("s0", c.handle, 2, 40, expect=2)]
    # a server that was away reports the old length: still good, and trimmed
    assert cm.report("s1", [(c.handle, 2, 100)], full=True) == [
        Rollback("s1", c.handle, 2, 40, expect=2)]
    assert cm.replicas[c.handle] == {"s0", "s1"}
    assert cm.report("s1", [(c.handle, 2, 40)], full=True) == []
    c.file.holder = "appender"                        # longer by right while written
    assert cm.report("s2", [(c.handle, 2, 100)], full=True) == [] and cm.trim(c.handle) == []


def test_dead_server_replicas_are_copied_elsewhere():
    cm, c = setup()
    cm.committed(c.handle, ["s0", "s1", "s2"])
    for t in (1, 5, 9):
        for sid in ("s1", "s2", "s3"):
            cm.heartbeat(sid, f"h:{sid[1]}", "/r", 10**9, 0, 10**9, now=t)
    acts = cm.tick(11, replicate=True, busy=set())
    assert not cm.servers["s0"].alive
    assert acts == [Replicate("s3", c.handle, 2, 100, acts[0].source)]
    assert acts[0].source in ("h:1", "h:2")
    # the copy is pending: no second copy is ordered on the next tick
    assert cm.tick(11.5, replicate=True, busy=set()) == []
    cm.report("s3", [(c.handle, 2, 100)], full=False)
    assert cm.health(c.handle).state == "healthy"


def test_excess_replica_deleted():
    cm, c = setup()
    cm.committed(c.handle, ["s0", "s1", "s2", "s3"])
    acts = cm.tick(1, replicate=True, busy=set())
    assert len(acts) == 1 and isinstance(acts[0], DeleteReplica)
    assert len(cm.replicas[c.handle]) == 3


def test_corrupt_replica_kept_until_repaired_then_deleted():
    cm, c = setup()
    cm.committed(c.handle, ["s0", "s1", "s2"])
    cm.bad_replica(c.handle, "s0")
    assert cm.health(c.handle).state == "corrupt"
    acts = cm.tick(1, replicate=True, busy=set())
    assert acts == [Replicate("s3", c.handle, 2, 100, acts[0].source)]
    assert cm.health(c.handle).state == "corrupt"     # still shown until repaired
    cm.report("s3", [(c.handle, 2, 100)], full=False)
    acts = cm.tick(2, replicate=True, busy=set())
    assert acts == [DeleteReplica("s0", c.handle)]
    assert cm.health(c.handle).state == "healthy"


def test_corrupt_replica_cleared_when_no_other_server_can_take_a_copy():
    cm, c = setup(n_servers=3)
    cm.committed(c.handle, ["s0", "s1", "s2"])
    cm.bad_replica(c.handle, "s0")
    assert cm.tick(1, replicate=True, busy=set()) == [DeleteReplica("s0", c.handle)]
    assert cm.tick(2, replicate=True, busy=set()) == []     # until s0 confirms
    cm.deleted("s0", [c.handle])
    acts = cm.tick(3, replicate=True, busy=set())
    assert acts == [Replicate("s0", c.handle, 2, 100, acts[0].source)]


def test_safe_mode_and_busy_chunks_are_not_repaired():
    cm, c = setup()
    cm.committed(c.handle, ["s0"])
    assert cm.tick(1, replicate=False, busy=set()) == []
    assert cm.tick(1, replicate=True, busy={c.handle}) == []


def test_placement_spreads_over_racks():
    rng = random.Random(3)
    cands = [placement.Candidate(f"s{i}", f"/rack{i % 2}", 0, 10**9) for i in range(6)]
    for _ in range(50):
        picked = placement.choose_targets(3, cands, [], 100, rng)
        racks = {f"/rack{int(s[1]) % 2}" for s in picked}
        assert len(picked) == 3 and len(set(picked)) == 3 and racks == {"/rack0", "/rack1"}
    full = [placement.Candidate("s9", "/r", 0, 10)]
    assert placement.choose_targets(1, full, [], 100, rng) == []


def test_report_crossing_a_delete_never_costs_the_last_replica():
    """The race a cluster test found: setrep 3 -> 1 orders two deletes; a full
    report sent before a server carried its delete out must not revive that
    replica, or the 'excess' gets trimmed from the survivor and all copies go."""
    cm, c = setup(n_servers=3)
    cm.committed(c.handle, ["s0", "s1", "s2"])
    c.file.replication = 1
    deletes = cm.tick(1, replicate=True, busy=set())
    doomed = {a.server_id for a in deletes}
    assert len(deletes) == 2 and all(isinstance(a, DeleteReplica) for a in deletes)
    (survivor,) = {"s0", "s1", "s2"} - doomed
    for sid in doomed:                         # reports that crossed the commands
        assert cm.report(sid, [(c.handle, 2, 100)], full=True) == []
    assert cm.tick(2, replicate=True, busy=set()) == []
    assert cm.replicas[c.handle] == {survivor}
    # raising replication again: no copy goes to a server still deleting it ...
    c.file.replication = 3
    assert cm.tick(3, replicate=True, busy=set()) == []
    # ... until it confirms the deletion
    for sid in doomed:
        cm.deleted(sid, [c.handle])
    acts = cm.tick(4, replicate=True, busy=set())
    assert {a.server_id for a in acts} == doomed
    assert all(isinstance(a, Replicate) and a.source == f"h:{survivor[1]}" for a in acts)
