"""Our own tools' client of the search servers' REST API (the CLI, the
benchmark): JSON over HTTP with the cluster secret as a bearer token,
trying each server in turn, so one dead server is not an outage."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

from stackyard import errors


class SearchError(Exception):
    def __init__(self, status: int, kind: str, reason: str):
        super().__init__(f"{kind}: {reason}")
        self.status, self.kind, self.reason = status, kind, reason


class SearchClient:
    def __init__(self, addresses: list[str], secret: str, timeout: float = 120.0):
        if not addresses:
            raise errors.ClusterUnavailable("no search server runs in this cluster")
        self.addresses, self.secret, self.timeout = list(addresses), secret, timeout
        self._local = threading.local()      # a kept-alive connection per thread and server

    @classmethod
    def for_home(cls, home) -> SearchClient:
        state = home.read_state() or {"daemons": []}
        addrs = []
        for d in state["daemons"]:
            if d["role"] == "searchserver":
                f = Path(str(home.addr_file(d["name"])) + ".http")
                if f.exists():
                    addrs.append(f.read_text().strip())
        return cls(addrs, home.secret_file.read_text().strip())

    def _conn(self, address: str) -> http.client.HTTPConnection:
        conns = self._local.__dict__.setdefault("conns", {})
        if address not in conns:
            host, _, port = address.rpartition(":")
            conns[address] = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        return conns[address]

    def request(self, method: str, path: str, body=None, ndjson: bool = False):
        data = None
        headers = {"Authorization": f"Bearer {self.secret}"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/x-ndjson" if ndjson else "application/json"
        last = None
        for address in self.addresses:
            for _attempt in range(2):        # a kept-alive connection the server closed
                conn = self._conn(address)
                try:
                    conn.request(method, path, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    self._local.conns.pop(address, None)
                    last = exc
                    continue
                if resp.status >= 400:
                    try:
                        err = json.loads(raw)["error"]
                        kind, reason = err.get("type", "error"), err.get("reason", "")
                    except (ValueError, KeyError, TypeError):
                        kind, reason = "http_error", raw[:200].decode(errors="replace")
                    raise SearchError(resp.status, kind, reason)
                return json.loads(raw) if raw else {}
        raise errors.ClusterUnavailable(f"no search server answered ({last})")
