"""Google's pipeline in small: crawl, index, rank, query.

    python examples/websearch/websearch.py generate --pages 2000      # a web in the DFS
    python examples/websearch/websearch.py build                      # crawl, rank, index
    python examples/websearch/websearch.py query "distributed storage"

`generate` writes HTML pages under /web/pages in the DFS, linking to each
other (some pages are reachable from no seed). `build` crawls from the
seeds with the dataset API: each round is a job that fetches the frontier's
pages from the DFS (no network) and returns their links, and the crawl stops
when no new page turns up; then computes PageRank over the crawled link
graph (examples/pagerank), writes the crawled pages with their rank as
JSON lines, and indexes them with a MapReduce job into the search index
`web`. `query` ranks by BM25 times log(1 + 10,000 x PageRank share), a
function_score with a field value factor, so well-linked pages come first
among those that match.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pagerank"))
from pagerank import pagerank  # noqa: E402

PAGES, CRAWL, EDGES = "/web/pages", "/web/crawl", "/web/edges"
INDEX = "web"
SEEDS = ["page-0.html"]
TOPICS = {"storage": "distributed file system chunk replica storage master",
          "compute": "mapreduce job scheduler worker shuffle task",
          "search": "inverted index query ranking score segment",
          "tables": "tablet row column family timestamp compaction",
          "streams": "stream window watermark state checkpoint"}
FILLER = "the a of and to in is for on with by from as that this".split()
_LINK = re.compile(r'<a href="([^"]+)">')
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_TAG = re.compile(r"<[^>]+>")


def generate(fs, pages: int, seed: int = 1) -> None:
    """PAGES pages; page i links to a few others, favouring low numbers (so
    ranks differ); the last tenth link out but nothing links to them."""
    rnd = random.Random(seed)
    reachable = int(pages * 0.9)
    for i in range(pages):
        topic = list(TOPICS)[i % len(TOPICS)]
        words = TOPICS[topic].split()
        text = " ".join(rnd.choice(words if rnd.random() < 0.4 else FILLER)
                        for _ in range(rnd.randint(30, 120)))
        links = {min(int(rnd.paretovariate(1.2)) - 1, reachable - 1) for _ in range(3)}
        links |= {rnd.randrange(reachable) for _ in range(2)}
        if i < reachable - 1:
            links.add(i + 1)                       # a chain: every page is found
        links.discard(i)
        anchors = " ".join(f'<a href="page-{j}.html">page {j}</a>' for j in sorted(links))
        body = (f"<html><head><title>{topic} notes {i}</title></head><body><p>{text}</p>"
                f"<p>{anchors}</p></body></html>")
        with fs.open(f"{PAGES}/page-{i}.html", "wb") as f:
            f.write(body.encode())


def parse(url_html: tuple[str, str]) -> dict:
    url, page = url_html
    name = url.rsplit("/", 1)[-1]
    title = _TITLE.search(page)
    text = html.unescape(_TAG.sub(" ", page.split("<body>", 1)[-1]))
    return {"url": name, "title": html.unescape(title.group(1)) if title else name,
            "body": " ".join(text.split()), "links": _LINK.findall(page)}


def crawl(sc, max_rounds: int = 100) -> tuple[object, int]:
    """The crawled pages (url -> parsed page) and the number of rounds. Each
    round is a job over the pages: those in the frontier are fetched and
    parsed, and their links come back to the crawler, which keeps the ones
    not seen yet as the next frontier (as a crawl's fetch list)."""
    pages = sc.wholeTextFiles(PAGES).map(lambda kv: (kv[0].rsplit("/", 1)[-1], kv[1])).cache()
    seen, frontier, rounds = set(SEEDS), set(SEEDS), 0
    while frontier and rounds < max_rounds:
        rounds += 1
        wanted = sc.broadcast(frontier)
        links = (pages.filter(lambda kv, w=wanted: kv[0] in w.value)
                 .flatMap(lambda kv: parse(kv)["links"]).distinct().collect())
        frontier = set(links) - seen
        seen |= frontier
    fetched = sc.broadcast(seen)
    crawled = pages.filter(lambda kv: kv[0] in fetched.value).map(lambda kv: (kv[0], parse(kv)))
    return crawled.cache(), rounds


def build(sc, client, search, shards: int = 2) -> dict:
    from stackyard.search import batch
    crawled, rounds = crawl(sc)
    edges = crawled.flatMap(lambda kv: [f"{kv[0]} {u}" for u in kv[1]["links"]])
    for path in (EDGES, CRAWL):
        if client.fs.exists(path):
            client.fs.rm(path, recursive=True)
    edges.saveAsTextFile(EDGES)
    ranks = dict(pagerank(sc, EDGES, iterations=10))
    total = sum(ranks.values()) or 1.0
    docs = crawled.map(lambda kv: json.dumps({
        "id": kv[0], "url": kv[0], "title": kv[1]["title"], "body": kv[1]["body"],
        "pagerank": ranks.get(kv[0], 0.0) / total}))
    docs.saveAsTextFile(CRAWL)
    try:
        search.request("DELETE", f"/{INDEX}")
    except Exception:  # noqa: BLE001 - there was none
        pass
    mapping = {"properties": {"url": {"type": "keyword"}, "title": {"type": "text"},
                              "body": {"type": "text"}, "pagerank": {"type": "double"}}}
    got = batch.build(client, search, CRAWL, INDEX, shards, "id", mapping)
    return {"crawled": crawled.count(), "rounds": rounds, "indexed": got["documents"]}


def query_body(text: str, size: int = 10) -> dict:
    return {"size": size, "_source": ["url", "title", "pagerank"], "query": {"function_score": {
        "query": {"multi_match": {"query": text, "fields": ["title^2", "body"]}},
        "field_value_factor": {"field": "pagerank", "factor": 10_000, "modifier": "log1p",
                               "missing": 0},
        "boost_mode": "multiply"}}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--pages", type=int, default=2000)
    sub.add_parser("build")
    q = sub.add_parser("query")
    q.add_argument("text")
    args = ap.parse_args(argv)
    import stackyard as sy
    from stackyard.cluster.home import Home
    from stackyard.search.client import SearchClient
    client = sy.connect(embedded=False)
    try:
        if args.cmd == "generate":
            generate(client.fs, args.pages)
            print(f"{args.pages} pages under {PAGES}")
            return 0
        search = SearchClient.for_home(Home.at(None))
        if args.cmd == "build":
            print(build(client.context(), client, search))
            return 0
        r = search.request("POST", f"/{INDEX}/_search", query_body(args.text))
        for h in r["hits"]["hits"]:
            s = h["_source"]
            print(f"{h['_score']:9.4f}  {s['url']:16} pagerank {s['pagerank']:.5f}  {s['title']}")
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
