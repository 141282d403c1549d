from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.dfs import ops
from stackyard.dfs.namespace import Namespace, normalize
from stackyard.errors import DirectoryNotEmptyError, LeaseHeldError, QuotaExceededError
from stackyard.storage.oplog import OpLog


def mk(path, parents=True):
    return ops.Mkdir(path, "u", "g", 0o755, 1.0, parents)


def create(path, holder="c1", overwrite=False):
    return ops.Create(path, "u", "g", 0o644, 2.0, 3, 1 << 20, overwrite, holder)


def test_mkdir_create_errors_like_hdfs():
    ns = Namespace()
    assert ns.apply(mk("/a/b/c"))
    assert ns.apply(mk("/a/b/c")) is False          # -p on an existing dir: fine
    with pytest.raises(FileExistsError):
        ns.apply(mk("/a/b/c", parents=False))
    with pytest.raises(FileNotFoundError):
        ns.apply(mk("/x/y", parents=False))
    ns.apply(create("/a/f"))
    with pytest.raises(FileExistsError):
        ns.apply(mk("/a/f"))
    with pytest.raises(NotADirectoryError):
        ns.apply(create("/a/f/g"))
    with pytest.raises(IsADirectoryError):
        ns.apply(create("/a/b"))
    with pytest.raises(LeaseHeldError):
        ns.apply(create("/a/f", holder="c2", overwrite=True))
    with pytest.raises(DirectoryNotEmptyError):
        ns.apply(ops.Delete("/a", False))
    with pytest.raises(PermissionError):
        ns.apply(ops.Delete("/", True))


def test_rename_into_directory_and_not_into_itself():
    ns = Namespace()
    ns.apply(mk("/a/b"))
    ns.apply(mk("/d"))
    assert ns.apply(ops.Rename("/a", "/d", 3.0)) == "/d/a"
    assert ns.lookup("/d/a/b").is_dir
    with pytest.raises(ValueError, match="into itself"):
        ns.apply(ops.Rename("/d", "/d/a/b", 3.0))
    ns.apply(create("/d/f"))
    ns.apply(create("/d/g"))
    with pytest.raises(FileExistsError):
        ns.apply(ops.Rename("/d/f", "/d/g", 3.0))


def test_chunks_versions_and_commit():
    ns = Namespace()
    ns.apply(create("/f"))
    ns.apply(ops.AddChunk("/f", "0123456789abcdef"))
    ns.apply(ops.BumpVersion("0123456789abcdef", 1))
    ns.apply(ops.CommitChunk("0123456789abcdef", 1, 1000, 5.0))
    assert ns.lookup("/f").length == 1000
    with pytest.raises(ValueError, match="backwards"):
        ns.apply(ops.CommitChunk("0123456789abcdef", 1, 10, 5.0))
    handles = ns.apply(ops.Delete("/f", False))
    assert handles == ["0123456789abcdef"] and not ns.chunks


def test_truncate_drops_later_chunks_and_cuts_the_one_it_falls_in():
    ns = Namespace()
    ns.apply(create("/f"))
    for i, n in enumerate((1000, 1000, 500)):
        h = f"{i:016x}"
        ns.apply(ops.AddChunk("/f", h, 1))
        ns.apply(ops.CommitChunk(h, 1, n, 3.0))
    with pytest.raises(LeaseHeldError, match="TRUNCATE_FILE"):
        ns.apply(ops.Truncate("/f", 10, 4.0))             # still being written
    ns.apply(ops.Close("/f", "c1", 4.0))
    with pytest.raises(ValueError, match="Current size: 2500, truncate size: 2501"):
        ns.apply(ops.Truncate("/f", 2501, 5.0))
    dropped, cut = ns.apply(ops.Truncate("/f", 1200, 5.0))
    f = ns.lookup("/f")
    assert dropped == [f"{2:016x}"] and cut.handle == f"{1:016x}" and cut.length == 200
    assert f.length == 1200 and len(f.chunks) == 2 and f"{2:016x}" not in ns.chunks
    assert cut.version == 1 and f.mtime == 5.0
    assert ns.apply(ops.Truncate("/f", 1000, 6.0)) == ([f"{1:016x}"], None)   # a boundary
    assert ns.apply(ops.Truncate("/f", 0, 7.0)) == ([f"{0:016x}"], None)
    assert f.length == 0 and not f.chunks and not ns.chunks


def test_quotas_refuse_what_would_pass_them_and_survive_a_checkpoint():
    ns = Namespace()
    ns.apply(mk("/q"))
    ns.apply(ops.SetQuota("/q", 3, None))            # /q itself counts, as in HDFS
    ns.apply(mk("/q/a"))
    ns.apply(create("/q/f"))
    with pytest.raises(QuotaExceededError, match="quota=3 file count=4"):
        ns.apply(create("/q/g"))
    with pytest.raises(QuotaExceededError):
        ns.apply(mk("/q/a/b/c"))
    ns.apply(create("/elsewhere"))
    with pytest.raises(QuotaExceededError):
        ns.apply(ops.Rename("/elsewhere", "/q/moved", 3.0))
    ns.apply(ops.Rename("/q/f", "/q/a/f", 3.0))     # within the tree: no growth
    ns.apply(mk("/s"))
    ns.apply(ops.SetQuota("/s", None, 4 << 20))      # 4 MiB of raw bytes
    ns.apply(create("/s/f"))                          # 1 MiB chunks, replication 3
    ns.apply(ops.AddChunk("/s/f", "00000000000000a1", 1))     # 3 MiB reserved
    with pytest.raises(QuotaExceededError, match="DiskSpace quota of /s is exceeded"):
        ns.apply(ops.AddChunk("/s/f", "00000000000000a2", 1))
    ns.apply(ops.CommitChunk("00000000000000a1", 1, 1000, 4.0))
    ns.apply(ops.Close("/s/f", "c1", 5.0))            # 3,000 bytes charged now
    ns.apply(ops.SetQuota("/s", None, 5000))
    with pytest.raises(QuotaExceededError):
        ns.apply(ops.SetReplication("/s", 6))
    ns.apply(ops.SetReplication("/s", 5))
    again = Namespace.load(ns.dump())
    assert (again.lookup("/q").ns_quota, again.lookup("/s").ds_quota) == (3, 5000)
    ns.apply(ops.SetQuota("/q", -1, None))
    ns.apply(create("/q/g"))
    with pytest.raises(ValueError, match="Invalid values for quota : 0"):
        ns.apply(ops.SetQuota("/q", 0, None))


@pytest.mark.parametrize("bad", ["", "rel/x", "/a/../b", "/a/./b", "/a\x00b"])
def test_bad_paths_named(bad):
    with pytest.raises(ValueError, match="path"):
        normalize(bad)


def test_normalize():
    assert normalize("//a//b/") == "/a/b"


# -- property: replaying the log over a checkpoint rebuilds the same tree ------

names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
op_strategy = st.one_of(
    st.builds(lambda p, par: mk(p, par), paths, st.booleans()),
    st.builds(lambda p, o: create(p, "h", o), paths, st.booleans()),
    st.builds(lambda p, r: ops.Delete(p, r), paths, st.booleans()),
    st.builds(lambda s, d: ops.Rename(s, d, 9.0), paths, paths),
    st.builds(lambda p, m: ops.SetPermission(p, m), paths, st.integers(0, 0o777)),
    st.builds(lambda p: ops.Close(p, "h", 4.0), paths),
    st.builds(lambda p, n: ops.Truncate(p, n, 5.0), paths, st.integers(0, 2)),
    st.builds(lambda p, n: ops.SetQuota(p, n, None), paths, st.sampled_from([-1, 1, 2, 3])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(op_strategy, max_size=40), st.integers(0, 40))
def test_checkpoint_plus_replay_equals_live_state(tmp_path_factory, op_list, cut):
    live = Namespace()
    log = OpLog(tmp_path_factory.mktemp("log"))
    log.recover()
    for i, op in enumerate(op_list):
        try:
            live.apply(op)
        except (OSError, ValueError):
            continue                         # rejected ops are never logged
        log.append(ops.encode(op))
        if i == cut:
            log.checkpoint(live.dump())
    log.close()
    again = OpLog(log.dir)
    image, records = again.recover()
    rebuilt = Namespace.load(image) if image else Namespace()
    for rec in records:
        rec = dict(rec)
        rec.pop("tx")
        rebuilt.apply(ops.decode(rec))
    assert rebuilt.dump() == live.dump()


def test_a_master_starts_past_a_record_it_cannot_apply_and_names_it(tmp_path):
    """A record written before today's bounds (here a mkdir 1,001 levels deep)
    is skipped on replay and named, never a crash or a loop; the op log of a
    master from before the log was replicated is imported once."""
    from stackyard.cluster.config import MasterConfig
    from stackyard.dfs import ops
    from stackyard.dfs.master import Master
    from stackyard.net.auth import Secret
    from stackyard.storage.oplog import OpLog
    log = OpLog(tmp_path)
    log.recover()
    log.append(ops.encode(ops.Mkdir("/ok", "root", "g", 0o755, 1.0, True)))
    log.append(ops.encode(ops.Mkdir("/d" * 1001, "root", "g", 0o755, 1.0, True)))
    log.append(ops.encode(ops.Mkdir("/after", "root", "g", 0o755, 1.0, True)))
    log.close()
    m = Master(MasterConfig(str(tmp_path), "unused"), Secret(b"k" * 32))
    assert m.ns.lookup("/ok") and m.ns.lookup("/after")
    assert len(m.skipped) == 1 and m.skipped[0].startswith("op log record 2 (Mkdir /d/d")
    assert "deeper than 1000" in m.skipped[0]
    m.close()
    # the old op log became the replicated log's first snapshot: read once, kept
    again = Master(MasterConfig(str(tmp_path), "unused"), Secret(b"k" * 32))
    assert again.ns.lookup("/ok") and again.ns.lookup("/after") and not again.skipped
    assert (tmp_path / "journal").is_dir()
    again.close()
