"""The examples/ jobs on a real cluster, each checked against its known answer."""

from __future__ import annotations

import collections
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.compute.conftest import make_text, read_output

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED_ANSWER = """\
(A B) -> (C D)
(A C) -> (B D)
(A D) -> (B C)
(B C) -> (A D E)
(B D) -> (A C E)
(B E) -> (C D)
(C D) -> (A B E)
(C E) -> (B D)
(D E) -> (B C)
"""


def load(relpath: str):
    path = EXAMPLES / relpath
    name = "example_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_common_friends_gives_exactly_the_seeds_answer(engine):
    engine.fs.put(str(EXAMPLES / "common_friends" / "friends.txt"), "/friends/friends.txt")
    proc = engine.yard("mr", "run", str(EXAMPLES / "common_friends" / "common_friends.py"),
                       "--input", "/friends", "--output", "/out/friends", check=True)
    assert b"completed successfully" in proc.stderr
    assert engine.fs.cat("/out/friends/part-r-00000").decode() == SEED_ANSWER


def test_inverted_index(engine):
    docs = {"d1.txt": "the cat sat\non the mat\n", "d2.txt": "The dog\nate the cat's food\n"}
    for name, text in docs.items():
        with engine.fs.open(f"/docs/{name}", "wb") as f:
            f.write(text.encode())
    load("inverted_index/inverted_index.py").InvertedIndex().run(
        "/docs", "/out/index", client=engine.client)
    index = read_output(engine.fs, "/out/index")
    assert index["the"] == "d1.txt:0,12 d2.txt:0,8"
    assert index["cat"] == "d1.txt:0" and index["cat's"] == "d2.txt:8"
    assert index["dog"] == "d2.txt:0" and len(index) == 9


def test_distributed_grep(engine):
    text = make_text(30_000, seed=9)
    with engine.fs.open("/grep/in.txt", "wb") as f:
        f.write(text.encode())
    grep = load("grep/grep.py").Grep(pattern=r"\bw7\b.*\bw13\b")
    grep.run("/grep", "/out/grep", client=engine.client)
    got = {}
    for part in engine.fs.glob("/out/grep/part-m-*"):
        for line in engine.fs.cat(part).decode().splitlines():
            where, _, matched = line.partition("\t")
            got[int(where.rsplit(":", 1)[1])] = matched
    expected, pos = {}, 0
    for line in text.splitlines(keepends=True):
        if re.search(r"\bw7\b.*\bw13\b", line):
            expected[pos] = line.rstrip("\n")
        pos += len(line)
    assert got == expected and len(expected) > 5


@pytest.mark.parametrize("reducers", [1, 3])
def test_terasort_output_is_globally_sorted(engine, reducers):
    gen = load("terasort/teragen.py")
    n = 30_000                            # 3 MB over 1 MiB chunks: records cross chunks
    gen.generate(engine.fs, n, f"/tera/in-{reducers}", seed=reducers)
    data = engine.fs.cat(f"/tera/in-{reducers}")
    job = load("terasort/terasort.py").TeraSort(reducers=reducers)
    result = job.run(f"/tera/in-{reducers}", f"/tera/out-{reducers}", client=engine.client)
    count, total = gen.validate(engine.fs, f"/tera/out-{reducers}")
    assert count == n and total == gen.checksum(data)
    assert len(engine.fs.glob(f"/tera/out-{reducers}/part-r-*")) == reducers
    assert engine.fs.stat(f"/tera/out-{reducers}/part-r-00000")["replication"] == 1
    assert result.counters["sorted_records"] == n
    # the same bytes as sorting in one process
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, 100)
    keys = np.ascontiguousarray(rows[:, :10]).view("S10").ravel()
    expected = rows[np.argsort(keys, kind="stable")].tobytes()
    got = b"".join(engine.fs.cat(p) for p in engine.fs.glob(f"/tera/out-{reducers}/part-r-*"))
    assert got == expected


def test_word_count_example_matches_counter(engine):
    text = make_text(5_000, seed=4)
    with engine.fs.open("/wc-example/in.txt", "wb") as f:
        f.write(text.encode())
    engine.yard("mr", "run", str(EXAMPLES / "wordcount" / "wordcount.py"),
                "--input", "/wc-example", "--output", "/out/wc-example", check=True)
    got = {k: int(v) for k, v in read_output(engine.fs, "/out/wc-example").items()}
    assert got == collections.Counter(text.split())


def test_chained_driver_script(engine):
    text = "b a c a b a\nc a\n"
    with engine.fs.open("/chain-in/t.txt", "wb") as f:
        f.write(text.encode())
    import os
    import subprocess
    env = {**os.environ, "STACKYARD_HOME": str(engine.home.root)}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "chain" / "top_words.py"), "/chain-in",
                           "/out/top"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["  a\t4", "  b\t2", "  c\t2"]


def test_scheduler_pages_show_jobs_stages_and_attempts(engine):
    from tests.compute import jobs
    engine.fs.open("/pages/in.txt", "wb").close()
    with engine.fs.open("/pages/in.txt", "wb") as f:
        f.write(b"x y\n")
    result = jobs.WordCount().run("/pages", "/out/pages", client=engine.client)
    sched = next(d["address"] for d in engine.home.read_state()["daemons"]
                 if d["role"] == "scheduler")
    page = engine.client.fs.pool.request(sched, "GET", "/status").read().decode()
    assert result.id in page and "worker-1" in page and "worker-2" in page and "succeeded" in page
    job = engine.client.fs.pool.request(sched, "GET", "/job", {"id": result.id}).read().decode()
    for text in ("map", "reduce", "a0 on worker-", "Map input records".lower().replace(" ", "_")):
        assert text in job, text
    metrics = engine.client.fs.pool.request(sched, "GET", "/metrics").read().decode()
    assert "stackyard_scheduler_workers_live 2" in metrics
