"""The shell's rough edges as a Hadoop user meets them (issue 21), against a
live cluster: errors that name the path as given, relative listings, one
verb prefix per error, the coordination shell's fast failure and single
events, a failed job leaving no output, `--overwrite`, and help texts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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


def test_count_df_find_text_getmerge_move_and_usage(hc, tmp_path):
    import gzip
    hc.yard("hdfs", "dfs", "-mkdir", "-p", "cnt/sub", check=True)
    plain = tmp_path / "p.txt"
    plain.write_bytes(b"one\ntwo\n")
    (tmp_path / "p.gz").write_bytes(gzip.compress(b"zipped\n"))
    hc.yard("hdfs", "dfs", "-put", str(plain), str(tmp_path / "p.gz"), "cnt/", check=True)
    (line,) = lines(hc.yard("dfs", "-count", "cnt", check=True))
    assert line.split() == ["2", "2", str(8 + (tmp_path / "p.gz").stat().st_size), "cnt"]
    q = lines(hc.yard("dfs", "-count", "-q", "cnt", check=True))[0].split()
    assert q[:4] == ["none", "inf", "none", "inf"]
    df = lines(hc.yard("dfs", "-df", "-h", check=True))
    assert df[0].split() == ["Filesystem", "Size", "Used", "Available", "Use%"]
    assert df[1].startswith("yard://")
    assert lines(hc.yard("dfs", "-find", "cnt", "-name", "*.gz", check=True)) == ["cnt/p.gz"]
    assert lines(hc.yard("dfs", "-find", "cnt", "-iname", "P.TXT", check=True)) == ["cnt/p.txt"]
    assert hc.yard("dfs", "-text", "cnt/p.gz", check=True).stdout == b"zipped\n"
    merged = tmp_path / "merged"
    hc.yard("dfs", "-getmerge", "-nl", "cnt", str(merged), check=True)
    assert merged.read_bytes().endswith(b"\none\ntwo\n\n")      # p.gz, then p.txt
    moved = tmp_path / "m.txt"
    moved.write_bytes(b"m\n")
    hc.yard("dfs", "-moveFromLocal", str(moved), "cnt/sub/", check=True)
    assert not moved.exists() and hc.fs.cat(f"/user/{hc.fs.user}/cnt/sub/m.txt") == b"m\n"
    assert lines(hc.yard("dfs", "-usage", "ls", check=True)) == [
        "Usage: yard dfs [-ls [-R] [-h] [-d] [path ...]]"]


def test_truncate_prints_what_hadoops_shell_prints(hc):
    with hc.fs.open("/tr/a", "wb") as f:
        f.write(b"0123456789")
    with hc.fs.open(f"/user/{hc.fs.user}/tr-rel", "wb") as f:
        f.write(b"abc")
    r = hc.yard("dfs", "-truncate", "-w", "4", "/tr/a", check=True)
    assert r.stdout.decode() == "Truncated /tr/a to length: 4\n"
    r = hc.yard("dfs", "-truncate", "1", "tr-rel", check=True)
    assert r.stdout.decode() == "Truncated tr-rel to length: 1\n"
    assert hc.fs.cat("/tr/a") == b"0123" and hc.fs.cat(f"/user/{hc.fs.user}/tr-rel") == b"a"
    r = hc.yard("dfs", "-truncate", "9", "/tr/a")
    assert r.returncode == 1 and r.stderr.decode() == (
        "truncate: Cannot truncate to a larger file size. Current size: 4, truncate size: 9.\n")
    r = hc.yard("dfs", "-truncate", "0", "/tr")
    assert r.stderr.decode() == "truncate: `/tr': Is a directory\n"
    r = hc.yard("dfs", "-truncate", "x", "/tr/a")
    assert r.returncode != 0 and "truncate:" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_text_prints_pickle_records_and_runs_no_code_from_a_file(hc, tmp_path):
    import pickle

    from stackyard.mapreduce.formats import pickle_records
    with hc.fs.open("/recs", "wb") as f:
        f.write(pickle_records([("a", 1), ("b", [2, 3])]))
    assert hc.yard("dfs", "-text", "/recs", check=True).stdout == b"a\t1\nb\t[2, 3]\n"
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = pickle.dumps([Evil()], protocol=5)
    with hc.fs.open("/evil", "wb") as f:
        f.write(len(data).to_bytes(4, "big") + data)
    r = hc.yard("dfs", "-text", "/evil")
    assert r.returncode == 1 and "not a plain value" in r.stderr.decode()
    assert not marker.exists()


HADOOP_SCRIPT = """
hdfs dfs -mkdir -p /script/in /script/tmp
hdfs dfs -put {local}/a.txt /script/in/
hdfs dfs -put -f {local}/a.txt /script/in/a.txt
hdfs dfs -copyFromLocal {local}/b.txt /script/in/
hdfs dfs -ls /script/in
hdfs dfs -ls -R /script
hdfs dfs -ls -h /script/in/a.txt
hdfs dfs -cat /script/in/a.txt
hdfs dfs -tail /script/in/b.txt
hdfs dfs -test -e /script/in/a.txt
hdfs dfs -test -d /script/in
hdfs dfs -test -f /script/in/a.txt
hdfs dfs -stat %n /script/in/a.txt
hdfs dfs -du -s /script
hdfs dfs -du -h /script/in
hdfs dfs -count /script
hdfs dfs -cp /script/in/a.txt /script/tmp/a2.txt
hdfs dfs -mv /script/tmp/a2.txt /script/tmp/a3.txt
hdfs dfs -appendToFile {local}/b.txt /script/tmp/a3.txt
hdfs dfs -touchz /script/tmp/empty
hdfs dfs -test -z /script/tmp/empty
hdfs dfs -setrep 2 /script/in/b.txt
hdfs dfs -chmod 640 /script/in/b.txt
hdfs dfs -chmod -R u+rwx /script/tmp
hdfs dfs -checksum /script/in/a.txt
hdfs dfs -find /script -name '*.txt'
hdfs dfs -text /script/in/a.txt
hdfs dfs -getmerge /script/in {local}/merged.txt
hdfs dfs -copyToLocal /script/tmp/a3.txt {local}/a3.txt
hdfs dfs -truncate -w 3 /script/tmp/a3.txt
hdfs dfs -get /script/in/b.txt {local}/b2.txt
hdfs dfs -rm /script/tmp/empty
hdfs dfs -rm -r /script/tmp
hdfs dfs -rmdir /script/in || true
hdfs dfs -df
hdfs dfs -usage rm
"""


def test_a_script_written_for_hadoop_runs_unchanged(hc, tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    script = HADOOP_SCRIPT.format(local=tmp_path)
    assert sum(1 for x in script.splitlines() if x.startswith("hdfs dfs")) >= 30
    # the one change a Hadoop user makes: the command's name
    bash = f"set -e\nhdfs() {{ {sys.executable} -m stackyard hdfs \"$@\"; }}\n{script}"
    r = subprocess.run(["bash", "-c", bash], capture_output=True, timeout=600,
                       env={**os.environ, "STACKYARD_HOME": str(hc.home.root)})
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert "Found 2 items" in out and "alpha\n" in out and "beta\n" in out
    assert "a.txt\n" in out                          # -stat %n
    assert "/script/in/a.txt\n/script/in/b.txt" in out   # -find
    assert (tmp_path / "merged.txt").read_text() == "alpha\nbeta\n"
    assert (tmp_path / "a3.txt").read_text() == "alpha\nbeta\n"
    assert (tmp_path / "b2.txt").read_text() == "beta\n"
    assert not hc.fs.exists("/script/tmp") and hc.fs.stat("/script/in/b.txt")["mode"] == 0o640
    assert "Usage: yard dfs [-rm" in out
    assert "Truncated /script/tmp/a3.txt to length: 3\n" in out


def test_jobs_survive_a_scheduler_restart_in_the_job_history(hc, tmp_path):
    from tests.conftest import wait_until
    job = tmp_path / "j.py"
    job.write_text("from stackyard.mapreduce import Job\n"
                   "class Words(Job):\n"
                   "    def mapper(self, k, line):\n"
                   "        for w in line.split():\n"
                   "            yield w, 1\n"
                   "    def reducer(self, w, ones):\n"
                   "        yield w, sum(ones)\n")
    hc.fs.mkdir("/hin")
    with hc.fs.open("/hin/t.txt", "wb") as f:
        f.write(b"x y x\n")
    hc.yard("mr", "run", str(job), "--input", "/hin", "--output", "/hout", check=True)
    (jid,) = [j["id"] for j in hc.client.engine.jobs() if j["name"] == "Words"]
    wait_until(lambda: any(jid in p for p in hc.fs.glob("/user/history/done/*/*/*/*.json")),
               30, "the job's history file")
    hc.fs.mkdir("/user/history/done/2020/01/01")        # older than a week: pruned
    with hc.fs.open("/user/history/done/2020/01/01/job_2020.json", "wb") as f:
        f.write(b"{}")
    hc.restart("scheduler")
    wait_until(lambda: not hc.fs.exists("/user/history/done/2020/01/01"), 30,
               "the old history to be pruned")
    listed = hc.yard("mr", "list", check=True).stdout.decode()
    assert jid in listed and "succeeded" in listed
    status = hc.yard("mr", "status", jid, check=True).stdout.decode()
    assert f"{jid} (Words): succeeded" in status and "Map input records=1" in status
    assert hc.client.engine.call("detail", job=jid)[0]["state"] == "succeeded"


YARD = str(Path(sys.executable).parent / "yard")      # the installed command completes


def test_shell_completion_offers_verbs_flags_and_dfs_paths(hc):
    hc.fs.mkdir("/comp/inner")

    def complete(words: str, shell: str = "bash") -> list[str]:
        env = {**os.environ, "STACKYARD_HOME": str(hc.home.root), "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
               "_YARD_COMPLETE": f"{shell}_complete"}
        r = subprocess.run([YARD], env=env, capture_output=True, timeout=60)
        return [line.split(",", 1)[1] for line in r.stdout.decode().splitlines() if "," in line]

    assert "-ls" in complete("yard dfs -l") and "-lsx" not in complete("yard dfs -l")
    assert {"-R", "-h", "-d"} <= set(complete("yard dfs -ls -"))
    assert "-cat" in complete("yard hdfs dfs -ca")
    assert "/comp/" in complete("yard dfs -ls /c")
    assert "/comp/inner/" in complete("yard dfs -ls /comp/")
    assert "cluster" in complete("yard clu")
    for shell in ("bash", "zsh", "fish"):
        src = subprocess.run([YARD], capture_output=True,
                             env={**os.environ, "_YARD_COMPLETE": f"{shell}_source"}).stdout
        assert b"_YARD_COMPLETE" in src
