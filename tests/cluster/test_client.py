"""`sy.connect().fs`: real file objects and the namespace calls."""

from __future__ import annotations

import io
import os

import pytest

import stackyard as sy
from stackyard.errors import LeaseHeldError

MiB = 1 << 20


def test_file_objects_read_seek_readline_iterate(cluster, rng):
    fs = cluster.fs
    lines = [f"line {i} {'x' * rng.randrange(0, 200)}\n".encode() for i in range(30000)]
    data = b"".join(lines)
    assert len(data) > 2 * MiB
    with fs.open("/client/lines.txt", "wb") as f:
        for line in lines:
            f.write(line)
        assert f.tell() == len(data)
    with fs.open("/client/lines.txt", "rb") as f:
        assert f.readline() == lines[0]
        assert list(f)[-1] == lines[-1]
        for _ in range(20):
            pos = rng.randrange(len(data))
            n = rng.randrange(1, 3 * MiB)
            f.seek(pos)
            assert f.tell() == pos
            assert f.read(n) == data[pos:pos + n]
        f.seek(-10, io.SEEK_END)
        assert f.read() == data[-10:]
    with fs.open("/client/lines.txt", "r") as text:
        assert text.readline() == lines[0].decode()


def test_append_mode_and_text_write(cluster):
    fs = cluster.fs
    first = os.urandom(MiB + 100)
    with fs.open("/client/app.bin", "wb") as f:
        f.write(first)
    second = os.urandom(2 * MiB + 5)
    with fs.open("/client/app.bin", "ab") as f:
        f.write(second)
    with fs.open("/client/app.bin", "ab") as f:
        f.write(b"end")
    assert fs.cat("/client/app.bin") == first + second + b"end"
    assert fs.stat("/client/app.bin")["chunks"] == 4
    with fs.open("/client/t.txt", "w") as t:
        t.write("héllo\n")
    assert fs.cat("/client/t.txt") == "héllo\n".encode()


def test_namespace_calls(cluster, tmp_path):
    fs = cluster.fs
    assert fs.mkdir("/client/ns/a/b")
    assert fs.isdir("/client/ns/a") and not fs.isfile("/client/ns/a")
    with pytest.raises(FileExistsError):
        fs.mkdir("/client/ns/a/b", parents=False)
    with pytest.raises(FileNotFoundError):
        fs.stat("/client/ns/zzz")
    with pytest.raises(FileNotFoundError):
        fs.open("/client/ns/zzz", "rb")
    with pytest.raises(IsADirectoryError):
        fs.open("/client/ns/a", "rb")
    with pytest.raises(OSError, match="non empty"):
        fs.rm("/client/ns/a")
    local = tmp_path / "x.bin"
    local.write_bytes(os.urandom(1000))
    fs.put(str(local), "/client/ns/a/x.bin")
    with pytest.raises(FileExistsError):
        fs.put(str(local), "/client/ns/a/x.bin")
    fs.put(str(local), "/client/ns/a/x.bin", overwrite=True)
    assert [e["name"] for e in fs.ls("/client/ns/a")] == ["b", "x.bin"]
    assert fs.ls("/client/ns", detail=False, recursive=True) == [
        "/client/ns/a", "/client/ns/a/b", "/client/ns/a/x.bin"]
    fs.mv("/client/ns/a", "/client/ns/c")
    assert fs.exists("/client/ns/c/x.bin")
    out = fs.get("/client/ns/c/x.bin", str(tmp_path / "back.bin"))
    assert open(out, "rb").read() == local.read_bytes()
    fs.rm("/client/ns", recursive=True)
    assert not fs.exists("/client/ns")
    with pytest.raises(ValueError, match="absolute"):
        fs.stat("relative/path")


def test_chunk_locations_name_live_replicas(cluster):
    fs = cluster.fs
    with fs.open("/client/loc.bin", "wb") as f:
        f.write(os.urandom(2 * MiB + 1))
    locs = fs.chunk_locations("/client/loc.bin")
    assert [(c.offset, c.length) for c in locs] == [(0, MiB), (MiB, MiB), (2 * MiB, 1)]
    servers = {d["address"] for d in cluster.chunkservers()}
    for c in locs:
        assert len(c.hosts) == 3 and set(c.hosts) == servers


def test_second_writer_refused_while_lease_held(cluster):
    fs = cluster.fs
    other = sy.connect(master=cluster.master, secret=cluster.home.secret_file).fs
    with fs.open("/client/leased", "wb") as f:
        f.write(b"first writer")
        f.flush()
        with pytest.raises(LeaseHeldError, match="being written by another client"):
            other.open("/client/leased", "wb")
        with pytest.raises(LeaseHeldError):
            other.open("/client/leased", "ab")
    with other.open("/client/leased", "ab") as g:
        g.write(b" then the second")
    assert fs.cat("/client/leased") == b"first writer then the second"


def test_flushed_data_readable_while_writing(cluster):
    fs = cluster.fs
    with fs.open("/client/growing", "wb") as f:
        f.write(b"a" * 1000)
        f.flush()
        assert fs.cat("/client/growing") == b"a" * 1000
        f.write(b"b" * 10)
        f.flush()
        assert fs.cat("/client/growing") == b"a" * 1000 + b"b" * 10


def test_embedded_default_runs_a_cluster_for_the_process(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("STACKYARD_HOME", str(tmp_path / "nothing-here"))
    with sy.connect() as client:
        assert "embedded" in repr(client)
        err = capfd.readouterr().err
        assert err.count("started an embedded one") == 1 and "thrown away" in err
        with client.fs.open("/e", "wb") as f:
            f.write(b"embedded")
        assert client.fs.cat("/e") == b"embedded"
        # every API of a cluster: coordination and jobs too
        client.coord.create("/embedded", b"here")
        assert client.coord.get("/embedded")[0] == b"here"
        with client.context("embedded") as sc:
            assert sc.parallelize(range(10), 2).sum() == 45
        root = client.home.root
        pids = [d["pid"] for d in client.home.read_state()["daemons"]]
    from stackyard.cluster.process import alive
    assert not any(alive(p) for p in pids)
    assert not root.exists()
