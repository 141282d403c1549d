"""The master's status page, file browser and /metrics, as a person and
Prometheus fetch them (HTTP Basic auth with the cluster secret)."""

from __future__ import annotations

import base64
import http.client
import re


def fetch(cluster, address: str, path: str) -> tuple[int, str]:
    key = cluster.home.secret_file.read_text().strip()
    auth = base64.b64encode(f"admin:{key}".encode()).decode()
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Basic {auth}"})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_status_page_lists_chunkservers_and_counts(cluster):
    status, page = fetch(cluster, cluster.master, "/status")
    assert status == 200
    assert "Chunkservers: 3 live, 0 dead" in page
    for cs in cluster.chunkservers():
        assert cs["address"] in page
    assert "under-replicated" in page and "missing" in page


def test_file_browser(cluster):
    with cluster.fs.open("/web/dir/file.txt", "wb") as f:
        f.write(b"abc")
    status, page = fetch(cluster, cluster.master, "/browse?path=/web/dir")
    assert status == 200 and "file.txt" in page
    status, page = fetch(cluster, cluster.master, "/browse?path=/web/dir/file.txt")
    assert status == 200 and "Chunks" in page
    handle = cluster.fs.chunk_locations("/web/dir/file.txt")[0].handle
    assert handle in page
    status, page = fetch(cluster, cluster.master, "/browse?path=/web/nothing")
    assert status == 200 and "No such file or directory" in page


def test_metrics_prometheus_text(cluster):
    status, text = fetch(cluster, cluster.master, "/metrics")
    assert status == 200
    values = dict(re.findall(r"^(stackyard_master_\w+) (\S+)$", text, re.M))
    assert values["stackyard_master_chunkservers_live"] == "3"
    assert "stackyard_master_chunks_under_replicated" in values
    status, text = fetch(cluster, cluster.chunkservers()[0]["address"], "/metrics")
    assert status == 200 and "stackyard_chunkserver_chunks" in text
