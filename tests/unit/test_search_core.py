"""The search index's core without processes: analysis, segments and their
files, queries against a brute-force scan, merges, the shard's recovery
from its commit and translog, aggregations and allocation."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.search import aggs, allocation, merge
from stackyard.search.analysis import AnalysisError, Registry
from stackyard.search.codec import CorruptIndexError
from stackyard.search.query import edit_distance
from stackyard.search.schema import Schema
from stackyard.search.searcher import search
from stackyard.search.segment import Segment, SegmentBuilder
from stackyard.search.shard import Shard, VersionConflict
from stackyard.table.memfs import MemFS

WORDS = ["apple", "apply", "ample", "maple", "banana", "bandana", "cherry", "berry", "merry",
         "quick", "quack", "brown", "crown", "fox", "box", "jumps", "lazy", "daisy", "dog", "fog"]
SCHEMA = {"properties": {"body": {"type": "text"}, "tag": {"type": "keyword"},
                         "n": {"type": "integer"}, "when": {"type": "date"}}}


def corpus(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    return [{"body": " ".join(rnd.choices(WORDS, k=rnd.randint(3, 12))), "tag": f"t{i % 5}",
             "n": i, "when": f"2024-{1 + i % 12:02d}-15"} for i in range(n)]


def build(schema: Schema, docs: list[dict], name: str = "_0", base: int = 0) -> Segment:
    b = SegmentBuilder(name, lambda f, t: schema.index_analyzer(f)(t))
    for i, d in enumerate(docs):
        parsed, _ = schema.mapping.parse(d)
        b.add(str(base + i), parsed, json.dumps(d).encode(), base + i, 1, 1)
    return b.build()


def ids(schema, segs, query, size=1000) -> set[str]:
    return {h["_id"] for h in search(schema, segs, {"query": query, "size": size})["hits"]}


def test_analyzers_follow_elasticsearch():
    r = Registry({"analyzer": {"folded": {"tokenizer": "standard",
                                          "filter": ["lowercase", "asciifolding"]},
                               "grams": {"tokenizer": "whitespace",
                                         "filter": [{"type": "edge_ngram", "min_gram": 2,
                                                     "max_gram": 3}]}}})
    assert r.get("standard").terms("The QUICK brown-fox can't 3.14") == [
        "the", "quick", "brown", "fox", "can't", "3.14"]
    assert r.get("english").terms("The foxes are jumping") == ["fox", "jump"]
    assert r.get("folded").terms("Crème Brûlée") == ["creme", "brulee"]
    assert r.get("grams").terms("search") == ["se", "sea"]
    assert r.get("keyword").terms("New York") == ["New York"]
    t = r.get("english")("the quick fox", offsets=True)
    assert t.terms == ["quick", "fox"] and t.pos() == [1, 2] and t.starts == [4, 10]
    with pytest.raises(AnalysisError, match="failed to find analyzer"):
        r.get("nope")


def test_segment_files_round_trip_and_a_flipped_byte_is_refused():
    schema = Schema(SCHEMA)
    seg = build(schema, corpus(300))
    files = seg.files()
    loaded = Segment.load("_0", lambda p: files[p])
    q = {"match": {"body": "apple fox"}}
    assert search(schema, [loaded], {"query": q})["hits"] == search(schema, [seg],
                                                                    {"query": q})["hits"]
    for part in files:
        bad = bytearray(files[part])
        bad[len(bad) // 2] ^= 0x01
        with pytest.raises(CorruptIndexError, match=f"_0.{part}: checksum failed"):
            Segment.load("_0", lambda p, part=part, bad=bytes(bad): bad if p == part
                         else files[p])


def test_queries_equal_a_brute_force_scan():
    schema = Schema(SCHEMA)
    docs = corpus(400)
    segs = [build(schema, docs[:150]), build(schema, docs[150:], "_1", 150)]
    tokens = [d["body"].split() for d in docs]

    def scan(pred):
        return {str(i) for i, t in enumerate(tokens) if pred(t)}

    assert ids(schema, segs, {"term": {"body": "fox"}}) == scan(lambda t: "fox" in t)
    assert ids(schema, segs, {"match": {"body": {"query": "fox dog", "operator": "and"}}}) == \
        scan(lambda t: "fox" in t and "dog" in t)
    assert ids(schema, segs, {"match_phrase": {"body": "quick brown"}}) == \
        scan(lambda t: any(a == "quick" and b == "brown" for a, b in zip(t, t[1:], strict=False)))
    assert ids(schema, segs, {"match_phrase": {"body": {"query": "quick fox", "slop": 1}}}) == \
        scan(lambda t: any(t[i] == "quick" and "fox" in t[i + 1:i + 3] for i in range(len(t))))
    assert ids(schema, segs, {"prefix": {"body": "ba"}}) == \
        scan(lambda t: any(w.startswith("ba") for w in t))
    assert ids(schema, segs, {"wildcard": {"body": "?err*"}}) == \
        scan(lambda t: any(re.fullmatch(".err.*", w) for w in t))
    assert ids(schema, segs, {"fuzzy": {"body": {"value": "appel", "fuzziness": 1}}}) == \
        scan(lambda t: any(edit_distance("appel", w, 1) <= 1 for w in t))
    assert ids(schema, segs, {"bool": {"must": [{"term": {"body": "dog"}}],
                                       "must_not": [{"term": {"tag": "t1"}}],
                                       "filter": [{"range": {"n": {"gte": 100, "lt": 300}}}]}}) \
        == {str(i) for i in scan(lambda t: "dog" in t) if 100 <= int(i) < 300 and int(i) % 5 != 1}
    assert ids(schema, segs, {"query_string": {"query": 'body:fox AND -tag:t0 "lazy dog"'}}) == \
        {i for i in scan(lambda t: "fox" in t) if int(i) % 5 != 0}
    assert ids(schema, segs, {"range": {"when": {"gte": "2024-03-01", "lt": "2024-05-01"}}}) \
        == {str(i) for i in range(400) if i % 12 in (2, 3)}
    assert ids(schema, segs, {"ids": {"values": ["3", "333", "nope"]}}) == {"3", "333"}
    assert ids(schema, segs, {"exists": {"field": "n"}}) == {str(i) for i in range(400)}


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="abc", max_size=6), st.text(alphabet="abc", max_size=6),
       st.integers(0, 2))
def test_bounded_edit_distance_is_the_true_distance_or_past_the_bound(a, b, k):
    def osa(x, y):
        d = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
        for i in range(len(x) + 1):
            d[i][0] = i
        for j in range(len(y) + 1):
            d[0][j] = j
        for i in range(1, len(x) + 1):
            for j in range(1, len(y) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                              d[i - 1][j - 1] + (x[i - 1] != y[j - 1]))
                if i > 1 and j > 1 and x[i - 1] == y[j - 2] and x[i - 2] == y[j - 1]:
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        return d[-1][-1]
    true = osa(a, b)
    got = edit_distance(a, b, k)
    assert got == true if true <= k else got > k


def test_merge_keeps_every_result_and_drops_deleted_documents():
    schema = Schema(SCHEMA)
    docs = corpus(300)
    queries = [{"match": {"body": "apple berry"}}, {"match_phrase": {"body": "lazy dog"}},
               {"terms": {"tag": ["t1", "t3"]}}, {"range": {"n": {"gte": 50}}}]

    def hits(segs, q):
        return {h["_id"]: round(h["_score"], 4)
                for h in search(schema, segs, {"query": q, "size": 500})["hits"]}
    segs = [build(schema, docs[i:i + 100], f"_{i}", i) for i in range(0, 300, 100)]
    for q in queries:       # without deletes, the same hits with the same scores
        assert hits([merge.merge("_m", segs)], q) == hits(segs, q)
    for s in segs:
        s.live[::7] = False
    before = [hits(segs, q) for q in queries]
    merged = merge.merge("_m", segs)
    assert merged.maxdoc == sum(s.live_count for s in segs) and merged.live.all()
    for q, b in zip(queries, before, strict=True):
        # the same hits; scores move a little, as Lucene's do, since the deleted
        # documents' terms stop counting in the statistics
        assert hits([merged], q).keys() == b.keys()
    deleted = {str(i) for i in range(0, 300) if (i % 100) % 7 == 0}
    assert not deleted & {h["_id"] for h in search(schema, [merged], {"size": 500})["hits"]}
    policy = merge.TieredPolicy()
    assert policy.pick([(f"s{i}", 100, 100) for i in range(5)]) is None
    assert len(policy.pick([(f"s{i}", 100, 100) for i in range(12)])) == 10


def test_aggregations_reduce_across_shards():
    schema = Schema(SCHEMA)
    docs = corpus(200)
    shards = [[build(schema, docs[:90])], [build(schema, docs[90:], "_1", 90)]]
    spec = {"tags": {"terms": {"field": "tag", "size": 2},
                     "aggs": {"top": {"max": {"field": "n"}}}},
            "months": {"date_histogram": {"field": "when", "calendar_interval": "month"}},
            "sizes": {"histogram": {"field": "n", "interval": 50}},
            "parts": {"range": {"field": "n", "ranges": [{"to": 100}, {"from": 100}]}},
            "avg": {"avg": {"field": "n"}}, "uniq": {"cardinality": {"field": "tag"}}}
    parts = [search(schema, s, {"size": 0, "aggs": spec})["aggs"] for s in shards]
    out = aggs.reduce(spec, parts)
    assert [b["doc_count"] for b in out["tags"]["buckets"]] == [40, 40]
    assert out["tags"]["sum_other_doc_count"] == 120
    assert out["tags"]["buckets"][0]["top"]["value"] == 195.0
    assert len(out["months"]["buckets"]) == 12 and out["months"]["buckets"][0]["doc_count"] == 17
    assert [b["doc_count"] for b in out["sizes"]["buckets"]] == [50, 50, 50, 50]
    assert [b["doc_count"] for b in out["parts"]["buckets"]] == [100, 100]
    assert out["avg"]["value"] == pytest.approx(99.5) and out["uniq"]["value"] == 5


def test_hyperloglog_is_within_two_percent():
    hashes = aggs._hash64(list(range(100_000)))
    est = aggs._hll_estimate(aggs._registers(hashes))
    assert abs(est - 100_000) / 100_000 < 0.02


def test_shard_recovers_acknowledged_writes_from_its_commit_and_translog():
    fs = MemFS()
    fs.mkdir("/s")
    schema = Schema(SCHEMA)
    p = Shard(fs, "/s", schema, 0, True, 1)
    p.open()
    for i, d in enumerate(corpus(120)):
        op, _ = p.prepare("index", str(i), d)
        p.log([op])
        if i == 60:
            p.flush()
    p.log([p.prepare("delete", "5")[0], p.prepare("index", "6", {"body": "changed"})[0]])
    with pytest.raises(VersionConflict, match="required seqNo"):
        p.prepare("index", "7", {"body": "x"}, if_seq_no=0, if_primary_term=1)
    with pytest.raises(VersionConflict, match="already exists"):
        p.prepare("index", "7", {"body": "x"}, op_type="create")
    # the process dies here: nothing but the DFS survives
    q = Shard(fs, "/s", schema, 0, True, 2)
    q.open()
    assert q.doc_count() == 119 and q.get("5") is None
    assert q.get("6")["_source"] == {"body": "changed"} and q.get("6")["_version"] == 2
    assert q.max_seq == p.max_seq


def test_an_update_or_delete_shows_to_searches_at_the_refresh_not_before():
    fs = MemFS()
    fs.mkdir("/u")
    s = Shard(fs, "/u", Schema(SCHEMA), 0, True, 1)
    s.open()
    for i in range(3):
        s.prepare("index", str(i), {"body": f"doc {i}"})
    s.refresh()

    def live() -> int:
        return sum(int(seg.live.sum()) for seg in s.searchable())

    s.prepare("index", "1", {"body": "changed"})
    s.prepare("delete", "2")
    # searchers still see the three documents as they were (as Elasticsearch
    # does until a refresh), never the updated one missing; gets are real time
    assert live() == 3
    assert s.get("1")["_source"] == {"body": "changed"} and s.get("2") is None
    s.refresh()
    assert live() == 2 and s.doc_count() == 2


def test_replica_skips_operations_it_already_has():
    fs = MemFS()
    fs.mkdir("/r")
    schema = Schema(SCHEMA)
    r = Shard(fs, "/r", schema, 0, False, 1)
    ops = [[0, 1, "index", "a", b'{"body":"one"}', 1], [1, 1, "index", "a", b'{"body":"two"}', 2],
           [2, 1, "delete", "b", None, 1]]
    r.replica_apply(ops[1:])
    r.replica_apply(ops)            # again, and out of order
    assert r.get("a")["_source"] == {"body": "two"} and r.get("b") is None


def test_allocation_promotes_an_in_sync_replica_and_re_replicates():
    routing = allocation.new_routing(2)
    live = {s: {"shards": {}} for s in ("a", "b", "c")}
    routing, _ = allocation.allocate(routing, 1, live)
    e = routing["shards"]["0"]
    primary, (replica, aid) = e["primary"], e["replicas"][0]
    assert primary != replica and e["term"] == 1
    live[replica]["shards"]["0"] = {"aid": aid, "state": "started"}
    routing, _ = allocation.allocate(routing, 1, live)
    assert routing["shards"]["0"]["in_sync"] == [aid]
    del live[primary]
    routing, _ = allocation.allocate(routing, 1, live)
    e = routing["shards"]["0"]
    assert e["primary"] == replica and e["term"] == 2
    assert len(e["replicas"]) == 1 and e["replicas"][0][0] not in (primary, replica)
    assert allocation.health({"i": routing}, {"i": 1}) == "yellow"


def test_bm25_norms_are_lucenes_one_byte_lengths():
    from stackyard.search.similarity import decode_length, encode_length
    assert [decode_length(encode_length(n)) for n in range(24)] == list(range(24))
    assert decode_length(encode_length(100)) <= 100 < decode_length(encode_length(100) + 1)
    assert all(encode_length(n) <= encode_length(n + 1) for n in range(5000))
    assert np.array_equal(np.array([encode_length(n) for n in (0, 1, 300)]),
                          np.array([0, 1, encode_length(300)]))
