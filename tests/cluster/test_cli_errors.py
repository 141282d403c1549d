"""Expected errors of `yard` reach the user as one clear line, never a traceback."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

MiB = 1 << 20


def run(*args, env=None, home=None):
    e = {**os.environ, **(env or {})}
    if home is not None:
        e["STACKYARD_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "stackyard", *args], capture_output=True,
                          env=e, timeout=60)


def test_no_cluster_running(tmp_path):
    r = run("dfs", "-ls", "/", home=tmp_path / "none")
    assert r.returncode == 1
    assert "no cluster is running under" in r.stderr.decode()
    r = run("cluster", "status", home=tmp_path / "none")
    assert r.returncode == 1 and "no cluster under" in r.stderr.decode()
    r = run("fsck", "/", home=tmp_path / "none")
    assert r.returncode == 1 and b"Traceback" not in r.stderr


def test_daemon_config_errors_name_the_problem(tmp_path):
    r = run("daemon", "master", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 1 and "config file not found" in r.stderr.decode()
    bad = tmp_path / "bad.toml"
    bad.write_text('data_dir = "d"\nsecret_file = "s"\nheartbeat_interval = 5\ndead_after = 2\n')
    r = run("daemon", "master", "--config", str(bad))
    assert r.returncode == 1 and "dead_after: must be longer" in r.stderr.decode()
    bad.write_text('data_dir = "d"\nsecret_file = "/nonexistent/secret"\n')
    r = run("daemon", "master", "--config", str(bad))
    assert r.returncode == 1 and "cluster secret file not found" in r.stderr.decode()
    for out in (r.stderr,):
        assert b"Traceback" not in out


def test_cluster_up_twice_and_bad_flags(cluster, tmp_path):
    r = run("cluster", "up", home=cluster.home.root)
    assert r.returncode == 1 and "already running" in r.stderr.decode()
    r = run("cluster", "up", "--chunk-size", "100k", home=tmp_path / "x")
    assert r.returncode == 1 and "multiple of 64 KiB" in r.stderr.decode()
    r = run("cluster", "up", "--chunk-size", "lots", home=tmp_path / "x")
    assert r.returncode != 0 and "not a size" in r.stderr.decode()


def test_unreachable_master_is_named(cluster, tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    state = cluster.home.read_state()
    import json
    state["daemons"][0]["pid"] = os.getpid()           # "running", but nobody listens
    state["daemons"][0]["config"] = None
    state["master"] = "127.0.0.1:9"
    (home / "cluster.json").write_text(json.dumps(state))
    (home / "secret").write_text(cluster.home.secret_file.read_text())
    r = run("dfs", "-ls", "/", home=home, env={})
    assert r.returncode == 1
    assert "master unreachable" in r.stderr.decode() and "127.0.0.1:9" in r.stderr.decode()


def test_put_draws_a_progress_bar_on_a_terminal(cluster, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * MiB))
    env = {**os.environ, "STACKYARD_HOME": str(cluster.home.root), "COLUMNS": "100"}
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "stackyard", "dfs", "-put",
                                   str(src), "/progress.bin"], env)
    out = b""
    while True:
        try:
            piece = os.read(fd, 65536)
        except OSError:
            break
        if not piece:
            break
        out += piece
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    text = out.decode(errors="replace")
    assert "put big.bin" in text and "12.0/12.0 MiB" in text
    assert cluster.fs.stat("/progress.bin")["length"] == 12 * MiB


def test_a_job_file_that_is_not_python_gets_one_line(tmp_path):
    cases = {"syntax.py": (b"def map(:\n    pass\n", "syntax.py, line 1: not valid Python"),
             "README.md": (b"# A title\n\nSome *text* here.\n", "README.md, line 3: not valid Python"),
             "binary.py": (b"\x00\x01\x02", "binary.py: not valid Python"),
             "fails.py": (b"import os\n\nraise RuntimeError('at import')\n",
                          "fails.py, line 3: RuntimeError: at import")}
    for name, (body, want) in cases.items():
        job = tmp_path / name
        job.write_bytes(body)
        r = run("mr", "run", str(job), "--input", "/in", "--output", "/out",
                home=tmp_path / "none")
        err = r.stderr.decode()
        assert r.returncode == 1 and "Traceback" not in err, err
        assert err.startswith("mr run: ") and want in err and len(err.splitlines()) == 1, err
