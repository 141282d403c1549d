"""`yard daemon ROLE --config FILE`: run one daemon in the foreground."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from stackyard.cluster import config


def run(role: str, config_path: str) -> None:
    # what a daemon writes (chunks, op log, Raft log, job folders, broadcast
    # files) is for the cluster's own user only, whatever the caller's umask
    os.umask(0o077)
    cfg = config.load(role, config_path)
    data = Path(cfg.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s {role} %(name)s: %(message)s")
    if role == "master":
        from stackyard.dfs.master_daemon import MasterDaemon
        service = MasterDaemon(cfg)
    elif role == "coord":
        from stackyard.coord.server import CoordServer
        service = CoordServer(cfg)
    elif role == "scheduler":
        from stackyard.compute.scheduler import SchedulerDaemon
        service = SchedulerDaemon(cfg)
    elif role == "connect":
        from stackyard.sparkconnect.server import ConnectDaemon
        service = ConnectDaemon(cfg)
    elif role == "tablemaster":
        from stackyard.table.tablemaster import TableMasterDaemon
        service = TableMasterDaemon(cfg)
    elif role == "tabletserver":
        from stackyard.table.tabletserver import TabletServerDaemon
        service = TabletServerDaemon(cfg)
    elif role == "thrift":
        from stackyard.table.thrift_gateway import ThriftDaemon
        service = ThriftDaemon(cfg)
    elif role == "searchserver":
        from stackyard.search.searchserver import SearchServerDaemon
        service = SearchServerDaemon(cfg)
    elif role == "worker":
        from stackyard.compute.worker import WorkerDaemon
        service = WorkerDaemon(cfg)
    else:
        from stackyard.dfs.chunkserver import Chunkserver
        service = Chunkserver(cfg)
    asyncio.run(service.run())
