"""The official `elasticsearch` client, unmodified, against three search
servers: an index with a mapping, a bulk of 10,000 documents, every query
type of the issue, aggregations, updates, deletes, a version conflict, a
missing index, and the REST API's authentication and error answers."""

from __future__ import annotations

import base64
import json
import math
import urllib.error
import urllib.request

import elasticsearch
import pytest
from elasticsearch import helpers

from stackyard.net.auth import Secret
from tests.search.conftest import es_client, http_of

COLORS = ["red", "green", "blue", "cyan", "magenta"]
WORDS = ["search", "engine", "index", "shard", "replica", "segment", "merge", "query", "score",
         "token", "stream", "table"]


def doc(i: int) -> dict:
    w = [WORDS[(i * k) % len(WORDS)] for k in (1, 3, 7, 11)]
    return {"title": f"{w[0]} {w[1]} number {i}", "body": " ".join(w),
            "color": COLORS[i % 5], "n": i, "price": (i % 100) / 4,
            "day": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}", "rank": 1 + (i % 10),
            "active": i % 2 == 0}


@pytest.fixture(scope="module")
def docs(es):
    es.indices.create(index="books", settings={"number_of_shards": 3, "number_of_replicas": 1},
                      mappings={"properties": {
                          "title": {"type": "text", "analyzer": "english"},
                          "body": {"type": "text"}, "color": {"type": "keyword"},
                          "n": {"type": "integer"}, "price": {"type": "float"},
                          "day": {"type": "date"}, "rank": {"type": "integer"},
                          "active": {"type": "boolean"}}})
    ok, errors = helpers.bulk(es, ({"_index": "books", "_id": str(i), "_source": doc(i)}
                                   for i in range(10_000)), chunk_size=2500)
    assert ok == 10_000 and not errors
    es.indices.refresh(index="books")
    return {str(i): doc(i) for i in range(10_000)}


def ids(resp) -> set[str]:
    return {h["_id"] for h in resp["hits"]["hits"]}


def where(docs, pred) -> set[str]:
    return {i for i, d in docs.items() if pred(d)}


def test_root_names_the_product_and_the_index_holds_the_bulk(es, docs):
    info = es.info()
    assert info["version"]["number"].split(".")[0] in ("8", "9")
    assert es.count(index="books")["count"] == 10_000
    assert es.indices.exists(index="books") and not es.indices.exists(index="nope")
    m = es.indices.get_mapping(index="books")["books"]["mappings"]["properties"]
    assert m["title"] == {"type": "text", "analyzer": "english"}
    assert es.cluster.health(index="books", wait_for_status="green")["status"] == "green"
    rows = es.cat.indices(index="books", format="json")
    assert rows[0]["docs.count"] == "10000" and rows[0]["pri"] == "3"


def test_every_query_type(es, docs):
    def find(query, **kw):
        return ids(es.search(index="books", query=query, size=10_000, **kw))

    assert find({"term": {"color": "red"}}) == where(docs, lambda d: d["color"] == "red")
    assert find({"terms": {"color": ["red", "blue"]}}) == \
        where(docs, lambda d: d["color"] in ("red", "blue"))
    assert find({"match": {"body": {"query": "shard merge", "operator": "and"}}}) == \
        where(docs, lambda d: {"shard", "merge"} <= set(d["body"].split()))
    assert find({"match": {"body": {"query": "shard merge token",
                                    "minimum_should_match": 2}}}) == \
        where(docs, lambda d: len({"shard", "merge", "token"} & set(d["body"].split())) >= 2)
    assert find({"match": {"title": "engines"}}) == \
        where(docs, lambda d: "engine" in d["title"].split())          # stemmed
    assert find({"match_phrase": {"body": "index segment"}}) == where(
        docs, lambda d: "index segment" in d["body"])
    assert find({"match_phrase": {"body": {"query": "search score", "slop": 2}}}) == where(
        docs, lambda d: any(t == "search" and "score" in d["body"].split()[k + 1:k + 4]
                            for k, t in enumerate(d["body"].split())))
    assert find({"multi_match": {"query": "replica", "fields": ["title", "body^2"]}}) == where(
        docs, lambda d: "replica" in d["body"].split() or "replica" in d["title"].split())
    assert find({"bool": {"must": [{"match": {"body": "query"}}],
                          "filter": [{"range": {"n": {"gte": 100, "lt": 2000}}}],
                          "must_not": [{"term": {"color": "cyan"}}],
                          "should": [{"term": {"active": True}}]}}) == where(
        docs, lambda d: "query" in d["body"].split() and 100 <= d["n"] < 2000
        and d["color"] != "cyan")
    assert find({"prefix": {"color": "ma"}}) == where(docs, lambda d: d["color"] == "magenta")
    assert find({"wildcard": {"color": "*ee*"}}) == where(docs, lambda d: d["color"] == "green")
    assert find({"regexp": {"color": "(red|blue)"}}) == \
        where(docs, lambda d: d["color"] in ("red", "blue"))
    assert find({"fuzzy": {"color": {"value": "grean", "fuzziness": 1}}}) == \
        where(docs, lambda d: d["color"] == "green")
    assert find({"range": {"price": {"gt": 20, "lte": 22.5}}}) == \
        where(docs, lambda d: 20 < d["price"] <= 22.5)
    assert find({"range": {"day": {"gte": "2025-03-01", "lt": "2025-04-01"}}}) == \
        where(docs, lambda d: d["day"].startswith("2025-03"))
    assert find({"exists": {"field": "active"}}) == set(docs)
    assert find({"ids": {"values": ["1", "22", "333", "none"]}}) == {"1", "22", "333"}
    assert find({"query_string": {"query": 'color:red AND body:"index segment" -n:[0 TO 99]'}}) \
        == where(docs, lambda d: d["color"] == "red" and "index segment" in d["body"]
                 and d["n"] > 99)
    assert find({"query_string": {"query": "colr:x OR color:blu~1"}}) == \
        where(docs, lambda d: d["color"] == "blue")


def test_scoring_sorting_paging_highlighting(es, docs):
    r = es.search(index="books", query={"match": {"body": "stream"}}, size=5,
                  highlight={"fields": {"body": {}}}, explain=True)
    scores = [h["_score"] for h in r["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True) and r["hits"]["max_score"] == scores[0]
    hit = r["hits"]["hits"][0]
    assert "<em>stream</em>" in hit["highlight"]["body"][0]
    assert hit["_explanation"]["value"] == pytest.approx(hit["_score"], rel=1e-5)
    plain = {h["_id"]: h["_score"] for h in es.search(
        index="books", query={"match": {"body": "stream"}}, size=10_000)["hits"]["hits"]}
    boosted = es.search(index="books", size=3, query={"function_score": {
        "query": {"match": {"body": "stream"}},
        "field_value_factor": {"field": "rank", "modifier": "log1p"}}})
    want = sorted(plain, key=lambda i: -plain[i] * math.log10(1 + docs[i]["rank"]))[:3]
    got = boosted["hits"]["hits"]
    assert [round(h["_score"], 4) for h in got] == \
        [round(plain[i] * math.log10(1 + docs[i]["rank"]), 4) for i in want]
    by_n = es.search(index="books", query={"term": {"color": "blue"}},
                     sort=[{"n": "desc"}], size=4)
    assert [h["_id"] for h in by_n["hits"]["hits"]] == ["9997", "9992", "9987", "9982"]
    page2 = es.search(index="books", query={"term": {"color": "blue"}}, sort=[{"n": "desc"}],
                      size=4, search_after=by_n["hits"]["hits"][-1]["sort"])
    assert [h["_id"] for h in page2["hits"]["hits"]] == ["9977", "9972", "9967", "9962"]
    skipped = es.search(index="books", query={"term": {"color": "blue"}},
                        sort=[{"n": "desc"}], from_=4, size=4)
    assert ids(skipped) == ids(page2)
    by_color = es.search(index="books", sort=[{"color": "asc"}, {"n": "asc"}], size=2)
    assert [h["sort"] for h in by_color["hits"]["hits"]] == [["blue", 2], ["blue", 7]]
    total = es.search(index="books", size=0)["hits"]["total"]
    assert total == {"value": 10_000, "relation": "eq"}


def test_aggregations(es, docs):
    r = es.search(index="books", size=0, aggs={
        "colors": {"terms": {"field": "color", "size": 3},
                   "aggs": {"avg_price": {"avg": {"field": "price"}}}},
        "months": {"date_histogram": {"field": "day", "calendar_interval": "month"}},
        "prices": {"histogram": {"field": "price", "interval": 5}},
        "bands": {"range": {"field": "n", "ranges": [{"to": 1000}, {"from": 1000, "to": 5000},
                                                     {"from": 5000}]}},
        "lo": {"min": {"field": "n"}}, "hi": {"max": {"field": "n"}},
        "sum": {"sum": {"field": "rank"}}, "uniq": {"cardinality": {"field": "n"}},
        "best": {"top_hits": {"size": 2}}})
    a = r["aggregations"]
    assert [b["doc_count"] for b in a["colors"]["buckets"]] == [2000, 2000, 2000]
    assert a["colors"]["sum_other_doc_count"] == 4000
    assert a["colors"]["doc_count_error_upper_bound"] == 0
    blue = next(b for b in a["colors"]["buckets"] if b["key"] == "blue")
    assert blue["avg_price"]["value"] == pytest.approx(
        sum(d["price"] for d in docs.values() if d["color"] == "blue") / 2000)
    assert len(a["months"]["buckets"]) == 12 and \
        sum(b["doc_count"] for b in a["months"]["buckets"]) == 10_000
    assert a["months"]["buckets"][0]["key_as_string"].startswith("2025-01-01")
    assert [b["doc_count"] for b in a["prices"]["buckets"]] == [2000] * 5
    assert [b["doc_count"] for b in a["bands"]["buckets"]] == [1000, 4000, 5000]
    assert (a["lo"]["value"], a["hi"]["value"]) == (0, 9999)
    assert a["sum"]["value"] == sum(d["rank"] for d in docs.values())
    assert abs(a["uniq"]["value"] - 10_000) < 200
    assert len(a["best"]["hits"]["hits"]) == 2


def test_writes_versions_and_errors(es, docs):
    r = es.index(index="books", id="new-1", document={"title": "fresh", "n": -1},
                 refresh=True)
    assert r["result"] == "created" and r["_version"] == 1
    r = es.update(index="books", id="new-1", doc={"color": "black"}, refresh=True)
    assert r["result"] == "updated" and r["_version"] == 2
    got = es.get(index="books", id="new-1")
    assert got["_source"] == {"title": "fresh", "n": -1, "color": "black"}
    with pytest.raises(elasticsearch.ConflictError):
        es.index(index="books", id="new-1", document={"x": 1},
                 if_seq_no=got["_seq_no"] + 100, if_primary_term=got["_primary_term"])
    r = es.index(index="books", id="new-1", document={"title": "cas"},
                 if_seq_no=got["_seq_no"], if_primary_term=got["_primary_term"])
    assert r["_version"] == 3
    with pytest.raises(elasticsearch.ConflictError):
        es.create(index="books", id="new-1", document={"x": 2})
    assert es.delete(index="books", id="new-1", refresh=True)["result"] == "deleted"
    with pytest.raises(elasticsearch.NotFoundError):
        es.get(index="books", id="new-1")
    assert not es.search(index="books", query={"ids": {"values": ["new-1"]}})["hits"]["hits"]
    with pytest.raises(elasticsearch.NotFoundError) as info:
        es.search(index="missing-index", query={"match_all": {}})
    assert info.value.error == "index_not_found_exception"
    with pytest.raises(elasticsearch.NotFoundError):
        es.update(index="books", id="nobody", doc={"a": 1})
    with pytest.raises(elasticsearch.BadRequestError) as info:
        es.search(index="books", query={"no_such_query": {}})
    assert info.value.error == "parsing_exception"
    with pytest.raises(elasticsearch.BadRequestError):
        es.indices.create(index="books")
    got = es.mget(index="books", ids=["1", "2", "gone"])["docs"]
    assert [d["found"] for d in got] == [True, True, False]
    assert es.indices.analyze(analyzer="english", text="Running shards")["tokens"][0][
        "token"] == "run"


def test_dynamic_mapping_and_deleting_an_index(es):
    es.index(index="dyn", id="1", document={"name": "Ada", "age": 36, "when": "2024-01-02",
                                            "ok": True}, refresh=True)
    props = es.indices.get_mapping(index="dyn")["dyn"]["mappings"]["properties"]
    assert props["name"]["type"] == "text" and props["name"]["fields"]["keyword"]["type"] == \
        "keyword"
    assert (props["age"]["type"], props["when"]["type"], props["ok"]["type"]) == \
        ("long", "date", "boolean")
    assert es.search(index="dyn", query={"term": {"name.keyword": "Ada"}})["hits"]["total"][
        "value"] == 1
    assert es.indices.delete(index="dyn")["acknowledged"]
    assert not es.indices.exists(index="dyn")


def _raw(scluster, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://{http_of(scluster)}{path}", method=method, data=body,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_authentication_and_malformed_requests(scluster, es, docs):
    from elasticsearch import Elasticsearch
    bare = Elasticsearch(f"http://{http_of(scluster)}", request_timeout=10)
    with pytest.raises(elasticsearch.AuthenticationException):
        bare.info()
    wrong = Elasticsearch(f"http://{http_of(scluster)}", basic_auth=("elastic", "wrong"),
                          request_timeout=10)
    with pytest.raises(elasticsearch.AuthenticationException):
        wrong.search(index="books")
    secret = Secret.load(scluster.home.secret_file)
    token = secret.delegation_token("alice", 600)
    assert Elasticsearch(f"http://{http_of(scluster)}", bearer_auth=token,
                         request_timeout=10).count(index="books")["count"] >= 10_000
    basic = es_client(scluster, 2)
    assert basic.info()["tagline"] == "You Know, for Search"
    status, headers, _ = _raw(scluster, "GET", "/")
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    auth = {"Authorization": "Basic " + base64.b64encode(
        b"elastic:" + scluster.home.secret_file.read_bytes().strip()).decode(),
        "Content-Type": "application/json"}
    status, headers, body = _raw(scluster, "POST", "/books/_search", b"{not json", auth)
    assert status == 400 and json.loads(body)["error"]["type"] == "parse_exception"
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    status, _, body = _raw(scluster, "POST", "/_bulk", b'{"index": {"_index": "books"}}\n', auth)
    assert status == 400 and "newline" in json.loads(body)["error"]["reason"]
    status, _, body = _raw(scluster, "GET", "/books/_nothing_here", None, auth)
    assert status == 400 and "no handler" in json.loads(body)["error"]["reason"]
    deep = '{"query":' + '{"bool":{"must":[' * 3000 + '{"match_all":{}}' + "]}}" * 3000 + "}"
    status, _, body = _raw(scluster, "POST", "/books/_search", deep.encode(), auth)
    assert status == 400 and json.loads(body)["error"]["type"] == "parsing_exception"
    status, _, _ = _raw(scluster, "POST", "/books/_search", b" " * (101 << 20), auth)
    assert status == 413
    assert es.count(index="books")["count"] >= 10_000        # still serving


def test_internal_endpoints_refuse_bad_requests(scluster, es, docs):
    """The search servers' own RPC port: no credentials, a wrong secret, a
    body that is not msgpack, a list for a map and an oversized body are
    each refused with a 4xx, and the server serves on."""

    from tests.conftest import assert_refuses_strangers
    from tests.search.conftest import search_servers
    address = search_servers(scluster)[0]["address"]
    assert_refuses_strangers(address, "stats")
    pool = scluster.client.fs.pool
    for body in (b"\xc1 not msgpack", b"\x91\x01"):
        r = pool.request(address, "POST", "/rpc/search", body=body)
        assert r.status == 400, r.status
        r.read()
    r = pool.request(address, "POST", "/rpc/write", body=b"\0" * (65 << 20))
    assert 400 <= r.status < 500, r.status
    r.read()
    assert es.count(index="books")["count"] >= 10_000
