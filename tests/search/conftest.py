"""A search mini cluster: 3 chunkservers, one coordination replica and
three search servers with a 3 s session, 1 MiB chunks; and the official
elasticsearch client pointed at one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

SEARCH = dict(coords=1, search=True, search_servers=3, search_http_port=0,
              table_session_timeout=3.0)


def http_of(c, n: int = 1) -> str:
    return Path(str(c.home.addr_file(f"searchserver-{n}")) + ".http").read_text().strip()


def es_client(c, n: int = 1, **kw):
    from elasticsearch import Elasticsearch
    return Elasticsearch(f"http://{http_of(c, n)}", bearer_auth=c.home.secret_file.read_text()
                         .strip(), request_timeout=60, **kw)


def search_servers(c) -> list[dict]:
    return [d for d in c.home.read_state()["daemons"] if d["role"] == "searchserver"]


@pytest.fixture(scope="module")
def scluster(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **SEARCH)
    yield c
    c.close()


@pytest.fixture(scope="module")
def es(scluster):
    client = es_client(scluster)
    yield client
    client.close()
