"""kill -9 of the master during a stream of mkdir / put: after restart every
acknowledged entry is there and intact (op log + checkpoints + replay)."""

from __future__ import annotations

import threading
import time

from tests.conftest import wait_until

MiB = 1 << 20


def test_master_kill9_loses_no_acknowledged_mutation(make_cluster, rng):
    # a tiny checkpoint threshold so that checkpoints happen during the stream
    c = make_cluster(checkpoint_log_bytes=2 * 1024)
    fs = c.fs
    acked_dirs: list[str] = []
    acked_files: dict[str, bytes] = {}
    failures: list[str] = []
    stop = threading.Event()
    payloads = [rng.randbytes(rng.randrange(1, int(1.5 * MiB))) for _ in range(8)]

    def stream():
        i = 0
        while not stop.is_set():
            d = f"/crash/d{i}"
            try:
                fs.mkdir(d)
                acked_dirs.append(d)
                data = payloads[i % len(payloads)]
                with fs.open(f"{d}/file", "wb") as f:
                    f.write(data)
                acked_files[f"{d}/file"] = data
            except Exception as exc:    # in flight while the master was down
                failures.append(f"{d}: {exc}")
            i += 1

    t = threading.Thread(target=stream)
    t.start()
    try:
        wait_until(lambda: len(acked_files) >= 5, 60, "a few acknowledged puts")
        c.kill("master")
        killed_at = len(acked_dirs)
        time.sleep(0.5)
        c.start("master")
        wait_until(lambda: len(acked_dirs) >= killed_at + 5, 60, "puts after the restart")
    finally:
        stop.set()
        t.join(60)
    c.cluster.wait_live(3, 30)
    names = {e["path"] for e in fs.ls("/crash")}
    for d in acked_dirs:
        assert d in names, f"acknowledged mkdir {d} lost"
    for path, data in acked_files.items():
        assert fs.cat(path) == data, f"acknowledged file {path} damaged"
    checkpoints = list((c.home.data("master") / "journal").glob("checkpoint.*"))
    assert checkpoints, "the stream should have passed the checkpoint threshold"


def test_master_restart_recovers_from_checkpoint_and_log(make_cluster, rng):
    c = make_cluster(checkpoint_log_bytes=4 * 1024)
    data = {f"/r/f{i}": rng.randbytes(rng.randrange(0, 300_000)) for i in range(25)}
    for path, blob in data.items():
        with c.fs.open(path, "wb") as f:
            f.write(blob)
    c.fs.mv("/r/f0", "/r/renamed")
    c.fs.rm("/r/f1")
    c.fs.chmod("/r/f2", 0o600)
    c.kill("master")
    c.start("master")
    c.cluster.wait_live(3, 30)
    assert not c.fs.exists("/r/f1") and not c.fs.exists("/r/f0")
    assert c.fs.cat("/r/renamed") == data["/r/f0"]
    assert c.fs.stat("/r/f2")["mode"] == 0o600
    for path, blob in data.items():
        if path not in ("/r/f0", "/r/f1"):
            assert c.fs.cat(path) == blob


def test_a_dead_writers_file_is_closed_after_a_master_restart(make_cluster):
    """Leases are soft state: a restarted master grants every file under
    construction a fresh one, so the file of a writer that died meanwhile is
    closed when that lease runs out (HDFS's lease recovery)."""
    import os
    import signal
    import subprocess
    import sys
    c = make_cluster()
    code = ("import sys, time, stackyard as sy\n"
            f"fs = sy.connect(home={str(c.home.root)!r}, embedded=False).fs\n"
            "f = fs.open('/orphan', 'wb'); f.write(b'x' * 1000); f.flush()\n"
            "print('ready', flush=True); time.sleep(600)\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == b"ready"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(30)
    assert c.fs.stat("/orphan")["under_construction"]
    c.restart("master")
    c.cluster.wait_live(3, timeout=60)
    wait_until(lambda: not c.fs.stat("/orphan")["under_construction"], 30,
               "the dead writer's file closed by lease recovery")
    assert c.fs.cat("/orphan") == b"x" * 1000
