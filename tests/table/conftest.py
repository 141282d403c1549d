"""A table-store mini cluster (one for the session's API, shell and gateway tests): 3 chunkservers, one coordination replica, a
table master and 2 tablet servers with a 3 s session, 1 MiB chunks."""

from __future__ import annotations

import pytest

TABLES = dict(coords=1, tables=True, tablet_servers=2, table_session_timeout=3.0,
              tablet_flush_bytes=256 * 1024, tablet_split_bytes=1 << 30, thrift_port=0)


@pytest.fixture(scope="session")
def tcluster(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **TABLES)
    yield c
    c.close()


@pytest.fixture
def fresh_tables(make_cluster):
    """A cluster of its own, for tests that kill daemons."""
    return make_cluster(**TABLES)


def servers_of(c) -> list[dict]:
    return [d for d in c.home.read_state()["daemons"] if d["role"] == "tabletserver"]
