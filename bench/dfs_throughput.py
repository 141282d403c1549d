"""DFS throughput on a local cluster, beside its peers, in one run.

    python bench/dfs_throughput.py [--size 1g] [--chunk-size 64m]

Writes then reads a SIZE file through `yard` with replication 1 and 3 and
prints MB/s next to, measured in the same run on the same machine:
  - dd of the same size with conv=fsync (the disk's durable write speed);
  - a plain loopback socket copy of the same size (the network path's speed).
  - three dd at once, one file each: what the disk gives three copies
    written side by side, the fairer peer of a replication-3 write.
Targets (issue 2): write with replication 3 >= 1/3 of dd's (three copies
share one disk here); read >= 1/2 of the loopback copy.

The same writes and reads run again on a cluster made with `--tls` (every
connection TLS, certificates from the cluster's own CA), and the cost of
TLS is printed as the ratio of the two (--no-tls skips it).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackyard.cli.common import parse_size  # noqa: E402
from stackyard.cluster.home import Home  # noqa: E402
from stackyard.cluster.local import LocalCluster, Settings  # noqa: E402
from stackyard.connect import connect  # noqa: E402

MB = 1e6
PIECE = 8 << 20


def source_block() -> bytes:
    return os.urandom(PIECE)


def yard_write(fs, path: str, size: int, replication: int, block: bytes) -> float:
    t = time.perf_counter()
    with fs.open(path, "wb", replication=replication) as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    return time.perf_counter() - t


def yard_read(fs, path: str, size: int) -> float:
    buf = bytearray(PIECE)
    t = time.perf_counter()
    got = 0
    with fs.open(path, "rb", buffer_size=PIECE) as f:
        raw = f.raw
        view = memoryview(buf)
        while n := raw.readinto(view):
            got += n
    elapsed = time.perf_counter() - t
    assert got == size, f"read {got} of {size} bytes"
    return elapsed


def dd_fsync(directory: Path, size: int) -> float:
    target = directory / "dd.out"
    mib = size // (1 << 20)
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}",
                    "conv=fsync"], check=True, capture_output=True)
    elapsed = time.perf_counter() - t
    target.unlink()
    return elapsed


def dd_fsync_three(directory: Path, size: int) -> float:
    """Three dd conv=fsync at once, one file each: what this disk gives three
    copies written side by side (the page cache and the disk are shared)."""
    mib = size // (1 << 20)
    t = time.perf_counter()
    procs = [subprocess.Popen(["dd", "if=/dev/zero", f"of={directory / f'dd{i}.out'}", "bs=1M",
                               f"count={mib}", "conv=fsync"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(3)]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - t
    for i in range(3):
        (directory / f"dd{i}.out").unlink()
    return elapsed


def loopback_copy(size: int) -> float:
    """One thread sends SIZE bytes over a 127.0.0.1 TCP socket, another receives."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    block = b"\0" * PIECE

    def send():
        with socket.create_connection(("127.0.0.1", port)) as s:
            left = size
            while left:
                n = min(left, len(block))
                s.sendall(block[:n])
                left -= n

    t = time.perf_counter()
    th = threading.Thread(target=send)
    th.start()
    conn, _ = server.accept()
    buf = bytearray(PIECE)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = conn.recv_into(view)
        if not n:
            break
        got += n
    elapsed = time.perf_counter() - t
    th.join()
    conn.close()
    server.close()
    assert got == size
    return elapsed


def yard_rows(size: int, chunk: int, tls: bool) -> list[tuple[str, float]]:
    """Write and read SIZE at replication 1 and 3 on a fresh cluster."""
    root = Path(tempfile.mkdtemp(prefix="yard-bench-", dir=os.environ.get("BENCH_DIR")))
    cluster = LocalCluster(Home.at(root), Settings(chunkservers=3, coords=0, chunk_size=chunk,
                                                   workers=0, heartbeat_interval=1.0,
                                                   dead_after=30, tls=tls))
    rows = []
    try:
        cluster.up()
        client = connect(home=str(root), embedded=False)
        fs = client.fs
        block = source_block()
        tag = " (TLS)" if tls else ""
        for repl in (1, 3):
            w = yard_write(fs, f"/bench/r{repl}", size, repl, block)
            r = yard_read(fs, f"/bench/r{repl}", size)
            rows.append((f"yard write, replication {repl}{tag}", size / w / MB))
            rows.append((f"yard read, replication {repl}{tag}", size / r / MB))
            fs.rm(f"/bench/r{repl}")
        client.close()
    finally:
        cluster.down()
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1g")
    ap.add_argument("--chunk-size", default="64m")
    ap.add_argument("--no-tls", action="store_true", help="skip the TLS cluster")
    args = ap.parse_args()
    size, chunk = parse_size(args.size), parse_size(args.chunk_size)
    rows = yard_rows(size, chunk, tls=False)
    tls_rows = [] if args.no_tls else yard_rows(size, chunk, tls=True)
    scratch = Path(tempfile.mkdtemp(prefix="yard-bench-dd-", dir=os.environ.get("BENCH_DIR")))
    try:
        dd = size / dd_fsync(scratch, size) / MB
        dd3 = size / dd_fsync_three(scratch, size) / MB
    finally:
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)
    loop = size / loopback_copy(size) / MB
    rows += tls_rows
    rows += [("dd conv=fsync", dd), ("3 x dd conv=fsync at once (per copy)", dd3),
             ("loopback socket copy", loop)]
    print(f"\nDFS throughput, {size / (1 << 20):.0f} MiB, chunk {chunk >> 20} MiB, "
          f"3 chunkservers on 127.0.0.1, {os.cpu_count()} cores")
    for name, mbps in rows:
        print(f"  {name:<38} {mbps:8.1f} MB/s")
    got = dict(rows)
    w3, r3, r1 = (got["yard write, replication 3"], got["yard read, replication 3"],
                  got["yard read, replication 1"])
    print(f"\n  write r3 / dd fsync     = {w3 / dd:.2f}  (target >= 0.33)")
    print(f"  write r3 / 3 x dd       = {w3 / dd3:.2f}  (three copies side by side on this disk)")
    print(f"  read r3 / loopback copy = {r3 / loop:.2f}  (target >= 0.50)")
    print(f"  read r1 / loopback copy = {r1 / loop:.2f}")
    for name, _ in rows[:4] if tls_rows else ():
        print(f"  {name + ' with TLS / without':<46} = {got[name + ' (TLS)'] / got[name]:.2f}")


if __name__ == "__main__":
    main()
