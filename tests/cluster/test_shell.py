"""`yard dfs` against a real cluster, verb by verb, with Hadoop's outputs and
errors."""

from __future__ import annotations

import hashlib
import os

MiB = 1 << 20


def test_put_get_multichunk_byte_identical(cluster, tmp_path):
    data = os.urandom(3 * MiB + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    cluster.yard("dfs", "-mkdir", "-p", "/shell/in", check=True)
    cluster.yard("dfs", "-put", str(src), "/shell/in/", check=True)
    st = cluster.fs.stat("/shell/in/big.bin")
    assert st["length"] == len(data) and st["chunks"] == 4
    out = tmp_path / "back.bin"
    cluster.yard("dfs", "-get", "/shell/in/big.bin", str(out), check=True)
    assert out.read_bytes() == data
    cat = cluster.yard("dfs", "-cat", "/shell/in/big.bin", check=True)
    assert hashlib.sha256(cat.stdout).digest() == hashlib.sha256(data).digest()


def test_ls_shows_hadoop_columns(cluster, tmp_path):
    cluster.fs.mkdir("/shell/ls/sub")
    with cluster.fs.open("/shell/ls/f.txt", "wb") as f:
        f.write(b"x" * 100)
    out = cluster.yard("dfs", "-ls", "/shell/ls", check=True).stdout.decode().splitlines()
    assert out[0] == "Found 2 items"
    fline = next(line for line in out if line.endswith("/shell/ls/f.txt"))
    perm, repl, owner, group, size = fline.split()[:5]
    assert (perm, repl, size) == ("-rw-r--r--", "3", "100")
    dline = next(line for line in out if line.endswith("/shell/ls/sub"))
    assert dline.startswith("drwxr-xr-x   -")
    rec = cluster.yard("dfs", "-ls", "-R", "/shell/ls", check=True).stdout.decode()
    assert "Found" not in rec and "/shell/ls/sub" in rec and "/shell/ls/f.txt" in rec


def test_errors_are_hadoops_with_exit_code(cluster, tmp_path):
    r = cluster.yard("dfs", "-ls", "/no/such")
    assert r.returncode == 1
    assert r.stderr.decode().strip() == "ls: `/no/such': No such file or directory"
    cluster.fs.mkdir("/shell/err")
    r = cluster.yard("dfs", "-mkdir", "/shell/err")
    assert r.returncode == 1 and "mkdir: `/shell/err': File exists" in r.stderr.decode()
    r = cluster.yard("dfs", "-cat", "/shell/err")
    assert r.returncode == 1 and "Is a directory" in r.stderr.decode()
    r = cluster.yard("dfs", "-rm", "/shell/err")
    assert r.returncode == 1 and "rm: `/shell/err': Is a directory" in r.stderr.decode()
    r = cluster.yard("dfs", "-mkdir", "/shell/no/parent")
    assert r.returncode == 1 and "No such file or directory" in r.stderr.decode()
    r = cluster.yard("dfs", "-ls", "-Z", "/")
    assert r.returncode == 1 and "Illegal option -Z" in r.stderr.decode()
    for r in (cluster.yard("dfs", "-ls", "/no/such"), cluster.yard("dfs", "-frobnicate")):
        assert b"Traceback" not in r.stderr


def test_permission_denied_for_another_user(cluster):
    cluster.fs.mkdir("/shell/private")
    cluster.fs.chmod("/shell/private", 0o700)
    r = cluster.yard("dfs", "-put", "-", "/shell/private/x", input=b"data",
                     env={"STACKYARD_USER": "alice"})
    assert r.returncode == 1
    assert "Permission denied: user=alice, access=WRITE" in r.stderr.decode()
    r = cluster.yard("dfs", "-ls", "/shell/private", env={"STACKYARD_USER": "alice"})
    assert r.returncode == 1 and "Permission denied" in r.stderr.decode()


def test_mv_rm_du_like_hadoop(cluster, tmp_path):
    fs = cluster.fs
    fs.mkdir("/shell/mv/a")
    fs.mkdir("/shell/mv/b")
    with fs.open("/shell/mv/a/f", "wb") as f:
        f.write(b"1234567890")
    cluster.yard("dfs", "-mv", "/shell/mv/a/f", "/shell/mv/b", check=True)
    assert fs.exists("/shell/mv/b/f") and not fs.exists("/shell/mv/a/f")
    cluster.yard("dfs", "-mv", "/shell/mv/b/f", "/shell/mv/b/g", check=True)
    assert fs.cat("/shell/mv/b/g") == b"1234567890"
    with fs.open("/shell/mv/b/h", "wb") as f:
        f.write(b"xy")
    r = cluster.yard("dfs", "-mv", "/shell/mv/b/g", "/shell/mv/b/h")
    assert r.returncode == 1 and "File exists" in r.stderr.decode()
    du = cluster.yard("dfs", "-du", "-s", "/shell/mv", check=True).stdout.decode().split()
    assert du == ["12", "36", "/shell/mv"]
    du = cluster.yard("dfs", "-du", "/shell/mv/b", check=True).stdout.decode().splitlines()
    assert [line.split() for line in du] == [["10", "30", "/shell/mv/b/g"],
                                             ["2", "6", "/shell/mv/b/h"]]
    r = cluster.yard("dfs", "-rm", "-r", "/shell/mv", check=True)
    assert r.stdout.decode().strip() == "Deleted /shell/mv"
    assert not fs.exists("/shell/mv")
    r = cluster.yard("dfs", "-rm", "-f", "/shell/mv")
    assert r.returncode == 0


def test_cp_stat_chmod_chown_checksum_test_append(cluster, tmp_path):
    fs = cluster.fs
    data = os.urandom(MiB + 777)
    with fs.open("/shell/misc/a", "wb") as f:
        f.write(data)
    cluster.yard("dfs", "-cp", "/shell/misc/a", "/shell/misc/b", check=True)
    assert fs.cat("/shell/misc/b") == data
    ca = cluster.yard("dfs", "-checksum", "/shell/misc/a", check=True).stdout.decode().split("\t")
    cb = cluster.yard("dfs", "-checksum", "/shell/misc/b", check=True).stdout.decode().split("\t")
    assert ca[1:] == cb[1:] and ca[1].startswith("MD5-of-MD5-of-65536CRC32C")
    st = cluster.yard("dfs", "-stat", "%b %F %r %o %n %a", "/shell/misc/a", check=True)
    assert st.stdout.decode().strip() == f"{len(data)} regular file 3 {MiB} a 644"
    cluster.yard("dfs", "-chmod", "600", "/shell/misc/a", check=True)
    cluster.yard("dfs", "-chmod", "g+r", "/shell/misc/a", check=True)
    assert fs.stat("/shell/misc/a")["mode"] == 0o640
    cluster.yard("dfs", "-chown", "bob:staff", "/shell/misc/a", check=True)
    st = fs.stat("/shell/misc/a")
    assert (st["owner"], st["group"]) == ("bob", "staff")
    assert cluster.yard("dfs", "-test", "-e", "/shell/misc/a").returncode == 0
    assert cluster.yard("dfs", "-test", "-d", "/shell/misc/a").returncode == 1
    assert cluster.yard("dfs", "-test", "-f", "/shell/misc/a").returncode == 0
    assert cluster.yard("dfs", "-test", "-d", "/shell/misc").returncode == 0
    assert cluster.yard("dfs", "-test", "-e", "/shell/misc/zz").returncode == 1
    local = tmp_path / "more.txt"
    local.write_bytes(b"tail!\n")
    cluster.yard("dfs", "-appendToFile", str(local), "/shell/misc/b", check=True)
    assert fs.cat("/shell/misc/b") == data + b"tail!\n"
    tail = cluster.yard("dfs", "-tail", "/shell/misc/b", check=True).stdout
    assert tail == (data + b"tail!\n")[-1024:]


def test_setrep_wait_changes_replica_count(cluster):
    fs = cluster.fs
    data = os.urandom(2 * MiB)
    with fs.open("/shell/rep", "wb") as f:
        f.write(data)
    r = cluster.yard("dfs", "-setrep", "-w", "1", "/shell/rep", check=True)
    assert "Replication 1 set: /shell/rep" in r.stdout.decode()
    from tests.conftest import replica_counts
    assert replica_counts(fs, "/shell/rep") == [1, 1]
    assert fs.cat("/shell/rep") == data
    cluster.yard("dfs", "-setrep", "-w", "3", "/shell/rep", check=True)
    assert replica_counts(fs, "/shell/rep") == [3, 3]
    assert fs.cat("/shell/rep") == data


def test_fsck_healthy_and_cluster_status(cluster):
    with cluster.fs.open("/shell/fsck/x", "wb") as f:
        f.write(b"hello")
    r = cluster.yard("fsck", "/shell/fsck", "-files", "-blocks", "-locations", check=True)
    out = r.stdout.decode()
    assert "The filesystem under path '/shell/fsck' is HEALTHY" in out
    assert "/shell/fsck/x 5 bytes, replicated: replication=3, 1 chunk(s):  OK" in out
    st = cluster.yard("cluster", "status", check=True).stdout.decode()
    assert st.count("running") == 4 and "chunkserver-3" in st


def test_tail_follow_sees_appends(cluster):
    import subprocess
    import sys
    with cluster.fs.open("/shell/follow.log", "wb") as f:
        f.write(b"first\n")
    env = {**os.environ, "STACKYARD_HOME": str(cluster.home.root)}
    proc = subprocess.Popen([sys.executable, "-m", "stackyard", "dfs", "-tail", "-f",
                             "/shell/follow.log"], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline() == b"first\n"
        with cluster.fs.open("/shell/follow.log", "ab") as f:
            f.write(b"second\n")
        assert proc.stdout.readline() == b"second\n"   # a hang is caught by pytest-timeout
    finally:
        proc.kill()
        proc.wait()
