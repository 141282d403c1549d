from stackyard.dfs.leases import Leases


def test_leases_follow_renames_and_deletes_of_trees():
    leases = Leases(timeout=10)
    for path in ("/a/x", "/a/b/y", "/ab/z"):
        leases.grant(path, "w", now=0)
    leases.moved("/a", "/c")
    assert sorted(leases.paths()) == ["/ab/z", "/c/b/y", "/c/x"]
    leases.release_tree("/c")
    assert leases.paths() == ["/ab/z"]              # a sibling sharing a prefix stays
    assert leases.renew("w", now=5) == 1
    assert leases.expired(now=14) == [] and leases.expired(now=16) == [("/ab/z", "w")]
