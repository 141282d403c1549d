"""HDFS's permission rules (FSPermissionChecker), one test per rule, with two
users over WebHDFS against a real cluster: a user with write on a parent
cannot delete another's private subtree, cannot overwrite another's file,
the sticky bit protects entries of a shared directory, and a content summary
needs read on every directory it counts."""

from __future__ import annotations

import uuid

import pytest
import requests

from stackyard.dfs.client import FileSystem
from stackyard.net.auth import Secret


@pytest.fixture
def users(cluster):
    secret = Secret.load(cluster.home.secret_file)
    root = f"/perm-{uuid.uuid4().hex[:8]}"
    cluster.fs.mkdir(root, mode=0o777)
    cluster.fs.call("chmod", path=root, mode=0o777)
    fs = {u: FileSystem(cluster.master, secret, u) for u in ("alice", "bob")}
    yield {"root": root, "fs": fs, "secret": secret, "master": cluster.master}
    for f in fs.values():
        f.close()
    cluster.fs.rm(root, recursive=True)


def web(users, who: str, method: str, path: str, op: str, data: bytes | None = None,
        **params):
    token = users["secret"].delegation_token(who, 3600)
    return requests.request(method, f"http://{users['master']}/webhdfs/v1{path}",
                            params={"op": op, "delegation": token, **params}, data=data,
                            timeout=30)


def denied(r) -> bool:
    return r.status_code == 403 and "Permission denied" in r.text


def test_delete_needs_write_on_every_directory_of_the_subtree(users, cluster):
    a, root = users["fs"]["alice"], users["root"]
    a.mkdir(f"{root}/private/inner", parents=True)
    with a.open(f"{root}/private/inner/f", "wb") as f:
        f.write(b"alice's")
    a.call("chmod", path=f"{root}/private", mode=0o700)
    r = web(users, "bob", "DELETE", f"{root}/private", "DELETE", recursive="true")
    assert denied(r), r.text
    assert cluster.fs.cat(f"{root}/private/inner/f") == b"alice's"
    assert web(users, "alice", "DELETE", f"{root}/private", "DELETE",
               recursive="true").json() == {"boolean": True}


def test_overwrite_needs_write_on_the_file_itself(users, cluster):
    a, root = users["fs"]["alice"], users["root"]
    with a.open(f"{root}/mine", "wb") as f:
        f.write(b"alice's data")
    a.call("chmod", path=f"{root}/mine", mode=0o600)
    r = web(users, "bob", "PUT", f"{root}/mine", "CREATE", overwrite="true", data=b"bob's")
    assert denied(r), r.text
    st = cluster.fs.stat(f"{root}/mine")
    assert st["owner"] == "alice" and cluster.fs.cat(f"{root}/mine") == b"alice's data"


def test_the_sticky_bit_keeps_others_off_an_entry(users, cluster):
    a, b, root = users["fs"]["alice"], users["fs"]["bob"], users["root"]
    cluster.fs.mkdir(f"{root}/tmp")
    cluster.fs.call("chmod", path=f"{root}/tmp", mode=0o1777)
    with a.open(f"{root}/tmp/alices", "wb") as f:
        f.write(b"a")
    a.call("chmod", path=f"{root}/tmp/alices", mode=0o666)
    r = web(users, "bob", "DELETE", f"{root}/tmp/alices", "DELETE")
    assert r.status_code == 403 and "sticky bit" in r.text
    r = web(users, "bob", "PUT", f"{root}/tmp/alices", "RENAME", destination=f"{root}/tmp/bobs")
    assert r.status_code == 403 and "sticky bit" in r.text
    assert cluster.fs.exists(f"{root}/tmp/alices")
    with b.open(f"{root}/tmp/own", "wb") as f:
        f.write(b"b")
    b.rm(f"{root}/tmp/own")                                  # one's own entry: fine
    assert web(users, "alice", "DELETE", f"{root}/tmp/alices", "DELETE").json() == {
        "boolean": True}
    assert cluster.fs.stat(f"{root}/tmp")["permission"].endswith("rwt")


def test_the_owner_of_a_sticky_directory_may_remove_any_entry(users, cluster):
    a, b, root = users["fs"]["alice"], users["fs"]["bob"], users["root"]
    a.mkdir(f"{root}/hers")
    a.call("chmod", path=f"{root}/hers", mode=0o1777)
    with b.open(f"{root}/hers/bobs", "wb") as f:
        f.write(b"b")
    a.rm(f"{root}/hers/bobs")
    assert not cluster.fs.exists(f"{root}/hers/bobs")


def test_a_content_summary_needs_read_on_every_directory(users, cluster):
    a, root = users["fs"]["alice"], users["root"]
    a.mkdir(f"{root}/secret/sub", parents=True)
    with a.open(f"{root}/secret/sub/f", "wb") as f:
        f.write(b"x" * 1000)
    a.call("chmod", path=f"{root}/secret/sub", mode=0o700)
    r = web(users, "bob", "GET", f"{root}/secret", "GETCONTENTSUMMARY")
    assert denied(r), r.text
    assert "1000" not in r.text
    r = web(users, "alice", "GET", f"{root}/secret", "GETCONTENTSUMMARY")
    assert r.json()["ContentSummary"]["length"] == 1000


def test_listing_needs_read_and_execute(users):
    a, root = users["fs"]["alice"], users["root"]
    a.mkdir(f"{root}/noexec")
    with a.open(f"{root}/noexec/f", "wb") as f:
        f.write(b"x")
    a.call("chmod", path=f"{root}/noexec", mode=0o744)       # others: read, no execute
    r = web(users, "bob", "GET", f"{root}/noexec", "LISTSTATUS")
    assert denied(r) and "EXECUTE" in r.text


def test_a_group_is_given_only_to_one_of_ones_own(users, cluster):
    b, root = users["fs"]["bob"], users["root"]
    with b.open(f"{root}/bobs", "wb") as f:
        f.write(b"b")
    r = web(users, "bob", "PUT", f"{root}/bobs", "SETOWNER", group="alice")
    assert denied(r) and "does not belong" in r.text
    assert cluster.fs.stat(f"{root}/bobs")["group"] != "alice"
