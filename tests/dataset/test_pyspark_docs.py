"""Every RDD method the dataset API offers, with the cases of PySpark's own
documentation of that method (pyspark/core/rdd.py docstrings): the same
calls must give the results PySpark documents. Where PySpark's docs have
no example, the case is ours, with the result PySpark gives."""

from __future__ import annotations

import gzip
from operator import add

import pytest

from stackyard.compute.client import JobFailed
from stackyard.dataset import StorageLevel

# -- transformations ----------------------------------------------------------------


def test_map(sc):
    rdd = sc.parallelize(["b", "a", "c"])
    assert sorted(rdd.map(lambda x: (x, 1)).collect()) == [("a", 1), ("b", 1), ("c", 1)]


def test_flat_map(sc):
    rdd = sc.parallelize([2, 3, 4])
    assert sorted(rdd.flatMap(lambda x: range(1, x)).collect()) == [1, 1, 1, 2, 2, 3]
    assert sorted(rdd.flatMap(lambda x: [(x, x), (x, x)]).collect()) == [
        (2, 2), (2, 2), (3, 3), (3, 3), (4, 4), (4, 4)]


def test_filter(sc):
    assert sc.parallelize([1, 2, 3, 4, 5]).filter(lambda x: x % 2 == 0).collect() == [2, 4]


def test_map_partitions(sc):
    def f(iterator):
        yield sum(iterator)
    assert sc.parallelize([1, 2, 3, 4], 2).mapPartitions(f).collect() == [3, 7]


def test_map_partitions_with_index(sc):
    def f(split_index, iterator):
        yield split_index
    assert sc.parallelize([1, 2, 3, 4], 4).mapPartitionsWithIndex(f).sum() == 6


def test_distinct(sc):
    assert sorted(sc.parallelize([1, 1, 2, 3]).distinct().collect()) == [1, 2, 3]


def test_union(sc):
    rdd = sc.parallelize([1, 1, 2, 3])
    assert rdd.union(rdd).collect() == [1, 1, 2, 3, 1, 1, 2, 3]


def test_intersection(sc):
    rdd1 = sc.parallelize([1, 10, 2, 3, 4, 5])
    rdd2 = sc.parallelize([1, 6, 2, 3, 7, 8])
    assert sorted(rdd1.intersection(rdd2).collect()) == [1, 2, 3]


def test_subtract(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 3)])
    rdd2 = sc.parallelize([("a", 3), ("c", None)])
    assert sorted(rdd1.subtract(rdd2).collect()) == [("a", 1), ("b", 4), ("b", 5)]


def test_subtract_by_key(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 2)])
    rdd2 = sc.parallelize([("a", 3), ("c", None)])
    assert sorted(rdd1.subtractByKey(rdd2).collect()) == [("b", 4), ("b", 5)]


def test_cartesian(sc):
    rdd = sc.parallelize([1, 2])
    assert sorted(rdd.cartesian(rdd).collect()) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_sample(sc):
    rdd = sc.parallelize(range(100), 4)
    assert 6 <= rdd.sample(False, 0.1, 81).count() <= 14
    # the same seed gives the same sample; with replacement may repeat elements
    assert rdd.sample(False, 0.5, 7).collect() == rdd.sample(False, 0.5, 7).collect()
    assert 100 <= rdd.sample(True, 2.0, 3).count() <= 300


def test_key_by_and_cogroup(sc):
    rdd1 = sc.parallelize(range(0, 3)).keyBy(lambda x: x * x)
    rdd2 = sc.parallelize(zip(range(0, 5), range(0, 5)))
    assert [(x, list(map(list, y))) for x, y in sorted(rdd1.cogroup(rdd2).collect())] == [
        (0, [[0], [0]]), (1, [[1], [1]]), (2, [[], [2]]), (3, [[], [3]]), (4, [[2], [4]])]


def test_keys_values(sc):
    assert sc.parallelize([(1, 2), (3, 4)]).keys().collect() == [1, 3]
    assert sc.parallelize([(1, 2), (3, 4)]).values().collect() == [2, 4]


def test_map_values(sc):
    rdd = sc.parallelize([("a", ["apple", "banana", "lemon"]), ("b", ["grapes"])])
    assert rdd.mapValues(len).collect() == [("a", 3), ("b", 1)]


def test_flat_map_values(sc):
    rdd = sc.parallelize([("a", ["x", "y", "z"]), ("b", ["p", "r"])])
    assert rdd.flatMapValues(lambda x: x).collect() == [
        ("a", "x"), ("a", "y"), ("a", "z"), ("b", "p"), ("b", "r")]


def test_group_by(sc):
    result = sc.parallelize([1, 1, 2, 3, 5, 8]).groupBy(lambda x: x % 2).collect()
    assert sorted([(x, sorted(y)) for (x, y) in result]) == [(0, [2, 8]), (1, [1, 1, 3, 5])]


def test_group_by_key(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.groupByKey().mapValues(len).collect()) == [("a", 2), ("b", 1)]
    assert sorted(rdd.groupByKey().mapValues(list).collect()) == [("a", [1, 1]), ("b", [1])]


def test_reduce_by_key(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.reduceByKey(add).collect()) == [("a", 2), ("b", 1)]


def test_aggregate_by_key(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])
    seq = (lambda x, y: (x[0] + y, x[1] + 1))
    comb = (lambda x, y: (x[0] + y[0], x[1] + y[1]))
    assert sorted(rdd.aggregateByKey((0, 0), seq, comb).collect()) == [("a", (3, 2)),
                                                                       ("b", (1, 1))]


def test_fold_by_key(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.foldByKey(0, add).collect()) == [("a", 2), ("b", 1)]


def test_combine_by_key(sc):
    def to_list(a):
        return [a]

    def append(a, b):
        a.append(b)
        return a

    def extend(a, b):
        a.extend(b)
        return a

    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])
    assert sorted(rdd.combineByKey(to_list, append, extend).collect()) == [("a", [1, 2]),
                                                                           ("b", [1])]


TMP = [("a", 1), ("b", 2), ("1", 3), ("d", 4), ("2", 5)]


def test_sort_by_key(sc):
    assert sc.parallelize(TMP).sortByKey().first() == ("1", 3)
    assert sc.parallelize(TMP).sortByKey(True, 1).collect() == [
        ("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    assert sc.parallelize(TMP).sortByKey(True, 2).collect() == [
        ("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    tmp2 = [("Mary", 1), ("had", 2), ("a", 3), ("little", 4), ("lamb", 5),
            ("whose", 6), ("fleece", 7), ("was", 8), ("white", 9)]
    assert sc.parallelize(tmp2).sortByKey(True, 3, keyfunc=lambda k: k.lower()).collect() == [
        ("a", 3), ("fleece", 7), ("had", 2), ("lamb", 5), ("little", 4), ("Mary", 1),
        ("was", 8), ("white", 9), ("whose", 6)]
    assert sc.parallelize(TMP, 3).sortByKey(False, 2).collect() == [
        ("d", 4), ("b", 2), ("a", 1), ("2", 5), ("1", 3)]


def test_sort_by(sc):
    assert sc.parallelize(TMP).sortBy(lambda x: x[0]).collect() == [
        ("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    assert sc.parallelize(TMP).sortBy(lambda x: x[1]).collect() == [
        ("a", 1), ("b", 2), ("1", 3), ("d", 4), ("2", 5)]
    big = sc.parallelize(range(1000), 4).sortBy(lambda x: -x, numPartitions=3)
    assert big.collect() == list(range(999, -1, -1))
    assert big.getNumPartitions() == 3


def test_join(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    rdd2 = sc.parallelize([("a", 2), ("a", 3)])
    assert sorted(rdd1.join(rdd2).collect()) == [("a", (1, 2)), ("a", (1, 3))]


def test_left_outer_join(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    rdd2 = sc.parallelize([("a", 2)])
    assert sorted(rdd1.leftOuterJoin(rdd2).collect()) == [("a", (1, 2)), ("b", (4, None))]


def test_right_outer_join(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    rdd2 = sc.parallelize([("a", 2)])
    assert sorted(rdd2.rightOuterJoin(rdd1).collect()) == [("a", (2, 1)), ("b", (None, 4))]


def test_full_outer_join(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    rdd2 = sc.parallelize([("a", 2), ("c", 8)])
    assert sorted(rdd1.fullOuterJoin(rdd2).collect()) == [
        ("a", (1, 2)), ("b", (4, None)), ("c", (None, 8))]


def test_cogroup(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    rdd2 = sc.parallelize([("a", 2)])
    assert [(x, tuple(map(list, y))) for x, y in sorted(list(rdd1.cogroup(rdd2).collect()))] \
        == [("a", ([1], [2])), ("b", ([4], []))]


def test_join_of_copartitioned_datasets_needs_no_shuffle(sc):
    left = sc.parallelize([(i, i) for i in range(20)]).partitionBy(2)
    right = sc.parallelize([(i, -i) for i in range(0, 20, 2)]).partitionBy(2)
    joined = left.join(right)
    assert b"+-" not in joined.toDebugString().split(b"PartitionerAwareUnionRDD")[0]
    assert sorted(joined.collect()) == [(i, (i, -i)) for i in range(0, 20, 2)]


def test_repartition(sc):
    rdd = sc.parallelize([1, 2, 3, 4, 5, 6, 7], 4)
    assert sorted(rdd.glom().collect()) == [[1], [2, 3], [4, 5], [6, 7]]
    assert len(rdd.repartition(2).glom().collect()) == 2
    assert len(rdd.repartition(10).glom().collect()) == 10
    assert sorted(rdd.repartition(3).collect()) == [1, 2, 3, 4, 5, 6, 7]


def test_coalesce(sc):
    assert sc.parallelize([1, 2, 3, 4, 5], 3).glom().collect() == [[1], [2, 3], [4, 5]]
    assert sc.parallelize([1, 2, 3, 4, 5], 3).coalesce(1).glom().collect() == [[1, 2, 3, 4, 5]]
    assert sc.parallelize([1, 2, 3, 4, 5], 3).coalesce(2, shuffle=True).getNumPartitions() == 2


def test_partition_by(sc):
    pairs = sc.parallelize([1, 2, 3, 4, 2, 4, 1]).map(lambda x: (x, x))
    sets = pairs.partitionBy(2).glom().collect()
    assert len(set(sets[0]).intersection(set(sets[1]))) == 0
    # ints go to key mod N, as with PySpark's portable_hash
    assert pairs.partitionBy(2).glom().collect() == [[(2, 2), (4, 4), (2, 2), (4, 4)],
                                                      [(1, 1), (3, 3), (1, 1)]]
    odd_first = pairs.partitionBy(2, lambda k: k + 1).glom().collect()
    assert sorted(odd_first[0]) == [(1, 1), (1, 1), (3, 3)]


def test_zip(sc):
    rdd1 = sc.parallelize(range(0, 5))
    rdd2 = sc.parallelize(range(1000, 1005))
    assert rdd1.zip(rdd2).collect() == [(0, 1000), (1, 1001), (2, 1002), (3, 1003), (4, 1004)]
    with pytest.raises(ValueError, match="same number of partitions"):
        rdd1.zip(sc.parallelize(range(5), 3))


def test_zip_with_index(sc):
    assert sc.parallelize(["a", "b", "c", "d"], 3).zipWithIndex().collect() == [
        ("a", 0), ("b", 1), ("c", 2), ("d", 3)]


def test_glom(sc):
    assert sorted(sc.parallelize([1, 2, 3, 4], 2).glom().collect()) == [[1, 2], [3, 4]]


# -- actions ---------------------------------------------------------------------------


def test_collect(sc):
    assert sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert sc.parallelize(["x", "y", "z"]).collect() == ["x", "y", "z"]


def test_count(sc):
    assert sc.parallelize([2, 3, 4]).count() == 3


def test_first(sc):
    assert sc.parallelize([2, 3, 4]).first() == 2
    with pytest.raises(ValueError, match="RDD is empty"):
        sc.parallelize([]).first()


def test_take(sc):
    assert sc.parallelize([2, 3, 4, 5, 6]).cache().take(2) == [2, 3]
    assert sc.parallelize([2, 3, 4, 5, 6]).take(10) == [2, 3, 4, 5, 6]
    assert sc.parallelize(range(100), 100).filter(lambda x: x > 90).take(3) == [91, 92, 93]


def test_take_ordered(sc):
    assert sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7]).takeOrdered(6) == [1, 2, 3, 4, 5, 6]
    assert sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).takeOrdered(6, key=lambda x: -x) \
        == [10, 9, 7, 6, 5, 4]
    assert sc.emptyRDD().takeOrdered(3) == []


def test_top(sc):
    assert sc.parallelize([10, 4, 2, 12, 3]).top(1) == [12]
    assert sc.parallelize([2, 3, 4, 5, 6], 2).top(2) == [6, 5]
    assert sc.parallelize([10, 4, 2, 12, 3]).top(3, key=str) == [4, 3, 2]


def test_reduce(sc):
    assert sc.parallelize([1, 2, 3, 4, 5]).reduce(add) == 15
    assert sc.parallelize((2 for _ in range(10))).map(lambda x: 1).cache().reduce(add) == 10
    with pytest.raises(ValueError, match="Can not reduce\\(\\) empty RDD"):
        sc.parallelize([]).reduce(add)


def test_fold(sc):
    assert sc.parallelize([1, 2, 3, 4, 5]).fold(0, add) == 15


def test_aggregate(sc):
    seq = (lambda x, y: (x[0] + y, x[1] + 1))
    comb = (lambda x, y: (x[0] + y[0], x[1] + y[1]))
    assert sc.parallelize([1, 2, 3, 4]).aggregate((0, 0), seq, comb) == (10, 4)
    assert sc.parallelize([]).aggregate((0, 0), seq, comb) == (0, 0)


def test_foreach_and_foreach_partition(sc):
    seen = sc.accumulator(0)
    sc.parallelize([1, 2, 3, 4, 5]).foreach(lambda x: seen.add(x))
    assert seen.value == 15
    parts = sc.accumulator(0)

    def f(iterator):
        for _ in iterator:
            pass
        parts.add(1)

    sc.parallelize([1, 2, 3, 4, 5], 3).foreachPartition(f)
    assert parts.value == 3


def test_count_by_value(sc):
    assert sorted(sc.parallelize([1, 2, 1, 2, 2], 2).countByValue().items()) == [(1, 2), (2, 3)]


def test_count_by_key(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.countByKey().items()) == [("a", 2), ("b", 1)]


def test_collect_as_map(sc):
    m = sc.parallelize([(1, 2), (3, 4)]).collectAsMap()
    assert m[1] == 2 and m[3] == 4


def test_lookup(sc):
    data = range(1000)
    rdd = sc.parallelize(zip(data, data), 10)
    assert rdd.lookup(42) == [42]
    ordered = rdd.sortByKey()
    assert ordered.lookup(42) == [42]
    assert ordered.lookup(1024) == []
    rdd2 = sc.parallelize([(("a", "b"), "c")]).groupByKey()
    assert list(rdd2.lookup(("a", "b"))[0]) == ["c"]


def test_sum_min_max_mean(sc):
    assert sc.parallelize([1.0, 2.0, 3.0]).sum() == 6.0
    rdd = sc.parallelize([1.0, 5.0, 43.0, 10.0])
    assert rdd.max() == 43.0
    assert rdd.max(key=str) == 5.0
    rdd = sc.parallelize([2.0, 5.0, 43.0, 10.0])
    assert rdd.min() == 2.0
    assert rdd.min(key=str) == 10.0
    assert sc.parallelize([1, 2, 3]).mean() == 2.0


def test_stats(sc):
    s = sc.parallelize([1, 2, 3]).stats()
    assert (s.count(), s.mean(), s.sum(), s.min(), s.max()) == (3, 2.0, 6.0, 1, 3)
    assert s.variance() == pytest.approx(2 / 3)
    assert s.sampleStdev() == pytest.approx(1.0)
    assert repr(s).startswith("(count: 3, mean: 2.0, stdev: 0.816496580927")
    many = sc.parallelize(range(1000), 7).stats()
    assert many.mean() == pytest.approx(499.5) and many.count() == 1000
    assert many.stdev() == pytest.approx(288.6749902572095)


def test_is_empty(sc):
    assert sc.parallelize([]).isEmpty() is True
    assert sc.parallelize([1]).isEmpty() is False


def test_save_as_text_file(sc, cluster):
    fs = cluster.fs
    sc.parallelize(range(10)).saveAsTextFile("/docs/text_file1")
    parts = sorted(p for p in fs.ls("/docs/text_file1", detail=False) if "part-0000" in p)
    assert "".join(sorted(line + "\n" for p in parts
                          for line in fs.cat(p).decode().splitlines())) == \
        "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"
    assert fs.exists("/docs/text_file1/_SUCCESS")
    sc.parallelize(["", "foo", "", "bar", ""]).saveAsTextFile("/docs/text2_file2")
    text = b"".join(fs.cat(p) for p in fs.glob("/docs/text2_file2/part-0000*")).decode()
    assert "".join(sorted(line + "\n" for line in text.splitlines())) == "\n\n\nbar\nfoo\n"
    sc.parallelize(["foo", "bar"]).saveAsTextFile("/docs/text3",
                                                  "org.apache.hadoop.io.compress.GzipCodec")
    got = b"".join(gzip.decompress(fs.cat(p)) for p in fs.glob("/docs/text3/part*.gz"))
    assert "".join(sorted(line + "\n" for line in got.decode().splitlines())) == "bar\nfoo\n"
    with pytest.raises(FileExistsError):
        sc.parallelize([1]).saveAsTextFile("/docs/text3")
    assert sorted(sc.textFile("/docs/text_file1").map(int).collect()) == list(range(10))


def test_save_as_pickle_file(sc):
    sc.parallelize(range(10)).saveAsPickleFile("/docs/pickle_file", 3)
    assert sorted(sc.pickleFile("/docs/pickle_file", 3).collect()) == list(range(10))
    records = [("k", {"any": [1.5, None]}), (b"x", (1, 2))]
    sc.parallelize(records, 2).saveAsPickleFile("/docs/pickle_objects")
    assert sc.pickleFile("/docs/pickle_objects").collect() == records


# -- persistence, partitions, lineage -----------------------------------------------------


def test_cache(sc):
    rdd = sc.range(5)
    assert rdd.cache() is rdd
    assert str(rdd.getStorageLevel()) == "Memory Serialized 1x Replicated"
    rdd.unpersist()


def test_persist(sc):
    rdd = sc.parallelize(["b", "a", "c"])
    assert rdd.persist().is_cached is True
    assert str(rdd.getStorageLevel()) == "Memory Serialized 1x Replicated"
    rdd.unpersist()
    assert rdd.is_cached is False
    rdd2 = sc.range(5)
    rdd2.persist(StorageLevel.MEMORY_AND_DISK)
    assert rdd2.is_cached is True
    assert str(rdd2.getStorageLevel()) == "Disk Memory Serialized 1x Replicated"
    with pytest.raises(ValueError, match="Cannot change storage level"):
        rdd2.persist(StorageLevel.DISK_ONLY)
    rdd2.unpersist()
    rdd2.persist(StorageLevel.DISK_ONLY)
    assert str(rdd2.getStorageLevel()) == "Disk Serialized 1x Replicated"
    assert rdd2.collect() == [0, 1, 2, 3, 4]
    rdd2.unpersist()


def test_unpersist(sc):
    rdd = sc.range(5)
    assert rdd.is_cached is False
    rdd.unpersist()
    assert rdd.is_cached is False
    rdd.cache()
    assert rdd.is_cached is True
    rdd.unpersist()
    assert rdd.is_cached is False


def test_get_num_partitions(sc):
    assert sc.parallelize([1, 2, 3, 4], 2).getNumPartitions() == 2
    assert sc.parallelize([1, 2, 3, 4]).getNumPartitions() == sc.defaultParallelism == 2


def test_to_debug_string_shows_the_stage_boundary_of_reduce_by_key(sc):
    assert b"ParallelCollectionRDD" in sc.range(5).toDebugString()
    counts = sc.parallelize(["a b", "b"], 2).flatMap(str.split).map(lambda w: (w, 1)) \
        .reduceByKey(add).mapValues(str)
    lines = counts.toDebugString().decode().splitlines()
    assert lines[0].startswith("(2) PythonRDD[")
    assert "ShuffledRDD" in lines[1] and "reduceByKey" not in lines[0]
    boundary = [i for i, line in enumerate(lines) if line.lstrip().startswith("+-")]
    assert len(boundary) == 1, lines
    assert "ParallelCollectionRDD" in lines[-1] and lines[-1].startswith("    |  ")
    assert isinstance(counts.toDebugString(), bytes)


def test_failures_name_the_dataset_and_carry_the_users_traceback(sc):
    def parse(x):
        return int(x)

    bad = sc.parallelize(["1", "2", "x"], 2).map(parse).setName("numbers")
    with pytest.raises(JobFailed) as info:
        bad.map(lambda v: v + 1).sum()
    message = str(info.value)
    assert "ValueError in numbers[" in message
    assert "invalid literal for int() with base 10: 'x'" in message
    assert "in parse" in message and "return int(x)" in message     # the user's frame


# -- more of PySpark's RDD methods, with its documented cases ----------------------------


def test_random_split(sc):
    rdd = sc.parallelize(range(500), 1)
    rdd1, rdd2 = rdd.randomSplit([2, 3], 17)
    assert len(rdd1.collect() + rdd2.collect()) == 500
    assert sorted(rdd1.collect() + rdd2.collect()) == list(range(500))
    assert 150 < rdd1.count() < 250
    assert 250 < rdd2.count() < 350


def test_take_sample(sc):
    import sys
    rdd = sc.parallelize(range(0, 10))
    assert len(rdd.takeSample(True, 20, 1)) == 20
    assert len(rdd.takeSample(False, 5, 2)) == 5
    assert sorted(rdd.takeSample(False, 15, 3)) == list(range(10))
    assert rdd.takeSample(False, 5, 2) == rdd.takeSample(False, 5, 2)
    with pytest.raises(ValueError, match="Sample size cannot be greater than"):
        sc.range(0, 10).takeSample(False, sys.maxsize)


def test_pipe(sc):
    assert sc.parallelize(["1", "2", "", "3"]).pipe("cat").collect() == ["1", "2", "", "3"]
    with pytest.raises(JobFailed, match="exited with code 3"):
        sc.parallelize(["x"]).pipe("cat >/dev/null; exit 3", checkCode=True).collect()


def test_tree_reduce_and_tree_aggregate(sc):
    add = lambda x, y: x + y
    rdd = sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10)
    for depth in (1, 2, 5, 10):
        assert rdd.treeReduce(add, depth) == -5
        assert rdd.treeAggregate(0, add, add, depth) == -5
    assert rdd.treeReduce(add) == -5 and rdd.treeAggregate(0, add, add) == -5


def test_histogram(sc):
    rdd = sc.parallelize(range(51))
    assert rdd.histogram(2) == ([0, 25, 50], [25, 26])
    assert rdd.histogram([0, 5, 25, 50]) == ([0, 5, 25, 50], [5, 20, 26])
    assert rdd.histogram([0, 15, 30, 45, 60]) == ([0, 15, 30, 45, 60], [15, 15, 15, 6])
    rdd = sc.parallelize(["ab", "ac", "b", "bd", "ef"])
    assert rdd.histogram(("a", "b", "c")) == (("a", "b", "c"), [2, 2])
    with pytest.raises(ValueError, match="empty RDD"):
        sc.parallelize([]).histogram(3)


def test_variance_and_deviations(sc):
    rdd = sc.parallelize([1, 2, 3])
    assert rdd.variance() == pytest.approx(0.6666666)
    assert rdd.stdev() == pytest.approx(0.8164965)
    assert rdd.sampleStdev() == 1.0 and rdd.sampleVariance() == 1.0


def test_reduce_by_key_locally(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.reduceByKeyLocally(add).items()) == [("a", 2), ("b", 1)]


def test_zip_with_unique_id(sc):
    assert sc.parallelize(["a", "b", "c", "d", "e"], 3).zipWithUniqueId().collect() == [
        ("a", 0), ("b", 1), ("c", 4), ("d", 2), ("e", 5)]


def test_group_with(sc):
    w = sc.parallelize([("a", 5), ("b", 6)])
    x = sc.parallelize([("a", 1), ("b", 4)])
    y = sc.parallelize([("a", 2)])
    z = sc.parallelize([("b", 42)])
    assert [(k, tuple(map(list, v))) for k, v in sorted(list(w.groupWith(x, y, z).collect()))] \
        == [("a", ([5], [1], [2], [])), ("b", ([6], [4], [], [42]))]
