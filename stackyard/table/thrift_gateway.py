"""The `thrift` daemon: HBase's Thrift 1 gateway (binary protocol, buffered
transport, port 9090 by default), so `happybase.Connection(host, port)`
works unchanged.

happybase sends no credentials, and HBase's own Thrift server without
Kerberos checks none. This gateway binds to 127.0.0.1 and accepts a
connection only from a process of the cluster's owner, or of a local user
mapped in `users` (uid=name, ...), and acts as that user: the kernel's socket
table (/proc/net/tcp) says which uid owns the peer's end. Listening on
another interface takes `allow_remote = true`; a remote peer has no uid to
check, so it acts as `remote_user` and anyone who can reach the port can
do what that user may (wrap it in TLS with tls_cert/tls_key where the
client speaks TLS, and firewall it).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import pwd
import socket
import ssl
import struct
import threading

from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TBufferedTransport, TSocket, TTransportException

from stackyard.net.auth import Secret
from stackyard.table.client import TableClient
from stackyard.table.thrift_handler import HB, Handler

log = logging.getLogger("stackyard.thrift")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _hex_addr(host: str, port: int) -> tuple[str, str]:
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        h = struct.pack("<I", int(ip)).hex().upper()
        return f"{h}:{port:04X}", "/proc/net/tcp"
    packed = ip.packed
    words = [packed[i:i + 4][::-1].hex().upper() for i in range(0, 16, 4)]
    return f"{''.join(words)}:{port:04X}", "/proc/net/tcp6"


def peer_uid(conn: socket.socket) -> int | None:
    """The uid owning the other end of a loopback connection, from the kernel."""
    peer = conn.getpeername()[:2]
    mine = conn.getsockname()[:2]
    want_local, table = _hex_addr(*peer)
    want_remote, _ = _hex_addr(*mine)
    try:
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want_local and parts[2] == want_remote:
                    return int(parts[7])
    except OSError:
        return None
    return None


class ThriftDaemon:
    def __init__(self, cfg):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.owner = os.getuid()
        self.users = _user_map(cfg.users)
        self.clients: dict[str, TableClient] = {}
        self.lock = threading.Lock()
        self.scanners: dict = {}
        self.connections = 0
        self.refused = 0
        self.stop = threading.Event()

    def client_for(self, user: str) -> TableClient:
        with self.lock:
            c = self.clients.get(user)
            if c is None:
                c = self.clients[user] = TableClient(self.cfg.coords.split(","), self.secret,
                                                     user=user)
            return c

    def who(self, conn: socket.socket) -> str | None:
        host = conn.getpeername()[0]
        if not ipaddress.ip_address(host).is_loopback:
            return self.cfg.remote_user or None
        uid = peer_uid(conn)
        if uid is None:
            return None
        if uid == self.owner:
            return pwd.getpwuid(uid).pw_name
        return self.users.get(uid)

    async def run(self) -> None:
        import asyncio
        import signal
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        await asyncio.to_thread(self.serve)

    def serve(self) -> None:
        host = self.cfg.host
        if host not in LOOPBACK and not self.cfg.allow_remote:
            raise ValueError(f"host {host}: the Thrift gateway checks no credentials; listening "
                             "beyond loopback needs allow_remote = true (see the README)")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, self.cfg.port))
        sock.listen(128)
        tls = None
        if self.cfg.tls_cert:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        address = f"{host}:{sock.getsockname()[1]}"
        if self.cfg.addr_file:
            tmp = self.cfg.addr_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(address)
            os.replace(tmp, self.cfg.addr_file)
        log.info("HBase Thrift gateway serving on %s", address)
        sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                log.warning("accept: %s", exc)
                continue
            threading.Thread(target=self.handle, args=(conn, tls), daemon=True,
                             name="thrift-conn").start()
        sock.close()

    def handle(self, conn: socket.socket, tls) -> None:
        conn.settimeout(None)
        user = self.who(conn)
        if user is None:
            self.refused += 1
            log.warning("refused a Thrift connection from %s: its process belongs to no user "
                        "this gateway serves", conn.getpeername())
            conn.close()
            return
        if tls is not None:
            try:
                conn = tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS handshake failed: %s", exc)
                conn.close()
                return
        self.connections += 1
        transport = TBufferedTransport(TSocket(sock=conn))
        proto = TBinaryProtocolFactory().get_protocol(transport)
        processor = TProcessor(HB.Hbase, Handler(self.client_for(user), self.scanners))
        try:
            while True:
                processor.process(proto, proto)
        except TTransportException:
            pass
        except Exception as exc:  # noqa: BLE001 - a malformed stream ends its connection only
            log.info("Thrift connection ended: %s", exc)
        finally:
            transport.close()


def _user_map(spec: str) -> dict[int, str]:
    out = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        uid, sep, name = item.partition("=")
        if not sep or not uid.isdigit() or not name:
            raise ValueError(f"users: expected uid=name, got {item!r}")
        out[int(uid)] = name
    return out
