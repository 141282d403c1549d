"""Cutting lineage into stages (no cluster): narrow dependencies stay in a
stage, each shuffle becomes a parent stage, and a fully cached dataset ends
the walk."""

from __future__ import annotations

from stackyard.dataset import lineage, stages
from stackyard.dataset.partitioner import Partitioner
from stackyard.dataset.storage import StorageLevel


def numbered(*nodes):
    for i, n in enumerate(nodes):
        n.id = i
    return nodes


def shuffle(parent, n=2):
    dep = lineage.ShuffleDep(parent, Partitioner(n), "aggregate",
                             lineage.Aggregator(lambda v: v, max, max), op="reduceByKey")
    dep.id = 100 + parent.id
    return dep


def test_a_narrow_chain_is_one_stage():
    src = lineage.ParallelNode([[1], [2], [3]], "parallelize", "t:1")
    m = lineage.PipeNode(src, lambda s, it: it, False, "map", "t:2")
    numbered(src, m)
    plans, stage_of = stages.build(m, [0, 2], set())
    assert len(plans) == 1 and plans[0].partitions == [0, 2] and plans[0].dep is None
    assert stage_of == {}


def test_shuffles_become_parent_stages_in_order():
    a = lineage.ParallelNode([[1], [2]], "parallelize", "t:1")
    b = lineage.ParallelNode([[3]], "parallelize", "t:2")
    numbered(a, b)
    ra = lineage.ShuffledNode(shuffle(a), "reduceByKey", "t:3")
    rb = lineage.ShuffledNode(shuffle(b, 2), "reduceByKey", "t:4")
    u = lineage.UnionNode([ra, rb], "union", "t:5")
    again = lineage.ShuffledNode(shuffle(u, 3), "reduceByKey", "t:6")
    ra.id, rb.id, u.id, again.id = 10, 11, 12, 13
    plans, stage_of = stages.build(again, [0, 1, 2], set())
    assert sorted(len(p.partitions) for p in plans[:2]) == [1, 2]    # either order
    assert [len(p.partitions) for p in plans[2:]] == [4, 3]
    assert sorted(plans[2].parents) == [0, 1] and plans[3].parents == [2]
    assert stage_of[again.deps[0].id] == 2
    assert all(p.parents == [] for p in plans[:2])


def test_a_fully_cached_dataset_ends_the_walk():
    a = lineage.ParallelNode([[1], [2]], "parallelize", "t:1")
    a.id = 0
    grouped = lineage.ShuffledNode(shuffle(a), "groupByKey", "t:2")
    grouped.id = 1
    grouped.storage = StorageLevel.MEMORY_ONLY
    top = lineage.PipeNode(grouped, lambda s, it: it, True, "mapValues", "t:3")
    top.id = 2
    assert len(stages.build(top, [0, 1], set())[0]) == 2
    plans, stage_of = stages.build(top, [0, 1], {1})
    assert len(plans) == 1 and stage_of == {}


def test_preferred_locations_follow_cache_then_input_then_parents():
    split = type("Split", (), {"hosts": ("cs-1:1",)})()
    text = lineage.TextNode([split], False, True, "textFile", "t:1")
    text.id = 0
    m = lineage.PipeNode(text, lambda s, it: it, False, "map", "t:2")
    m.id = 1
    assert stages.preferred(m, 0, "app", {}) == ["cs-1:1"]
    m.storage = StorageLevel.MEMORY_ONLY
    held = {stages.block_id("app", 1, 0): [["worker-2", "127.0.0.1:9"]]}
    assert stages.preferred(m, 0, "app", held) == ["worker-2"]


def test_a_shuffle_an_earlier_job_wrote_needs_no_stage():
    a = lineage.ParallelNode([[1], [2]], "parallelize", "t:1")
    a.id = 0
    dep = shuffle(a)
    reduced = lineage.ShuffledNode(dep, "reduceByKey", "t:2")
    reduced.id = 1
    plans, stage_of = stages.build(reduced, [0, 1], set(), {dep.id: ("job_1", 0)})
    assert len(plans) == 1 and plans[0].parents == [] and stage_of == {}
