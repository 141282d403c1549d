"""The shell's rough edges as a Hadoop user meets them (issue 21), against a
live cluster: errors that name the path as given, relative listings, one
verb prefix per error, the coordination shell's fast failure and single
events, a failed job leaving no output, `--overwrite`, and help texts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.compute.conftest import ENGINE


@pytest.fixture(scope="module")
def hc(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **{**ENGINE, "coords": 1})
    yield c
    c.close()


def lines(proc) -> list[str]:
    return proc.stdout.decode().splitlines()


def test_mkdir_without_p_names_the_path_given(hc):
    r = hc.yard("dfs", "-mkdir", "/a/b/c")
    assert r.returncode == 1
    assert r.stderr.decode().strip() == "mkdir: `/a/b/c': No such file or directory"
    r = hc.yard("dfs", "-mkdir", "rel/x")
    assert r.stderr.decode().strip() == "mkdir: `rel/x': No such file or directory"


def test_ls_keeps_relative_paths_relative_and_lists_one_file(hc, tmp_path):
    hc.yard("dfs", "-mkdir", "-p", "docs/sub", check=True)
    f = tmp_path / "a.txt"
    f.write_text("hello\n")
    hc.yard("dfs", "-put", str(f), "docs/a.txt", check=True)
    out = lines(hc.yard("dfs", "-ls", "docs", check=True))
    assert out[0] == "Found 2 items"
    assert sorted(x.split()[-1] for x in out[1:]) == ["docs/a.txt", "docs/sub"]
    (one,) = lines(hc.yard("dfs", "-ls", "docs/a.txt", check=True))
    assert one.split()[-1] == "docs/a.txt" and one.split()[4] == "6"
    home = lines(hc.yard("dfs", "-ls", check=True))
    assert "docs" in [x.split()[-1] for x in home[1:]]
    glob = lines(hc.yard("dfs", "-ls", "docs/*.txt", check=True))
    assert [x.split()[-1] for x in glob] == ["docs/a.txt"]
    absolute = lines(hc.yard("dfs", "-ls", f"/user/{hc.fs.user}/docs", check=True))
    assert f"/user/{hc.fs.user}/docs/a.txt" in [x.split()[-1] for x in absolute[1:]]
    r = hc.yard("dfs", "-cat", "docs/nope")
    assert r.stderr.decode().strip() == "cat: `docs/nope': No such file or directory"


def test_each_error_starts_with_its_verb_once(hc):
    hc.fs.open("/m.txt", "wb").close()
    for mode in ("999", "u+q"):
        r = hc.yard("dfs", "-chmod", mode, "/m.txt")
        assert r.returncode == 1
        assert r.stderr.decode().strip() == f"chmod: invalid mode: {mode}"
    r = hc.yard("dfs", "-test", "-e", "-d", "/m.txt")
    assert r.stderr.decode().startswith("test: ") and "test: test" not in r.stderr.decode()


def test_coord_watch_prints_one_event_per_change(hc):
    env_cmd = [sys.executable, "-m", "stackyard", "coord", "watch", "/w", "--count", "4"]
    watcher = subprocess.Popen(env_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "STACKYARD_HOME": str(hc.home.root)})
    try:
        time.sleep(2)            # the watch is set (there is no signal to wait on)
        hc.yard("coord", "create", "/w", "one", check=True)
        hc.yard("coord", "set", "/w", "two", check=True)
        hc.yard("coord", "rm", "/w", check=True)
        hc.yard("coord", "create", "/w", "three", check=True)
        out, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert out.decode().splitlines() == ["created /w", "data_changed /w", "deleted /w",
                                         "created /w"]


def test_a_failed_job_leaves_no_output_and_overwrite_replaces_one(hc, tmp_path):
    hc.fs.mkdir("/jin")
    with hc.fs.open("/jin/x.txt", "wb") as f:
        f.write(b"a b\nc\n")
    job = tmp_path / "job.py"
    job.write_text(
        "from stackyard.mapreduce import Job\n"
        "class Fails(Job):\n"
        "    max_attempts = 1\n"
        "    def mapper(self, k, line):\n"
        "        raise ValueError('no')\n"
        "class Counts(Job):\n"
        "    def mapper(self, k, line):\n"
        "        for w in line.split():\n"
        "            yield w, 1\n"
        "    def reducer(self, w, ones):\n"
        "        yield w, sum(ones)\n")
    r = hc.yard("mr", "run", str(job), "--job", "Fails", "--input", "/jin", "--output", "/jout")
    assert r.returncode == 1 and not hc.fs.exists("/jout")
    hc.yard("mr", "run", str(job), "--job", "Counts", "--input", "/jin", "--output", "/jout",
            check=True)
    again = hc.yard("mr", "run", str(job), "--job", "Counts", "--input", "/jin",
                    "--output", "/jout")
    assert again.returncode == 1 and "already exists" in again.stderr.decode()
    hc.yard("mr", "run", str(job), "--job", "Counts", "--input", "/jin", "--output", "/jout",
            "--overwrite", check=True)
    assert hc.fs.exists("/jout/_SUCCESS")


def test_coord_with_the_cluster_down_says_so(tmp_path):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path / "down", coords=1)
    c.close()
    r = c.yard("coord", "ls", "/")
    assert r.returncode == 1
    assert "no cluster is running" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_help_texts_and_option_errors(hc):
    top = hc.yard("--help", check=True).stdout.decode()
    assert "as it grows" not in top and "table store" in top and "search" in top
    up = hc.yard("cluster", "up", "--help", check=True).stdout.decode()
    for role in ("chunkservers", "coordination cell", "scheduler", "Spark Connect",
                 "tablet server", "Thrift", "search server"):
        assert role in " ".join(up.split()), role
    bad = hc.yard("cluster", "up", "--chunk-size", "banana")
    assert bad.returncode == 2 and "'--chunk-size': not a size: 'banana'" in bad.stderr.decode()
