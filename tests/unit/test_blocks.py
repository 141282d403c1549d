"""A worker's block store: levels, the memory budget, eviction and spills."""

from __future__ import annotations

import pytest

from stackyard.compute.blocks import BlockStore


def test_memory_blocks_are_dropped_least_recently_used_first(tmp_path):
    store = BlockStore(tmp_path / "b", memory_limit=300)
    for i in range(3):
        store.put(f"app/rdd_1_{i}", bytes([i]) * 100, "memory")
    assert store.get("app/rdd_1_0") == b"\0" * 100        # now the most recently used
    store.put("app/rdd_1_3", b"x" * 100, "memory")
    assert store.get("app/rdd_1_1") is None                # evicted: recomputed later
    assert store.get("app/rdd_1_0") is not None and store.get("app/rdd_1_3") == b"x" * 100
    assert store.stats()["dropped"] == 1 and store.memory_used == 300


def test_memory_and_disk_blocks_spill_instead_of_dropping(tmp_path):
    store = BlockStore(tmp_path / "b", memory_limit=250)
    for i in range(4):
        store.put(f"app/rdd_2_{i}", bytes([i]) * 100, "memory_and_disk")
    assert store.stats()["disk_blocks"] == 2 and store.stats()["memory_blocks"] == 2
    assert all(store.get(f"app/rdd_2_{i}") == bytes([i]) * 100 for i in range(4))
    assert store.stats()["dropped"] == 0
    big = b"y" * 1000                                      # larger than the whole budget
    store.put("app/rdd_2_9", big, "memory_and_disk")
    assert store.get("app/rdd_2_9") == big


def test_disk_only_and_drop_by_prefix(tmp_path):
    store = BlockStore(tmp_path / "b", memory_limit=1000)
    store.put("app/rdd_3_0", b"d" * 10, "disk")
    store.put("app/rdd_4_0", b"m" * 10, "memory")
    store.put("other/rdd_3_0", b"o" * 10, "memory")
    assert store.memory_used == 20 and store.disk_used == 10
    store.drop("app/rdd_3_")
    assert store.get("app/rdd_3_0") is None and store.disk_used == 0
    assert sorted(store.ids()) == ["app/rdd_4_0", "other/rdd_3_0"]
    store.drop("app/")
    assert store.ids() == ["other/rdd_3_0"]


def test_bad_level_and_a_restart_that_forgets(tmp_path):
    store = BlockStore(tmp_path / "b", memory_limit=1000)
    with pytest.raises(ValueError, match="level"):
        store.put("app/x", b"", "tape")
    store.put("app/rdd_1_0", b"z", "disk")
    assert BlockStore(tmp_path / "b", memory_limit=1000).ids() == []
