"""Directory quotas through dfsadmin against a live cluster, in Hadoop's
words: a name quota and a space quota refuse what would pass them, -count
-q shows them, only the superuser sets them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def qc(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"))
    yield c
    c.close()


def test_name_and_space_quotas_from_the_shell(qc, tmp_path):
    c = qc
    local = tmp_path / "one"
    local.write_bytes(b"1")
    c.yard("dfs", "-mkdir", "-p", "/q/a", "/s", check=True)
    c.yard("dfsadmin", "-setQuota", "3", "/q", check=True)
    c.yard("hdfs", "dfsadmin", "-setSpaceQuota", "2m", "/s", check=True)
    out = c.yard("dfs", "-count", "-q", "/q", "/s", check=True).stdout.decode().splitlines()
    assert out[0].split() == ["3", "1", "none", "inf", "2", "0", "0", "/q"]
    assert out[1].split() == ["none", "inf", str(2 << 20), str(2 << 20), "1", "0", "0", "/s"]
    c.yard("dfs", "-put", str(local), "/q/f1", check=True)          # the third name
    r = c.yard("dfs", "-put", str(local), "/q/f2")
    assert r.returncode == 1 and "The NameSpace quota (directories and files) of directory " \
        "/q is exceeded: quota=3 file count=4" in r.stderr.decode()
    r = c.yard("dfs", "-put", str(local), "/s/f")        # a 1 MiB chunk times 3 > 2 MiB
    assert r.returncode == 1 and "The DiskSpace quota of /s is exceeded" in r.stderr.decode()
    assert "Traceback" not in r.stderr.decode() and not c.fs.exists("/s/f/x")
    c.yard("dfsadmin", "-clrSpaceQuota", "/s", check=True)
    c.yard("dfs", "-put", str(local), "/s/f", check=True)
    r = c.yard("dfsadmin", "-setQuota", "3", "/q", env={"STACKYARD_USER": "mallory"})
    assert r.returncode == 1 and "Superuser privilege is required" in r.stderr.decode()
    r = c.yard("dfsadmin", "-setQuota", "0", "/q")
    assert r.returncode == 1 and "is not a valid value for a quota" in r.stderr.decode()
    r = c.yard("dfsadmin", "-ls", "/")
    assert r.returncode == 1 and "Unknown command" in r.stderr.decode()
