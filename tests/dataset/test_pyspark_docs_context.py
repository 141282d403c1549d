"""SparkContext's methods with the cases of PySpark's own documentation of
them (pyspark/core/context.py docstrings), with DFS paths where PySpark's
use temporary local folders; the RDD methods' cases are in
test_pyspark_docs.py."""

from __future__ import annotations

acc = None


def test_context_default_parallelism_and_empty_rdd(sc):
    assert sc.defaultParallelism > 0
    assert repr(sc.emptyRDD()).startswith("EmptyRDD")
    assert sc.emptyRDD().count() == 0


def test_context_range(sc):
    assert sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert sc.range(2, 4).collect() == [2, 3]
    assert sc.range(1, 7, 2).collect() == [1, 3, 5]
    assert sc.range(5, 0, -1).collect() == [5, 4, 3, 2, 1]
    assert sc.range(0, 5, -1).collect() == []
    assert sc.range(5, numSlices=1).getNumPartitions() == 1
    assert sc.range(5, numSlices=10).getNumPartitions() == 10


def test_context_parallelize(sc):
    assert sc.parallelize([0, 2, 3, 4, 6], 5).glom().collect() == [[0], [2], [3], [4], [6]]
    assert sc.parallelize(range(0, 6, 2), 5).glom().collect() == [[], [0], [], [2], [4]]
    assert sc.parallelize(["a", "b", "c"], 2).glom().collect() == [["a"], ["b", "c"]]


def test_context_pickle_file(sc):
    sc.parallelize(range(10)).saveAsPickleFile("/ctx/pickled1", 3)
    sc.parallelize(range(-10, -5)).saveAsPickleFile("/ctx/pickled2", 3)
    assert sorted(sc.pickleFile("/ctx/pickled1", 3).collect()) == list(range(10))
    assert sorted(sc.pickleFile("/ctx/pickled2", 4).collect()) == [-10, -9, -8, -7, -6]
    assert sorted(sc.pickleFile("/ctx/pickled1,/ctx/pickled2", 5).collect()) == \
        [-10, -9, -8, -7, -6, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_context_text_file(sc):
    sc.parallelize(["x", "y", "z"]).saveAsTextFile("/ctx/text1")
    sc.parallelize(["aa", "bb", "cc"]).saveAsTextFile("/ctx/text2")
    assert sorted(sc.textFile("/ctx/text1", 3).collect()) == ["x", "y", "z"]
    assert sorted(sc.textFile("/ctx/text2", 4).collect()) == ["aa", "bb", "cc"]
    assert sorted(sc.textFile("/ctx/text1,/ctx/text2", 5).collect()) == \
        ["aa", "bb", "cc", "x", "y", "z"]


def test_context_whole_text_files(sc, tmp_path):
    (tmp_path / "1.txt").write_text("123")
    (tmp_path / "2.txt").write_text("xyz")
    collected = sorted(sc.wholeTextFiles(f"file://{tmp_path}").collect())
    assert collected == [(f"file:{tmp_path}/1.txt", "123"), (f"file:{tmp_path}/2.txt", "xyz")]


def test_context_union(sc, cluster):
    with cluster.fs.open("/ctx/union/union-text.txt", "wb") as f:
        f.write(b"Hello")
    text_rdd = sc.textFile("/ctx/union")
    parallelized = sc.parallelize(["World!"])
    assert sorted(sc.union([text_rdd, parallelized]).collect()) == ["Hello", "World!"]


def test_context_broadcast(sc):
    mapping = {1: 10001, 2: 10002}
    bc = sc.broadcast(mapping)
    rdd2 = sc.range(5).map(lambda i: bc.value[i] if i in bc.value else -1)
    assert rdd2.collect() == [-1, 10001, 10002, -1, -1]
    bc.destroy()


def test_context_accumulator(sc):
    global acc
    acc = sc.accumulator(9)
    assert acc.value == 9
    acc += 1
    assert acc.value == 10

    def f(x):
        global acc
        acc += 1

    sc.range(5).foreach(f)
    assert acc.value == 15


def test_context_run_job(sc):
    my_rdd = sc.parallelize(range(6), 3)
    assert sc.runJob(my_rdd, lambda part: [x * x for x in part]) == [0, 1, 4, 9, 16, 25]
    assert sc.runJob(my_rdd, lambda part: [x * x for x in part], [0, 2], True) == [0, 1, 16, 25]


