"""The coordination cell beside ZooKeeper, in one run on this machine.

    python bench/coord.py [--seconds 3]

A 3-replica Stackyard cell and a 3-server ZooKeeper 3.8 ensemble (Debian's
`zookeeper` package: apt-get install zookeeper; driven by kazoo: pip install
kazoo), both on 127.0.0.1. For each: writes/s and reads/s with 1 and 16
client threads, lock acquire + release per second (each system's own lock
recipe), and leader failover time (kill -9 of the leader until a write
succeeds again), with the same 10 s session timeout.
Targets (issue 3): failover no slower than ZooKeeper's; writes/s at least
half of ZooKeeper's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackyard.cluster.home import Home  # noqa: E402
from stackyard.cluster.local import LocalCluster, Settings  # noqa: E402
from stackyard.coord.client import CoordClient  # noqa: E402
from stackyard.coord.recipes import Lock  # noqa: E402
from stackyard.net.auth import Secret  # noqa: E402

SESSION = 10.0
ZK_JAR = "/usr/share/java/zookeeper.jar"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a ZooKeeper ensemble ------------------------------------------------------------

class ZooKeeper:
    def __init__(self, root: Path):
        self.root = root
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(3)]
        self.procs: dict[int, subprocess.Popen] = {}
        servers = "\n".join(f"server.{i + 1}=127.0.0.1:{p[1]}:{p[2]}"
                            for i, p in enumerate(self.ports))
        for i, (client, _, _) in enumerate(self.ports):
            d = root / f"zk{i + 1}"
            d.mkdir(parents=True)
            (d / "myid").write_text(f"{i + 1}\n")
            (d / "zoo.cfg").write_text(
                f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={d}\n"
                f"clientPort={client}\nclientPortAddress=127.0.0.1\n"
                f"4lw.commands.whitelist=srvr,stat\nadmin.enableServer=false\n{servers}\n")

    def start(self, i: int) -> None:
        d = self.root / f"zk{i + 1}"
        log = open(d / "server.log", "ab")
        self.procs[i] = subprocess.Popen(
            ["java", "-Xmx256m", "-Dzookeeper.log.dir=" + str(d), "-cp",
             f"/etc/zookeeper/conf:{ZK_JAR}", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             str(d / "zoo.cfg")], stdout=log, stderr=subprocess.STDOUT)

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{p[0]}" for p in self.ports)

    def mode(self, i: int) -> str:
        try:
            with socket.create_connection(("127.0.0.1", self.ports[i][0]), timeout=1) as s:
                s.sendall(b"srvr")
                out = s.recv(4096).decode(errors="replace")
            return next((line.split(":")[1].strip() for line in out.splitlines()
                         if line.startswith("Mode")), "?")
        except OSError:
            return "down"

    def leader(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(3):
                if self.mode(i) == "leader":
                    return i
            time.sleep(0.1)
        raise TimeoutError("ZooKeeper elected no leader")

    def kill(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


# -- the measurements -------------------------------------------------------------------

def rate(clients: list, op, seconds: float) -> float:
    """Operations per second with one thread per client, for SECONDS."""
    counts = [0] * len(clients)
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < stop:
            op(clients[i], i)
            counts[i] += 1
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(counts) / (time.monotonic() - t)


def throughput(one, many: list, seconds: float) -> dict:
    """set / get rates on /bench/n*, one client, then one thread per client of MANY
    (kazoo's and ours share the calls used here: set(path, data), get(path))."""
    data = b"x" * 100
    return {
        "writes/s, 1 client": rate([one], lambda c, i: c.set("/bench/n0", data), seconds),
        "writes/s, 16 clients": rate(many, lambda c, i: c.set(f"/bench/n{i}", data), seconds),
        "reads/s, 1 client": rate([one], lambda c, i: c.get("/bench/n0"), seconds),
        "reads/s, 16 clients": rate(many, lambda c, i: c.get(f"/bench/n{i}"), seconds),
    }


def failover(write, kill_leader, restart, rounds: int = 3) -> float:
    """Median over ROUNDS of: kill -9 the leader, time until a write succeeds;
    then restart the killed server and let the cell settle."""
    times = []
    for _ in range(rounds):
        victim = kill_leader()
        t = time.monotonic()
        while True:
            try:
                write()
                times.append(time.monotonic() - t)
                break
            except Exception:
                time.sleep(0.01)
        restart(victim)
        time.sleep(2.0)
    return sorted(times)[len(times) // 2]


def bench_yard(seconds: float, root: Path) -> dict:
    cluster = LocalCluster(Home.at(root), Settings(chunkservers=1, replication=1, coords=3,
                                                   workers=0, heartbeat_interval=1.0))
    cluster.up()
    secret = Secret.load(cluster.home.secret_file)
    make = lambda: CoordClient(cluster.coord_addresses(), secret, session_timeout=SESSION)  # noqa: E731
    out = {}
    try:
        one = make()
        one.create("/bench", b"")
        for i in range(16):
            one.create(f"/bench/n{i}", b"")
        many = [make() for _ in range(16)]
        out.update(throughput(one, many, seconds))

        def lock_cycle(c, i):
            with Lock(c, "/bench-lock"):
                pass
        out["lock acquire+release/s"] = rate([one], lock_cycle, seconds)
        one.start_session()

        def kill_leader():
            leader = cluster.wait_coord_leader()
            name = next(d["name"] for d in cluster.home.read_state()["daemons"]
                        if d["address"] == leader)
            cluster.kill(name)
            return name
        out["failover s (median of 3)"] = failover(
            lambda: one.set("/bench/n0", b"after"), kill_leader,
            lambda name: cluster.start(dict(cluster.daemon(name))))
        for c in [one, *many]:
            c.close()
    finally:
        cluster.down()
    return out


def bench_zookeeper(seconds: float, root: Path) -> dict:
    from kazoo.client import KazooClient
    zk = ZooKeeper(root)
    out = {}
    clients = []
    try:
        for i in range(3):
            zk.start(i)
        zk.leader()

        def make():
            c = KazooClient(hosts=zk.hosts, timeout=SESSION)
            c.start(timeout=30)
            clients.append(c)
            return c
        one = make()
        one.ensure_path("/bench")
        for i in range(16):
            one.ensure_path(f"/bench/n{i}")
        many = [make() for _ in range(16)]
        out.update(throughput(one, many, seconds))
        lock = one.Lock("/bench-lock", "bench")

        def lock_cycle(c, i):
            with lock:
                pass
        out["lock acquire+release/s"] = rate([one], lock_cycle, seconds)
        def kill_leader():
            victim = zk.leader()
            zk.kill(victim)
            return victim

        def restart(i):
            zk.start(i)
            zk.leader()
        out["failover s (median of 3)"] = failover(
            lambda: one.set("/bench/n0", b"after"), kill_leader, restart)
    finally:
        for c in clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        zk.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per throughput measurement")
    ap.add_argument("--yard-only", action="store_true",
                    help="measure the Stackyard cell alone (to compare two versions of it)")
    args = ap.parse_args()
    if args.yard_only:
        root = Path(tempfile.mkdtemp(prefix="yard-coord-bench-"))
        try:
            yard = bench_yard(args.seconds, root / "yard")
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"\nCoordination, a 3-replica Stackyard cell on 127.0.0.1, {os.cpu_count()} cores")
        for key, value in yard.items():
            print(f"  {key:<26} {value:>10.1f}")
        return
    if not Path(ZK_JAR).exists():
        sys.exit("bench/coord.py: ZooKeeper is not installed (apt-get install zookeeper)")
    root = Path(tempfile.mkdtemp(prefix="yard-coord-bench-"))
    try:
        yard = bench_yard(args.seconds, root / "yard")
        zk = bench_zookeeper(args.seconds, root / "zk")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nCoordination, 3 replicas each on 127.0.0.1, {os.cpu_count()} cores, "
          f"session timeout {SESSION:.0f} s")
    print(f"  {'':<26} {'stackyard':>10} {'zookeeper':>10} {'ratio':>7}")
    for key in yard:
        ratio = yard[key] / zk[key] if zk[key] else float("nan")
        print(f"  {key:<26} {yard[key]:>10.1f} {zk[key]:>10.1f} {ratio:>7.2f}")
    print("\n  targets: failover ratio <= 1.0; 'writes/s' ratios >= 0.5")


if __name__ == "__main__":
    main()
