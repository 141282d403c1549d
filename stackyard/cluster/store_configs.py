"""The configs `yard cluster up` writes for the masters and for the table
store's and search's daemons (CLUSTER: the LocalCluster writing them)."""

from __future__ import annotations

from stackyard.cluster.config import (
    MasterConfig,
    SearchServerConfig,
    TableMasterConfig,
    TabletServerConfig,
    ThriftConfig,
    dump,
)
from stackyard.cluster.local import _read_toml, master_names


def table_configs(cluster, master: str, coord_names: list[str]) -> list[dict]:
    s, h = cluster.settings, cluster.home
    coords = ",".join(f"{c['host']}:{c['port']}" for c in
                      (_read_toml(h.conf(n)) for n in coord_names))
    common = dict(master=master, coords=coords, secret_file=str(h.secret_file), host=s.host,
                  session_timeout=s.table_session_timeout)
    out = []
    if not h.conf("tablemaster").exists():
        dump(TableMasterConfig(data_dir=str(h.data("tablemaster")),
                               addr_file=str(h.addr_file("tablemaster")),
                               # never merge into a tablet that would split again
                               merge_bytes=min(s.tablet_merge_bytes,
                                               s.tablet_split_bytes // 2),
                               merge_min_age=s.tablet_merge_min_age,
                               **cluster._tls("tablemaster"), **common).validate(),
             h.conf("tablemaster"))
    out.append({"name": "tablemaster", "role": "tablemaster"})
    for i in range(1, (s.tablet_servers or s.chunkservers) + 1):
        name = f"tabletserver-{i}"
        if not h.conf(name).exists():
            cs = _read_toml(h.conf(f"chunkserver-{(i - 1) % s.chunkservers + 1}"))
            dump(TabletServerConfig(
                data_dir=str(h.data(name)), addr_file=str(h.addr_file(name)),
                chunkserver=f"{cs['host']}:{cs['port']}",
                flush_bytes=s.tablet_flush_bytes, split_bytes=s.tablet_split_bytes,
                **cluster._tls(name), **common).validate(), h.conf(name))
        out.append({"name": name, "role": "tabletserver"})
    if s.thrift:
        if not h.conf("thrift").exists():
            dump(ThriftConfig(data_dir=str(h.data("thrift")), coords=coords,
                              secret_file=str(h.secret_file), host=s.host,
                              port=s.thrift_port, addr_file=str(h.addr_file("thrift"))
                              ).validate(), h.conf("thrift"))
        out.append({"name": "thrift", "role": "thrift"})
    return out

def search_configs(cluster, master: str, coord_names: list[str]) -> list[dict]:
    s, h = cluster.settings, cluster.home
    coords = ",".join(f"{c['host']}:{c['port']}" for c in
                      (_read_toml(h.conf(n)) for n in coord_names))
    out = []
    for i in range(1, (s.search_servers or s.chunkservers) + 1):
        name = f"searchserver-{i}"
        if not h.conf(name).exists():
            dump(SearchServerConfig(
                data_dir=str(h.data(name)), master=master, coords=coords,
                secret_file=str(h.secret_file), host=s.host,
                http_port=s.search_http_port + i - 1 if s.search_http_port else 0,
                addr_file=str(h.addr_file(name)),
                http_addr_file=str(h.addr_file(name)) + ".http",
                session_timeout=s.table_session_timeout,
                refresh_interval=s.search_refresh_interval,
                **cluster._tls(name)).validate(), h.conf(name))
        out.append({"name": name, "role": "searchserver"})
    return out


def master_configs(cluster, ports) -> list[dict]:
    """The masters' configs (written once): a master alone, or a group of
    them with every member in `peers`."""
    s, h = cluster.settings, cluster.home
    names = master_names(s.masters)
    if not h.conf("master").exists():
        master_ports = {n: ports.take() for n in names}
        peers = ",".join(f"{n}={s.host}:{master_ports[n]}" for n in names) \
            if len(names) > 1 else ""
        for n in names:
            dump(MasterConfig(
                data_dir=str(h.data(n)), secret_file=str(h.secret_file), host=s.host,
                port=master_ports[n], addr_file=str(h.addr_file(n)),
                default_replication=s.replication, default_chunk_size=s.chunk_size,
                **cluster._tls(n), node_id=n, peers=peers,
                heartbeat_interval=s.heartbeat_interval, dead_after=s.dead_after,
                lease_timeout=s.lease_timeout, checkpoint_log_bytes=s.checkpoint_log_bytes,
                trash_interval=s.trash_interval,
                trash_checkpoint_interval=s.trash_checkpoint_interval,
            ).validate(), h.conf(n))
    return [{"name": n, "role": "master"} for n in names]
