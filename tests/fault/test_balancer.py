"""HDFS's balancer against a live cluster: an empty chunkserver joins a
loaded cluster (`yard cluster add chunkserver`), `yard balancer` moves replicas to it until every server's
use is within the threshold of the mean, and readers during the moves get
every byte right; replica counts stay whole."""

from __future__ import annotations

import threading

from tests.conftest import MiB, replica_counts, wait_until


def test_balancer_fills_a_new_server_while_readers_read(make_cluster, rng):
    c = make_cluster(chunkservers=3, replication=2, chunkserver_capacity=48 * MiB)
    files = {}
    for i in range(10):
        files[f"/bal/f{i}"] = rng.randbytes(MiB + MiB // 2)
        with c.fs.open(f"/bal/f{i}", "wb") as f:
            f.write(files[f"/bal/f{i}"])
    r = c.yard("cluster", "add", "chunkserver", check=True)      # HDFS's new DataNode
    assert "Added chunkserver-4" in r.stdout.decode()
    newcomer = c.chunkservers()[-1]
    wait_until(lambda: sum(s["alive"] for s in c.fs.cluster()["servers"]) == 4, 20,
               "the fourth chunkserver live, empty")
    bad: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        from stackyard.dfs.client import FileSystem
        from stackyard.net.auth import Secret
        fs = FileSystem(c.master, Secret.load(c.home.secret_file))
        while not stop.is_set():
            for path, data in files.items():
                if fs.cat(path) != data:
                    bad.append(path)
        fs.close()
    t = threading.Thread(target=reader)
    t.start()
    try:
        r = c.yard("balancer", "-threshold", "5", "-bandwidth", "50m", timeout=300)
    finally:
        stop.set()
        t.join(60)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "Iteration#" in out and "The cluster is balanced" in out
    servers = [s for s in c.fs.cluster()["servers"] if s["alive"]]
    use = [100 * s["used"] / s["capacity"] for s in servers]
    mean = 100 * sum(s["used"] for s in servers) / sum(s["capacity"] for s in servers)
    assert all(abs(u - mean) <= 5 for u in use), (use, mean)
    joined = next(s for s in servers if s["address"] == newcomer["address"])
    assert joined["chunks"] > 0
    assert not bad
    wait_until(lambda: all(n == 2 for n in replica_counts(c.fs, "/bal")), 30,
               "two replicas of every chunk")
    for path, data in files.items():
        assert c.fs.cat(path) == data
