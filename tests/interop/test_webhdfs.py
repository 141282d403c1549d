"""WebHDFS against a live cluster: fsspec's `webhdfs` file system and the
`hdfs` package from PyPI, both unmodified, and the wire shapes of Hadoop's
WebHDFS documentation checked with plain HTTP."""

from __future__ import annotations

import getpass
import hashlib
import uuid

import pytest
import requests
from fsspec.implementations.webhdfs import WebHDFS
from hdfs import HdfsError, TokenClient

from stackyard.net.auth import Secret


@pytest.fixture(scope="module")
def web(cluster):
    host, port = cluster.master.split(":")
    secret = Secret.load(cluster.home.secret_file)
    return {"host": host, "port": int(port), "url": f"http://{cluster.master}",
            "secret": secret, "user": getpass.getuser(),
            "token": secret.delegation_token(getpass.getuser(), 3600)}


@pytest.fixture
def base(cluster):
    path = f"/webhdfs-{uuid.uuid4().hex[:8]}"
    yield path
    if cluster.fs.exists(path):
        cluster.fs.rm(path, recursive=True)


def api(web, path, op, method="GET", token=True, **params):
    params["op"] = op
    if token:
        params["delegation"] = web["token"]
    return requests.request(method, f"{web['url']}/webhdfs/v1{path}", params=params,
                            allow_redirects=False, timeout=30)


def test_fsspec_webhdfs_unmodified(web, base, cluster):
    fs = WebHDFS(web["host"], port=web["port"], token=web["token"])
    fs.mkdir(f"{base}/d")
    data = hashlib.sha256(b"x").digest() * 70_000        # 2.2 MB: several chunks, several POSTs
    with fs.open(f"{base}/d/a.bin", "wb", block_size=1 << 20) as f:
        f.write(data)
    assert fs.cat(f"{base}/d/a.bin") == data
    with fs.open(f"{base}/d/a.bin", "rb") as f:
        f.seek(1_500_000)
        assert f.read(1000) == data[1_500_000:1_501_000]
    assert [e["name"].rsplit("/", 1)[-1] for e in fs.ls(f"{base}/d", detail=True)] == ["a.bin"]
    assert fs.info(f"{base}/d/a.bin")["size"] == len(data)
    fs.mv(f"{base}/d/a.bin", f"{base}/d/b.bin")
    assert cluster.fs.cat(f"{base}/d/b.bin") == data      # the same bytes, seen natively
    fs.rm(f"{base}/d", recursive=True)
    assert not cluster.fs.exists(f"{base}/d")
    with pytest.raises(FileNotFoundError, match="File does not exist"):
        fs.info(f"{base}/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat(f"{base}/missing")


def test_fsspec_webhdfs_with_basic_auth_names_the_user(web, base, cluster):
    """user + password (the secret) is HTTP Basic auth; the user is the caller."""
    cluster.fs.mkdir(base)
    cluster.fs.chmod(base, 0o777)
    fs = WebHDFS(web["host"], port=web["port"], user="alice",
                 password=web["secret"]._key.decode())
    fs.pipe(f"{base}/by-alice", b"hi")
    st = cluster.fs.stat(f"{base}/by-alice")
    assert st["owner"] == "alice" and cluster.fs.cat(f"{base}/by-alice") == b"hi"


def test_hdfs_package_unmodified(web, base, cluster):
    client = TokenClient(web["url"], web["token"])
    client.makedirs(f"{base}/x", permission="750")
    assert client.status(f"{base}/x")["permission"] == "750"
    client.write(f"{base}/x/w.txt", data=b"hello webhdfs\n" * 1000)
    client.write(f"{base}/x/gen.txt", data=(b"line %d\n" % i for i in range(5000)))
    with client.read(f"{base}/x/w.txt") as reader:
        assert reader.read() == b"hello webhdfs\n" * 1000
    with client.read(f"{base}/x/gen.txt", offset=7, length=6) as reader:
        assert reader.read() == b"line 1"
    client.write(f"{base}/x/w.txt", data=b"more\n", append=True)
    assert cluster.fs.cat(f"{base}/x/w.txt").endswith(b"webhdfs\nmore\n")
    assert sorted(client.list(f"{base}/x")) == ["gen.txt", "w.txt"]
    client.rename(f"{base}/x/w.txt", f"{base}/x/renamed.txt")
    assert sorted(client.list(f"{base}/x")) == ["gen.txt", "renamed.txt"]
    assert client.content(f"{base}/x")["fileCount"] == 2
    assert client.delete(f"{base}/x", recursive=True) is True
    assert client.status(f"{base}/x", strict=False) is None
    with pytest.raises(HdfsError) as info:
        client.status(f"{base}/missing")
    assert info.value.exception == "FileNotFoundException"
    with pytest.raises(HdfsError) as info:
        with client.read(f"{base}/missing") as reader:
            reader.read()
    assert info.value.exception == "FileNotFoundException"
    client.write(f"{base}/once", data=b"1")
    with pytest.raises(HdfsError) as info:
        client.write(f"{base}/once", data=b"2")
    assert info.value.exception == "FileAlreadyExistsException"


def test_unauthenticated_and_wrong_secret_are_refused(web, base):
    r = api(web, "/", "LISTSTATUS", token=False)
    assert r.status_code == 401
    assert r.json()["RemoteException"]["exception"] == "SecurityException"
    r = api(web, "/", "LISTSTATUS", token=False, **{"user.name": web["user"]})
    assert r.status_code == 401                      # a user name alone proves nothing
    forged = Secret(b"not-the-cluster-secret-at-all").delegation_token(web["user"], 3600)
    r = api(web, "/", "LISTSTATUS", token=False, delegation=forged)
    assert r.status_code == 401 and "invalid delegation token" in r.json()["RemoteException"]["message"]
    expired = web["secret"].delegation_token(web["user"], -10)
    r = api(web, "/", "LISTSTATUS", token=False, delegation=expired)
    assert r.status_code == 401 and "expired" in r.json()["RemoteException"]["message"]
    r = requests.get(f"{web['url']}/webhdfs/v1/?op=LISTSTATUS", timeout=10,
                     headers={"Authorization": "Bearer " + web["secret"]._key.decode()})
    assert r.status_code == 200                      # the secret in a header is enough


def test_wire_shapes(web, base, cluster):
    assert api(web, base, "MKDIRS", "PUT", permission="711").json() == {"boolean": True}
    # CREATE in two steps: the master redirects, the data goes to a chunkserver
    r = api(web, f"{base}/f", "CREATE", "PUT", replication=2, blocksize=1 << 20)
    assert r.status_code == 307
    location = r.headers["Location"]
    assert location.split("/")[2] in {d["address"] for d in cluster.chunkservers()}
    payload = bytes(range(256)) * 10_000                 # 2.56 MB: three 1 MiB chunks
    r = requests.put(location, data=payload, timeout=60)
    assert r.status_code == 201 and r.headers["Location"].startswith("webhdfs://")
    st = api(web, f"{base}/f", "GETFILESTATUS").json()["FileStatus"]
    assert {k: st[k] for k in ("type", "length", "replication", "blockSize", "pathSuffix",
                               "owner")} == {
        "type": "FILE", "length": len(payload), "replication": 2, "blockSize": 1 << 20,
        "pathSuffix": "", "owner": web["user"]}
    assert isinstance(st["modificationTime"], int) and st["permission"] == "644"
    listing = api(web, base, "LISTSTATUS").json()["FileStatuses"]["FileStatus"]
    assert [e["pathSuffix"] for e in listing] == ["f"]
    # OPEN with offset and length, following the redirect
    r = requests.get(f"{web['url']}/webhdfs/v1{base}/f", timeout=30, params={
        "op": "OPEN", "offset": 1_000_000, "length": 1_200_000, "delegation": web["token"]})
    assert r.status_code == 200 and r.content == payload[1_000_000:2_200_000]
    assert r.history[0].status_code == 307
    # APPEND in two steps
    r = api(web, f"{base}/f", "APPEND", "POST")
    assert r.status_code == 307
    assert requests.post(r.headers["Location"], data=b"tail", timeout=30).status_code == 200
    assert cluster.fs.cat(f"{base}/f") == payload + b"tail"
    summary = api(web, base, "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert summary["fileCount"] == 1 and summary["directoryCount"] == 1
    assert summary["length"] == len(payload) + 4 and summary["spaceConsumed"] == 2 * summary["length"]
    assert summary["quota"] == -1 and summary["spaceQuota"] == -1
    assert api(web, f"{base}/f", "SETREPLICATION", "PUT", replication=3).json() == {"boolean": True}
    assert cluster.fs.stat(f"{base}/f")["replication"] == 3
    r = api(web, f"{base}/f", "SETPERMISSION", "PUT", permission="600")
    assert r.status_code == 200 and cluster.fs.stat(f"{base}/f")["mode"] == 0o600
    r = api(web, f"{base}/f", "SETOWNER", "PUT", owner="bob", group="staff")
    assert r.status_code == 200
    assert (cluster.fs.stat(f"{base}/f")["owner"], cluster.fs.stat(f"{base}/f")["group"]) == ("bob", "staff")
    r = requests.get(f"{web['url']}/webhdfs/v1{base}/f", timeout=30, params={
        "op": "GETFILECHECKSUM", "delegation": web["token"]})
    body = r.json()["FileChecksum"]
    assert body["algorithm"] == "MD5-of-16MD5-of-65536CRC32C" and body["length"] == 28
    assert body["bytes"].endswith(cluster.fs.checksum(f"{base}/f")[1])
    assert api(web, f"{base}/f", "RENAME", "PUT", destination=f"{base}/g").json() == {"boolean": True}
    assert api(web, f"{base}/nope", "RENAME", "PUT", destination=f"{base}/h").json() == {"boolean": False}
    assert api(web, f"{base}/g", "DELETE", "DELETE").json() == {"boolean": True}
    assert api(web, f"{base}/g", "DELETE", "DELETE").json() == {"boolean": False}
    assert api(web, "/", "GETHOMEDIRECTORY").json() == {"Path": f"/user/{web['user']}"}
    tok = api(web, "/", "GETDELEGATIONTOKEN").json()["Token"]["urlString"]
    assert api(web, "/", "LISTSTATUS", token=False, delegation=tok).status_code == 200


def test_hadoop_error_shapes(web, base, cluster):
    r = api(web, f"{base}/missing", "GETFILESTATUS")
    assert r.status_code == 404
    assert r.json() == {"RemoteException": {
        "exception": "FileNotFoundException", "javaClassName": "java.io.FileNotFoundException",
        "message": f"File does not exist: {base}/missing"}}
    r = api(web, "/", "NOSUCHOP")
    assert r.status_code == 400
    assert r.json()["RemoteException"]["exception"] == "IllegalArgumentException"
    assert "NOSUCHOP" in r.json()["RemoteException"]["message"]
    r = api(web, "/", "MKDIRS")                      # right op, wrong method
    assert r.status_code == 400
    cluster.fs.mkdir(f"{base}/full")
    cluster.fs.open(f"{base}/full/x", "wb").close()
    r = api(web, f"{base}/full", "DELETE", "DELETE")
    assert r.status_code == 403
    assert r.json()["RemoteException"]["exception"] == "PathIsNotEmptyDirectoryException"
    r = api(web, f"{base}/full", "MKDIRS", "PUT", permission="99x")
    assert r.status_code == 400
    # permissions: a token for another user cannot delete what it may not write
    mallory = web["secret"].delegation_token("mallory", 3600)
    r = api(web, f"{base}/full/x", "DELETE", "DELETE", token=False, delegation=mallory)
    assert r.status_code == 403
    assert r.json()["RemoteException"]["exception"] == "AccessControlException"
    assert cluster.fs.exists(f"{base}/full/x")
    r = api(web, f"{base}/full", "OPEN")
    assert r.status_code == 404 and "is not a file" in r.json()["RemoteException"]["message"]


def test_yard_token_cli_issues_a_working_token(web, base, cluster):
    cluster.fs.mkdir(base)
    cluster.fs.chmod(base, 0o777)
    token = cluster.yard("token", "--user", "carol", check=True).stdout.decode().strip()
    TokenClient(web["url"], token).write(f"{base}/c", data=b"x")
    assert cluster.fs.stat(f"{base}/c")["owner"] == "carol"
    bad = cluster.yard("token", "--lifetime", "-5")
    assert bad.returncode == 1 and b"--lifetime: must be positive" in bad.stderr
    assert b"Traceback" not in bad.stderr
