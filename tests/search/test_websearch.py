"""examples/websearch end to end: a crawl over HTML pages in the DFS finds
exactly the pages reachable from the seed, PageRank over their links equals
a plain computation of the same formula, and ranked queries combine BM25
with PageRank as the function_score says."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

from tests.search.conftest import SEARCH

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "websearch"))
import websearch  # noqa: E402


def reference_ranks(links: dict[str, list[str]], iterations: int = 10) -> dict[str, float]:
    """Spark's PageRank example, in plain Python: pages pass their rank on
    along distinct links; a page no link reaches drops out."""
    out = {p: sorted(set(ls)) for p, ls in links.items() if ls}
    ranks = {p: 1.0 for p in out}
    for _ in range(iterations):
        contrib: dict[str, float] = {}
        for p, rank in ranks.items():
            for q in out.get(p, []):
                contrib[q] = contrib.get(q, 0.0) + rank / len(out[p])
        ranks = {q: 0.15 + 0.85 * s for q, s in contrib.items()}
    return ranks


def test_crawl_rank_index_query(make_cluster):
    c = make_cluster(**{**SEARCH, "workers": 2})
    websearch.generate(c.fs, 150)
    links = {}
    for e in c.fs.ls(websearch.PAGES):
        page = c.fs.cat(e["path"]).decode()
        links[e["path"].rsplit("/", 1)[1]] = re.findall(r'<a href="([^"]+)">', page)
    reachable, todo = set(websearch.SEEDS), list(websearch.SEEDS)
    while todo:
        for q in links[todo.pop()]:
            if q not in reachable:
                reachable.add(q)
                todo.append(q)
    from stackyard.search.client import SearchClient
    search = SearchClient.for_home(c.home)
    got = websearch.build(c.client.context(), c.client, search)
    assert got["crawled"] == got["indexed"] == len(reachable) < 150
    docs = search.request("POST", "/web/_search", {"size": 1000, "query": {"match_all": {}}})
    indexed = {h["_id"]: h["_source"] for h in docs["hits"]["hits"]}
    assert set(indexed) == reachable
    want = reference_ranks({p: links[p] for p in reachable})
    total = sum(want.values())
    for page, src in indexed.items():
        assert src["pagerank"] == pytest.approx(want.get(page, 0.0) / total, rel=1e-6,
                                                abs=1e-12)
    plain = search.request("POST", "/web/_search", {"size": 1000, "query": {"multi_match": {
        "query": "inverted ranking", "fields": ["title^2", "body"]}}})
    base = {h["_id"]: h["_score"] for h in plain["hits"]["hits"]}
    ranked = search.request("POST", "/web/_search", websearch.query_body("inverted ranking", 5))
    expect = sorted(base, key=lambda p: -base[p] * math.log1p(
        10_000 * indexed[p]["pagerank"]))[:5]
    assert [h["_id"] for h in ranked["hits"]["hits"]] == expect
    assert all("search notes" in h["_source"]["title"] for h in ranked["hits"]["hits"])
