"""`yard hbase`: HBase's shell commands, with -e and on standard input."""

from __future__ import annotations

from stackyard.table.shell import parse


def test_shell_syntax_reads_as_hbase_writes_it():
    assert parse("create 't', 'cf1', {NAME => 'cf2', VERSIONS => 3}") == \
        ("create", ["t", "cf1", {"NAME": "cf2", "VERSIONS": 3}])
    assert parse("alter 't', 'delete' => 'cf1'") == ("alter", ["t", {"delete": "cf1"}])
    assert parse("scan 't', {REVERSED => true, FILTER => \"PrefixFilter ('a')\"}") == \
        ("scan", ["t", {"REVERSED": True, "FILTER": "PrefixFilter ('a')"}])


def test_shell_commands_end_to_end(tcluster):
    script = "\n".join([
        "create 'sh', 'cf1', {NAME => 'cf2', VERSIONS => 3}, {SPLITS => ['m']}",
        "list",
        "describe 'sh'",
        "put 'sh', 'r1', 'cf1:a', 'v1'",
        "put 'sh', 'r1', 'cf2:b', 'old', 10",
        "put 'sh', 'r1', 'cf2:b', 'new', 20",
        "put 'sh', 'x9', 'cf1:a', 'far'",
        "get 'sh', 'r1'",
        "get 'sh', 'r1', {COLUMN => 'cf2:b', VERSIONS => 3}",
        "scan 'sh', {STARTROW => 'a', LIMIT => 10, FILTER => \"ValueFilter (=, 'binary:far')\"}",
        "incr 'sh', 'c', 'cf1:n', 5",
        "count 'sh'",
        "delete 'sh', 'r1', 'cf1:a'",
        "deleteall 'sh', 'x9'",
        "scan 'sh'",
        "alter 'sh', {NAME => 'cf3'}",
        "flush 'sh'", "compact 'sh'", "major_compact 'sh'", "split 'sh', 'r'",
        "status",
        "truncate 'sh'",
        "count 'sh'",
        "disable 'sh'", "enable 'sh'", "disable 'sh'", "drop 'sh'", "list"])
    out = tcluster.yard("hbase", "-e", script, check=True).stdout.decode()
    assert "Created table sh" in out
    assert " cf1:a" in out and "value=v1" in out
    assert "timestamp=20, value=new" in out and "timestamp=10, value=old" in out
    assert " x9" in out and "value=far" in out
    assert "COUNTER VALUE = 5" in out
    assert "3 row(s)\n3\n" in out and "0 row(s)\n0\n" in out
    assert "servers" in out
    assert out.rstrip().endswith("Took " + out.rstrip().rsplit("Took ", 1)[1])
    # the last `list`: the dropped table is gone (other tests' tables share the cluster)
    assert "sh" not in out.split("TABLE")[-1].split("row(s)")[0].split()


def test_shell_errors_are_one_line_and_the_shell_goes_on(tcluster):
    p = tcluster.yard("hbase", input=b"get 'nosuch', 'r'\nfrobnicate\nscan 'nosuch', {FILTER => "
                      b"\"PrefixFilter (\"}\nlist\n")
    err = p.stderr.decode()
    assert "ERROR: table 'nosuch' does not exist" in err
    assert "unknown command 'frobnicate'" in err and "Traceback" not in err
    assert "TABLE" in p.stdout.decode()
    p = tcluster.yard("hbase", "-e", "put 'nosuch', 'r', 'f:a', 'v'")
    assert p.returncode == 1 and "Traceback" not in p.stderr.decode()
