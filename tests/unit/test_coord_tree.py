from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.coord.tree import (
    MAX_DATA,
    BadArguments,
    BadVersion,
    Check,
    CloseSession,
    Create,
    Delete,
    EventType,
    Multi,
    NoChildrenForEphemerals,
    NodeExists,
    NoNode,
    NotEmpty,
    OpenSession,
    SessionExpired,
    SetData,
    Tree,
    WatchEvent,
)


def ok(tree: Tree, zxid: int, cmd):
    result, events = tree.apply(zxid, cmd)
    assert not isinstance(result, Exception), result
    return result, events


def test_create_get_set_with_versions_and_zxids():
    t = Tree()
    path, events = ok(t, 1, Create("/app", b"v0"))
    assert path == "/app"
    assert events == [WatchEvent(EventType.CREATED, "/app"),
                      WatchEvent(EventType.CHILDREN_CHANGED, "/")]
    stat, events = ok(t, 2, SetData("/app", b"v1", version=0))
    assert (stat.version, stat.mzxid, stat.czxid) == (1, 2, 1)
    assert events == [WatchEvent(EventType.DATA_CHANGED, "/app")]
    result, events = t.apply(3, SetData("/app", b"v2", version=0))     # compare-and-set
    assert isinstance(result, BadVersion) and events == []
    assert t.get("/app")[0] == b"v1"
    assert isinstance(t.apply(4, Create("/app"))[0], NodeExists)
    assert isinstance(t.apply(5, Create("/no/parent"))[0], NoNode)
    assert isinstance(t.apply(6, Delete("/"))[0], BadArguments)
    ok(t, 7, Create("/app/child"))
    assert isinstance(t.apply(8, Delete("/app"))[0], NotEmpty)
    assert isinstance(t.apply(9, Delete("/app/child", version=3))[0], BadVersion)
    ok(t, 10, Delete("/app/child", version=0))
    assert t.children("/app") == [] and t.exists("/app/child") is None


def test_sequential_names_count_per_parent():
    t = Tree()
    ok(t, 1, Create("/q"))
    names = [ok(t, 2 + i, Create("/q/item-", sequential=True))[0] for i in range(3)]
    assert names == ["/q/item-0000000000", "/q/item-0000000001", "/q/item-0000000002"]
    ok(t, 9, Delete(names[0]))
    assert ok(t, 10, Create("/q/item-", sequential=True))[0] == "/q/item-0000000004"


def test_ephemerals_belong_to_a_live_session_and_go_with_it():
    t = Tree()
    ok(t, 1, OpenSession(7, 10.0))
    ok(t, 2, Create("/locks"))
    lock, _ = ok(t, 3, Create("/locks/lock-", ephemeral=True, sequential=True, session=7))
    assert t.exists(lock).ephemeral_owner == 7
    assert isinstance(t.apply(4, Create(lock + "/x"))[0], NoChildrenForEphemerals)
    assert isinstance(t.apply(5, Create("/e", ephemeral=True, session=99))[0], SessionExpired)
    _, events = ok(t, 6, CloseSession(7))
    assert t.exists(lock) is None and 7 not in t.sessions
    assert WatchEvent(EventType.DELETED, lock) in events
    assert isinstance(t.apply(7, Create("/e", ephemeral=True, session=7))[0], SessionExpired)


def test_multi_is_all_or_nothing():
    t = Tree()
    ok(t, 1, Create("/a", b"1"))
    before = copy.deepcopy(t.dump())
    # ops apply in order: the Check sees the SetData before it, and fails
    result, events = t.apply(2, Multi((Create("/b"), SetData("/a", b"2"),
                                       Check("/a", version=0), Delete("/zzz"))))
    assert isinstance(result, BadVersion) and events == []
    assert t.dump() == before
    result, events = t.apply(2, Multi((Create("/b"), Delete("/zzz"))))
    assert isinstance(result, NoNode) and events == []
    assert t.dump() == before
    results, events = ok(t, 3, Multi((Create("/b"), Check("/a", 0), SetData("/a", b"2"))))
    assert results[0] == "/b" and t.get("/a")[0] == b"2"
    assert WatchEvent(EventType.CREATED, "/b") in events


def test_bad_input_named():
    t = Tree()
    for bad in ("relative", "/trailing/", "/a//b", "/a/../b"):
        assert isinstance(t.apply(1, Create(bad))[0], BadArguments)
    result, _ = t.apply(1, Create("/big", b"x" * (MAX_DATA + 1)))
    assert isinstance(result, BadArguments) and "at most" in str(result)
    assert isinstance(t.apply(1, Multi((OpenSession(1, 1.0),)))[0], BadArguments)


def test_snapshot_round_trip():
    t = Tree()
    ok(t, 1, OpenSession(5, 3.0))
    ok(t, 2, Create("/x", b"data"))
    ok(t, 3, Create("/x/eph", ephemeral=True, session=5))
    ok(t, 4, Create("/x/s-", sequential=True))
    again = Tree.load(copy.deepcopy(t.dump()))
    assert again.dump() == t.dump()
    assert again.children("/x") == t.children("/x")
    ok(again, 5, CloseSession(5))                  # ephemeral ownership survived the snapshot
    assert again.exists("/x/eph") is None


names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
simple = st.one_of(
    st.builds(Create, paths, st.binary(max_size=4), st.booleans(), st.booleans(),
              st.sampled_from([0, 1, 2])),
    st.builds(SetData, paths, st.binary(max_size=4), st.sampled_from([-1, 0, 1])),
    st.builds(Delete, paths, st.sampled_from([-1, 0, 1])),
    st.builds(OpenSession, st.sampled_from([1, 2]), st.just(5.0)),
    st.builds(CloseSession, st.sampled_from([1, 2])),
)
commands = st.one_of(simple, st.builds(lambda ops: Multi(tuple(ops)), st.lists(
    st.one_of(st.builds(Create, paths), st.builds(SetData, paths, st.binary(max_size=2)),
              st.builds(Delete, paths), st.builds(Check, paths, st.sampled_from([-1, 0]))),
    max_size=4)))


@settings(max_examples=150, deadline=None)
@given(st.lists(commands, max_size=40), st.integers(0, 40))
def test_snapshot_then_replay_equals_live_and_failures_change_nothing(cmds, cut):
    live, restored = Tree(), None
    for zxid, cmd in enumerate(cmds, start=1):
        before = copy.deepcopy(live.dump())
        result, events = live.apply(zxid, cmd)
        if isinstance(result, Exception):
            assert live.dump() == before and events == []
        if zxid == cut:
            restored = Tree.load(copy.deepcopy(live.dump()))
        elif restored is not None:
            restored.apply(zxid, cmd)
    if restored is not None:
        assert restored.dump() == live.dump()


def test_a_retried_request_applies_once():
    t = Tree()
    first, _ = t.apply_request(1, client=9, seq=1, cmd=Create("/seq-", sequential=True))
    again, events = t.apply_request(2, client=9, seq=1, cmd=Create("/seq-", sequential=True))
    assert first == again == "/seq-0000000000" and events == []
    assert t.children("/") == ["seq-0000000000"]
    ok(t, 3, Create("/k", b"v"))
    won, _ = t.apply_request(4, client=9, seq=2, cmd=SetData("/k", b"w", version=0))
    retried, _ = t.apply_request(5, client=9, seq=2, cmd=SetData("/k", b"w", version=0))
    assert won == retried and won["version"] == 1      # not "bad_version" on the retry
    old, _ = t.apply_request(6, client=9, seq=1, cmd=Delete("/k"))
    assert old["error"] == "bad_arguments" and t.exists("/k") is not None
    restored = Tree.load(copy.deepcopy(t.dump()))       # the table is replicated state
    assert restored.apply_request(7, 9, 2, SetData("/k", b"x", 0))[0] == won
