"""Word count on a generated Zipf corpus: yard beside its peers, in one run.

    python bench/wordcount.py [--size 1g] [--skip spark,dask]

Generates SIZE of text (Zipf-distributed words from a 100,000-word
vocabulary, 12 words a line), stores it on local disk for the peers and in
a fresh local cluster (2 workers, 64 MiB chunks) for yard, and prints MB/s
for:
  - one-process collections.Counter over the local file, line by line and in
    256 KiB blocks of bytes (the per-core limits);
  - yard, Python API (bench_jobs.WordCount: in-mapper combining, a combiner,
    2 reducers), output written to the DFS;
  - yard streaming with the seed's mapper.py / reducer.py (and reducer.py as
    the combiner);
  - PySpark local[2], RDD (flatMap / map / reduceByKey) and DataFrame
    (split / explode / groupBy / count);
  - Dask, a LocalCluster of 2 single-threaded processes (bag frequencies).
Each answer is checked against the Counter's. Needs pyspark (and Java) and
dask[distributed] for the peers: `pip install pyspark "dask[distributed]"`,
`apt-get install default-jre-headless`; a missing peer is reported and skipped.
Issue 6's target: yard's Python-API word count ahead of every peer, which
means both cores at 80% or more of twice the one-process Counter.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_jobs import WordCount  # noqa: E402
from scratch import scratch_cluster, timed  # noqa: E402

from stackyard.cli.common import parse_size  # noqa: E402
from stackyard.connect import connect  # noqa: E402
from stackyard.mapreduce import StreamingJob  # noqa: E402

MB = 1e6
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)   # Spark's workers need our numpy
VOCABULARY = 100_000
WORDS_PER_LINE = 12


def generate(path: Path, size: int, seed: int = 7) -> None:
    """Zipf words (a = 1.2) until SIZE bytes, in 16 MB pieces."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = []
    for i in range(VOCABULARY):
        n = 2 + int(rng.integers(0, 8))
        vocab.append("".join(letters[rng.integers(0, 26, n)]) + str(i % 10))
    spaced = [w.encode() + b" " for w in vocab] + [w.encode() + b"\n" for w in vocab]
    written = 0
    with open(path, "wb") as f:
        while written < size:
            n = 2_000_000
            idx = (rng.zipf(1.2, n) - 1) % VOCABULARY
            idx = idx + VOCABULARY * (np.arange(n) % WORDS_PER_LINE == WORDS_PER_LINE - 1)
            piece = b"".join(map(spaced.__getitem__, idx.tolist()))
            if written + len(piece) > size:
                piece = piece[:piece.rfind(b"\n", 0, size - written) + 1] or piece
            f.write(piece)
            written += len(piece)


def counter_lines(path: Path) -> collections.Counter:
    """The textbook one-process word count: line by line, str words."""
    counts: collections.Counter = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def counter_count(path: Path) -> collections.Counter:
    """The fastest one-process Counter we know: 256 KiB blocks of whole lines,
    bytes.split (small blocks keep the split's list in the CPU caches)."""
    counts: collections.Counter = collections.Counter()
    with open(path, "rb") as f:
        rest = b""
        while block := f.read(256 << 10):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            counts.update(block[:cut].split())
            rest = block[cut:]
        counts.update(rest.split())
    return collections.Counter({k.decode(): v for k, v in counts.items()})


def read_yard_output(fs, directory: str) -> dict:
    out = {}
    for part in fs.glob(f"{directory}/part-*"):
        for line in fs.cat(part).decode().splitlines():
            k, _, v = line.partition("\t")
            out[k] = int(v)
    return out


def spark_rdd(path: Path) -> dict:
    from operator import add

    from pyspark import SparkConf, SparkContext
    sc = SparkContext(conf=SparkConf().setMaster("local[2]").setAppName("wc")
                      .set("spark.ui.enabled", "false"))
    try:
        return dict(sc.textFile(str(path)).flatMap(str.split).map(lambda w: (w, 1))
                    .reduceByKey(add).collect())
    finally:
        sc.stop()


def spark_df(path: Path) -> dict:
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import col, explode, split
    spark = (SparkSession.builder.master("local[2]").appName("wc-df")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        words = spark.read.text(str(path)).select(
            explode(split(col("value"), " ")).alias("w")).where(col("w") != "")
        return {r["w"]: r["count"] for r in words.groupBy("w").count().collect()}
    finally:
        spark.stop()


def dask_bag(path: Path) -> dict:
    import dask.bag as db
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        return dict(db.read_text(str(path), blocksize=64 << 20).str.split().flatten()
                    .frequencies().compute())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="1g")
    ap.add_argument("--skip", default="", help="comma-separated: streaming,spark,dask")
    args = ap.parse_args()
    size, skip = parse_size(args.size), set(filter(None, args.skip.split(",")))
    rows = []
    with scratch_cluster(chunkservers=3, coords=0, workers=2,
                         chunk_size=64 << 20) as (root, cluster):
        corpus = root / "corpus.txt"
        print(f"generating {size / MB:.0f} MB of Zipf text ...", flush=True)
        generate(corpus, size)
        nbytes = corpus.stat().st_size
        secs, expected = timed(lambda: counter_count(corpus))
        rows.append(("one-process Counter, 256 KiB blocks of bytes", secs))
        secs, by_lines = timed(lambda: counter_lines(corpus))
        assert by_lines == expected
        rows.append(("one-process Counter, line by line", secs))
        print(f"  {len(expected)} distinct words, {sum(expected.values())} in all", flush=True)
        cluster.up()
        client = connect(home=str(root / "cluster"), embedded=False)
        client.fs.put(str(corpus), "/bench/corpus.txt")

        def check(name, got):
            if dict(got) != dict(expected):
                raise AssertionError(f"{name}: wrong counts")

        secs, result = timed(lambda: WordCount().run("/bench/corpus.txt", "/bench/wc",
                                                     client=client))
        check("yard", read_yard_output(client.fs, "/bench/wc"))
        rows.append(("yard, Python API", secs))
        if "streaming" not in skip:
            bench = ROOT / "examples" / "streaming"
            job = StreamingJob(mapper_cmd="python3 mapper.py", combiner_cmd="python3 reducer.py",
                               reducer_cmd="python3 reducer.py", reducers=2,
                               files={n: (bench / n).read_bytes()
                                      for n in ("mapper.py", "reducer.py")})
            secs, _ = timed(lambda: job.run("/bench/corpus.txt", "/bench/wc-s", client=client))
            check("yard streaming", read_yard_output(client.fs, "/bench/wc-s"))
            rows.append(("yard, streaming (seed's mapper.py/reducer.py)", secs))
        client.close()
        cluster.down()
        for name, fn, key in (("PySpark local[2], RDD", spark_rdd, "spark"),
                              ("PySpark local[2], DataFrame", spark_df, "spark"),
                              ("Dask, 2 processes (bag)", dask_bag, "dask")):
            if key in skip:
                continue
            try:
                secs, got = timed(lambda fn=fn: fn(corpus))
            except ImportError as exc:
                print(f"  {name}: skipped ({exc})")
                continue
            check(name, got)
            rows.append((name, secs))
        print(f"\nword count of {nbytes / MB:.0f} MB, every answer checked:")
        limit = nbytes / rows[0][1] / MB
        for name, secs in rows:
            mbs = nbytes / secs / MB
            print(f"  {name:48s} {mbs:7.1f} MB/s  {secs:6.1f} s  ({mbs / limit:.2f}x block Counter)")
        yard = nbytes / rows[2][1] / MB
        lines = nbytes / rows[1][1] / MB
        peers = [nbytes / s / MB for n, s in rows[3:] if not n.startswith("yard")]
        print(f"\nyard Python API / 2x Counter: {yard / (2 * limit):.2f} against the block "
              f"Counter, {yard / (2 * lines):.2f} against the line-by-line one (target >= 0.8); "
              f"ahead of every peer: {all(yard > p for p in peers)}")
        print(f"yard counters: {result.counters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
