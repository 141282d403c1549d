"""Search: indexing and query speed of Stackyard beside whoosh (pure
Python) and tantivy (Rust; the limit), on the same generated corpus and
the same queries, in one run on one machine.

    .venv/bin/pip install whoosh tantivy      # the peers (never dependencies)
    .venv/bin/python bench/search.py [--docs 1000000] [--queries 200]

Corpus: short documents of 5-30 words drawn with Zipf frequencies from a
50,000-word synthetic vocabulary (letters only, so every engine's default
tokenizer splits it alike). Stackyard runs as a real cluster (one search
server, one shard, no replica, segments and translog in the DFS), queried
through its Elasticsearch REST API; its core is also timed in-process, so
the cost of the network and JSON is visible. tantivy indexes with one
thread (this machine has two cores; our server indexes on one). Queries run
one at a time from one client; latency is per query, throughput their
inverse sum. The top 10 of every engine are compared with tantivy's."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

VOCAB = 50_000


def corpus(n: int, seed: int = 42) -> tuple[list[str], list[str]]:
    rnd = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCAB:
        words.add("".join(rnd.choice(letters) for _ in range(rnd.randint(2, 10))))
    vocab = sorted(words, key=lambda w: rnd.random())
    weights = [1 / (r + 1) ** 1.07 for r in range(VOCAB)]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    docs = []
    for _ in range(n):
        k = rnd.randint(5, 30)
        docs.append(" ".join(rnd.choices(vocab, cum_weights=cum, k=k)))
    return vocab, docs


def queries(vocab: list[str], docs: list[str], n: int) -> dict[str, list]:
    rnd = random.Random(7)
    mid = vocab[20:3000]
    phrases = []
    while len(phrases) < n:
        d = docs[rnd.randrange(len(docs))].split()
        i = rnd.randrange(len(d) - 1)
        phrases.append((d[i], d[i + 1]))
    return {"term": [(rnd.choice(mid),) for _ in range(n)],
            "and": [(rnd.choice(mid[:300]), rnd.choice(mid[:300])) for _ in range(n)],
            "or": [(rnd.choice(mid), rnd.choice(mid)) for _ in range(n)],
            "phrase": phrases,
            "top10+count": [(rnd.choice(vocab[:50]),) for _ in range(n)]}


def dsl(kind: str, words: tuple) -> dict:
    if kind in ("term", "top10+count"):
        return {"term": {"body": words[0]}}
    if kind == "and":
        return {"match": {"body": {"query": " ".join(words), "operator": "and"}}}
    if kind == "or":
        return {"match": {"body": " ".join(words)}}
    return {"match_phrase": {"body": " ".join(words)}}


def lucene(kind: str, words: tuple) -> str:
    if kind == "and":
        return " AND ".join(words)
    if kind == "or":
        return " OR ".join(words)
    if kind == "phrase":
        return '"' + " ".join(words) + '"'
    return words[0]


def timed(fn, qs) -> tuple[list[float], list]:
    lat, answers = [], []
    for q in qs:
        t = time.perf_counter()
        answers.append(fn(q))
        lat.append(time.perf_counter() - t)
    return lat, answers


def summary(lat: list[float]) -> dict:
    s = sorted(lat)
    return {"p50_ms": 1000 * statistics.median(s), "p99_ms": 1000 * s[int(0.99 * (len(s) - 1))],
            "qps": len(s) / sum(s)}


# -- engines ------------------------------------------------------------------------------

def run_tantivy(docs, qs, root: Path):
    import tantivy
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("body", stored=True, tokenizer_name="default")
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    schema = sb.build()
    path = root / "tantivy"
    path.mkdir()
    t = time.perf_counter()
    index = tantivy.Index(schema, path=str(path))
    w = index.writer(heap_size=256_000_000, num_threads=1)
    for i, d in enumerate(docs):
        w.add_document(tantivy.Document(body=d, id=str(i)))
    w.commit()
    w.wait_merging_threads()
    build = time.perf_counter() - t
    index.reload()
    s = index.searcher()
    out = {}
    for kind, items in qs.items():
        count = kind == "top10+count"

        def one(words, kind=kind, count=count):
            r = s.search(index.parse_query(lucene(kind, words), ["body"]), 10, count=count)
            return [s.doc(a)["id"][0] for _, a in r.hits], r.count if count else None, \
                [sc for sc, _ in r.hits]
        out[kind] = timed(one, items)
    return build, _du(path), out


def run_whoosh(docs, qs, root: Path):
    from whoosh import fields, index, qparser
    from whoosh.analysis import LowercaseFilter, RegexTokenizer
    analyzer = RegexTokenizer(r"\w+") | LowercaseFilter()
    schema = fields.Schema(id=fields.ID(stored=True), body=fields.TEXT(analyzer=analyzer,
                                                                       stored=True))
    path = root / "whoosh"
    path.mkdir()
    t = time.perf_counter()
    ix = index.create_in(str(path), schema)
    w = ix.writer(limitmb=512, procs=1)
    for i, d in enumerate(docs):
        w.add_document(id=str(i), body=d)
    w.commit()
    build = time.perf_counter() - t
    out = {}
    with ix.searcher() as s:
        parser = qparser.QueryParser("body", schema)
        for kind, items in qs.items():
            def one(words, kind=kind):
                r = s.search(parser.parse(lucene(kind, words)), limit=10)
                return [h["id"] for h in r], len(r) if kind == "top10+count" else None, \
                    [h.score for h in r]
            out[kind] = timed(one, items)
    return build, _du(path), out


def run_core(docs, qs):
    """Our index core in this process: the same code the server runs."""
    from stackyard.search import merge
    from stackyard.search.schema import Schema
    from stackyard.search.searcher import search
    from stackyard.search.segment import SegmentBuilder
    schema = Schema({"properties": {"body": {"type": "text"}}})
    t = time.perf_counter()
    segs = []
    for start in range(0, len(docs), 100_000):
        b = SegmentBuilder(f"_{start}", lambda f, x: schema.index_analyzer(f)(x))
        for i in range(start, min(start + 100_000, len(docs))):
            parsed, _ = schema.mapping.parse({"body": docs[i]})
            b.add(str(i), parsed, json.dumps({"body": docs[i]}).encode(), i, 1, 1)
        segs.append(b.build())
    seg = merge.merge("_all", segs) if len(segs) > 1 else segs[0]
    build = time.perf_counter() - t
    size = sum(len(v) for v in seg.files().values())
    out = {}
    for kind, items in qs.items():
        def one(words, kind=kind):
            body = {"query": dsl(kind, words), "size": 10, "_source": False}
            if kind == "top10+count":
                body["track_total_hits"] = True
            r = search(schema, [seg], body)
            return [h["_id"] for h in r["hits"]], r["total"] if kind == "top10+count" \
                else None, [h["_score"] * 2.2 for h in r["hits"]]
        out[kind] = timed(one, items)
    return build, size, out


def run_cluster(docs, qs, root: Path):
    from stackyard.cluster.home import Home
    from stackyard.cluster.local import LocalCluster, Settings
    from stackyard.connect import connect
    from stackyard.search.client import SearchClient
    home = Home.at(root / "yard")
    cluster = LocalCluster(home, Settings(chunkservers=3, coords=1, workers=0, tables=False,
                                          connect=False, search_servers=1, search_http_port=0,
                                          replication=3))
    cluster.up()
    try:
        c = SearchClient.for_home(home)
        c.request("PUT", "/bench", {"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                    "mappings": {"properties": {"body": {"type": "text"}}}})
        t = time.perf_counter()
        for start in range(0, len(docs), 5000):
            lines = []
            for i in range(start, min(start + 5000, len(docs))):
                lines.append(json.dumps({"index": {"_id": str(i)}}) + "\n"
                             + json.dumps({"body": docs[i]}) + "\n")
            r = c.request("POST", "/bench/_bulk", "".join(lines).encode(), ndjson=True)
            assert not r["errors"]
        c.request("POST", "/bench/_flush")
        build = time.perf_counter() - t
        fs = connect(home=str(home.root), embedded=False).fs
        size = sum(e["length"] for e in fs.ls("/stackyard/search", recursive=True)
                   if e["type"] == "file" and "/translog" not in e["path"])
        out = {}
        for kind, items in qs.items():
            def one(words, kind=kind):
                body = {"query": dsl(kind, words), "size": 10, "_source": False}
                if kind == "top10+count":
                    body["track_total_hits"] = True
                r = c.request("POST", "/bench/_search", body)
                return [h["_id"] for h in r["hits"]["hits"]], \
                    r["hits"]["total"]["value"] if kind == "top10+count" else None, \
                    [h["_score"] * 2.2 for h in r["hits"]["hits"]]
            out[kind] = timed(one, items)
        return build, size, out
    finally:
        cluster.down()


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def agreement(mine: list, ref: list, scored: bool) -> float:
    """Share of queries answered as tantivy answers them: the same ten scores
    within 1% (ours times 1 + k1, tantivy's BM25 constant; equal scores may
    hold different ids), or for an engine scoring otherwise, the same ids."""
    def same(a, b):
        if scored:
            return len(a[2]) == len(b[2]) and all(abs(x - y) <= 0.01 * max(abs(y), 1e-9)
                                                  for x, y in zip(a[2], b[2], strict=True))
        return set(a[0]) == set(b[0])
    return sum(same(a, b) for a, b in zip(mine, ref, strict=True)) / len(ref)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip", default="", help="engines to leave out: whoosh,core")
    args = ap.parse_args()
    skip = set(args.skip.split(",")) - {""}
    vocab, docs = corpus(args.docs)
    mb = sum(len(d) + 1 for d in docs) / 1e6
    qs = queries(vocab, docs, args.queries)
    print(f"corpus: {len(docs):,} documents, {mb:.1f} MB of text; {args.queries} queries "
          "of each kind")
    root = Path(tempfile.mkdtemp(prefix="bench-search-"))
    results = {}
    try:
        results["tantivy"] = run_tantivy(docs, qs, root)
        results["stackyard"] = run_cluster(docs, qs, root)
        if "core" not in skip:
            results["stackyard core"] = run_core(docs, qs)
        if "whoosh" not in skip:
            results["whoosh"] = run_whoosh(docs, qs, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'engine':16} {'docs/s':>10} {'MB/s':>7} {'index MB':>9}")
    for name, (build, size, _) in results.items():
        print(f"{name:16} {len(docs) / build:10,.0f} {mb / build:7.2f} {size / 1e6:9.1f}")
    ref = results["tantivy"][2]
    print(f"\n{'query':12} {'engine':16} {'p50 ms':>8} {'p99 ms':>8} {'q/s':>8} "
          f"{'top10 = tantivy':>16}")
    for kind in qs:
        for name, (_, _, out) in results.items():
            lat, answers = out[kind]
            s = summary(lat)
            print(f"{kind:12} {name:16} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['qps']:8.0f} "
                  f"{100 * agreement(answers, ref[kind][1], name.startswith('stackyard') or name == 'tantivy'):15.0f}%")
    ours = results["stackyard"]
    print("\nratios (stackyard cluster vs peer; > 1 means stackyard is faster)")
    for name in ("tantivy", "whoosh"):
        if name not in results:
            continue
        peer = results[name]
        line = [f"indexing {peer[0] / ours[0]:.2f}x"]
        for kind in qs:
            line.append(f"{kind} p50 {statistics.median(peer[2][kind][0]) / statistics.median(ours[2][kind][0]):.2f}x")
        print(f"  vs {name}: " + ", ".join(line))


if __name__ == "__main__":
    main()
