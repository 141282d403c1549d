"""Decommissioning a chunkserver (HDFS's) under a running job: its replicas
are copied elsewhere while it still serves reads, no new chunk goes to it,
the job's answer is unchanged, and once it says Decommissioned it can stop
with no chunk it alone held."""

from __future__ import annotations

import threading
from collections import Counter

from tests.compute.conftest import ENGINE, make_text
from tests.conftest import wait_until


def test_decommission_under_a_running_job(make_cluster):
    c = make_cluster(chunkservers=4, **ENGINE)
    fs = c.fs
    texts = [make_text(30_000, seed=s) for s in range(3)]        # about 1.2 MB each
    for i, t in enumerate(texts):
        with fs.open(f"/dec/in/t{i}.txt", "wb") as f:
            f.write(t.encode())
    want = Counter(w for t in texts for w in t.split())
    victim = max(c.chunkservers(), key=lambda d: len(c.chunk_files(d["name"])))
    assert c.chunk_files(victim["name"])
    answers: list[dict] = []

    def job() -> None:
        with c.client.context("decommission") as sc:
            for _ in range(3):
                counts = (sc.textFile("/dec/in/*.txt").flatMap(str.split)
                          .map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collectAsMap())
                answers.append(counts)
    runner = threading.Thread(target=job)
    runner.start()
    r = c.yard("dfsadmin", "-decommission", victim["address"], check=True)
    assert r.stdout.decode().startswith(f"Decommissioning {victim['address']}: ")

    def state() -> dict:
        return next(s for s in fs.cluster()["servers"] if s["address"] == victim["address"])
    wait_until(lambda: state()["admin_state"] == "Decommissioned", 60,
               "the victim's replicas copied elsewhere")
    report = c.yard("dfsadmin", "-report", check=True).stdout.decode()
    assert "Decommission Status : Decommissioned" in report
    with fs.open("/dec/new.bin", "wb") as f:                     # new chunks avoid it
        f.write(b"n" * 300_000)
    assert all(victim["address"] not in loc.hosts for loc in fs.chunk_locations("/dec/new.bin"))
    runner.join(300)
    assert len(answers) == 3 and all(a == dict(want) for a in answers)
    c.kill(victim["name"])
    wait_until(lambda: not state()["alive"], 10, "the victim declared dead")
    report = fs.fsck("/dec")
    assert report["status"] == "HEALTHY" and report["totals"]["missing"] == 0
    for f in report["files"]:
        for ch in f["chunks"]:
            assert len(ch["live"]) >= 3, ch
