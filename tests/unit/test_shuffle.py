"""The map-side buffer: spills, merges and combines to the same answer as
sorting everything in memory."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.compute.fetch import segment_ranges
from stackyard.compute.partition import hash_partition, stable_hash
from stackyard.compute.records import read_records
from stackyard.compute.shuffle import MapOutputBuffer, group_sorted, merge_segments


def run_buffer(tmp_path, pairs, partitions, limit, combiner=None):
    counters = {}
    buf = MapOutputBuffer(tmp_path, partitions, hash_partition, limit, combiner, counters)
    for k, v in pairs:
        buf.add(k, v)
    data, index = buf.close()
    # the binary index on disk says what close() returned, read one way or another
    assert segment_ranges(tmp_path, list(range(partitions))) == [tuple(x) for x in index]
    assert [segment_ranges(tmp_path, [p])[0] for p in range(partitions)] == \
        [tuple(x) for x in index]
    out = []
    with open(data, "rb") as f:
        for off, length in index:
            f.seek(off)
            out.append(list(read_records(f, length)))
    return out, counters, buf


def summed(records):
    for k, vs in group_sorted(records):
        yield k, sum(vs)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=3), st.integers(0, 5)), max_size=400),
       st.integers(1, 4), st.sampled_from([200, 2000, 1 << 20]), st.booleans())
def test_spilled_output_equals_in_memory_sort(tmp_path_factory, pairs, partitions, limit, comb):
    tmp = tmp_path_factory.mktemp("buf")
    parts, counters, _ = run_buffer(tmp, pairs, partitions, limit, summed if comb else None)
    for p, records in enumerate(parts):
        keys = [k for k, _ in records]
        assert keys == sorted(keys)
        mine = [kv for kv in pairs if hash_partition(kv[0], partitions) == p]
        if comb:
            assert dict(summed(sorted(mine, key=lambda kv: kv[0]))) == \
                {k: sum(v) for k, v in group_sorted(records)}
        else:
            assert sorted(records) == sorted(mine)


def test_small_limit_spills_and_merges(tmp_path):
    rng = random.Random(3)
    pairs = [(f"k{rng.randrange(300)}", 1) for _ in range(20000)]
    parts, counters, buf = run_buffer(tmp_path, pairs, 3, 16 * 1024, summed)
    assert counters["spilled_records"] > 0 and not list(tmp_path.glob("spill*"))
    total = {k: v for records in parts for k, v in group_sorted(records) for v in [sum(v)]}
    expected = {}
    for k, _ in pairs:
        expected[k] = expected.get(k, 0) + 1
    assert total == expected
    assert counters["combine_input_records"] >= len(pairs)


def test_merge_segments_groups_across_files(tmp_path):
    from stackyard.compute.records import write_batches
    files = []
    for i in range(3):
        p = tmp_path / f"s{i}"
        with open(p, "wb") as f:
            write_batches(f, sorted((k, i) for k in ["a", "b", "c"][i:]), batch=1)
        files.append(p)
    groups = [(k, sorted(vs)) for k, vs in group_sorted(merge_segments(files))]
    assert groups == [("a", [0]), ("b", [0, 1]), ("c", [0, 1, 2])]


def test_stable_hash_is_stable_across_processes():
    import subprocess
    import sys
    code = ("from stackyard.compute.partition import stable_hash;"
            "print([stable_hash(k) for k in ['word', b'x', 7, ('a', 1), 2.5, None]])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1
    assert json.loads(outs.pop().replace("None", "null")) == \
        [stable_hash(k) for k in ["word", b"x", 7, ("a", 1), 2.5, None]]
    assert list(itertools.islice((stable_hash(i) for i in range(3)), 3)) == [0, 1, 2]


def test_a_malformed_shuffle_request_is_a_value_error():
    import msgpack
    import pytest

    from stackyard.compute.fetch import parse_want
    assert parse_want(msgpack.packb({"job": "j", "want": [["a", [0, 3]]]})) == ("j", [("a", [0, 3])])
    for body in (b"\xc1", b"", msgpack.packb({"job": "j"}), msgpack.packb([1, 2]),
                 msgpack.packb({"job": "j", "want": [["a", [1 << 62]]]}),
                 msgpack.packb({"job": "j", "want": [["a", [-1]]]}),
                 msgpack.packb({"job": 1, "want": []}),
                 msgpack.packb({"job": "j", "want": [["a"]]}),
                 msgpack.packb({"job": "j", "want": [["a", 5]]})):
        with pytest.raises(ValueError, match="shuffle request"):
            parse_want(body)
