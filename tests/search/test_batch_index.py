"""`yard search index`: a MapReduce job builds each shard's segment in the
DFS and the search servers take it in without indexing again; the
documents are on every copy, survive the loss of a primary's server, and
take later writes as any other document."""

from __future__ import annotations

import json
import time

from tests.search.conftest import SEARCH, es_client
from tests.search.test_search_faults import copy_counts, routing, server_named


def test_a_job_builds_the_segments_and_every_copy_serves_them(make_cluster, tmp_path):
    c = make_cluster(**{**SEARCH, "workers": 2})
    lines = [json.dumps({"id": i, "title": f"page {i}", "body": "alpha beta" if i % 2 else
                         "gamma", "rank": i % 7}) for i in range(6000)]
    lines.append(json.dumps({"id": 5, "title": "page five again", "body": "delta"}))
    local = tmp_path / "docs.jsonl"
    local.write_text("\n".join(lines) + "\n")
    c.fs.put(str(local), "/in/docs.jsonl")
    proc = c.yard("search", "index", "--input", "/in", "--index", "pages", "--shards", "3",
                  check=True, timeout=300)
    assert "indexed 6001 documents into pages" in proc.stdout.decode()
    es = es_client(c, 2)
    es.cluster.health(index="pages", wait_for_status="green", timeout="60s")
    for _ in range(6):         # the searches go to primaries and replicas in turn
        assert es.count(index="pages")["count"] == 6000
        assert es.count(index="pages", query={"match": {"body": "alpha"}})["count"] == 2999
    assert es.get(index="pages", id="5")["_source"]["title"] == "page five again"
    props = es.indices.get_mapping(index="pages")["pages"]["mappings"]["properties"]
    assert props["rank"]["type"] == "long" and props["title"]["type"] == "text"
    r = es.index(index="pages", id="7", document={"title": "rewritten"}, refresh=True)
    assert r["result"] == "updated" and r["_version"] == 2
    victim = server_named(c, routing(c, "pages")["shards"]["0"]["primary"])
    if victim == "searchserver-2":
        victim = server_named(c, routing(c, "pages")["shards"]["1"]["primary"])
    c.kill(victim)
    dead = routing(c, "pages")["shards"]["0"]["primary"] if victim == server_named(
        c, routing(c, "pages")["shards"]["0"]["primary"]) else \
        routing(c, "pages")["shards"]["1"]["primary"]
    deadline = time.monotonic() + 60      # its lock (a 3 s session) must expire first
    while dead in json.dumps(routing(c, "pages")) and time.monotonic() < deadline:
        time.sleep(0.2)
    es.cluster.health(index="pages", wait_for_status="green", timeout="60s")
    # every copy, the new replicas too (recovered from a commit and the operations
    # since, doc 7's update among them), serves every document
    counts = copy_counts(c, "pages")
    assert all(len(v) == 2 and v[0] == v[1] for v in counts.values()), counts
    assert sum(v[0] for v in counts.values()) == 6000, counts
    assert es.count(index="pages")["count"] == 6000
    assert es.get(index="pages", id="7")["_source"] == {"title": "rewritten"}
