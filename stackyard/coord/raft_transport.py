"""Raft messages between replicas: a batch POSTed to a peer's /raft/step,
signed as the sender, whose answer (what the peer has to say back) rides in
the reply. Shared by the coordination cell and the DFS masters."""

from __future__ import annotations

import msgpack

from stackyard.net.aio import AioClient
from stackyard.net.auth import body_digest
from stackyard.net.server import MSGPACK


async def send_batch(client: AioClient, address: str, sender: str, batch: list) -> list:
    """BATCH (wire messages) to the replica at ADDRESS; the peer's answers."""
    data = msgpack.packb(batch)
    url, headers = client.url_and_headers(address, "POST", "/raft/step", None,
                                          body_digest(data), sender=sender)
    headers["Content-Type"] = MSGPACK
    async with client.session.post(url, data=data, headers=headers) as resp:
        body = await resp.read()
    return msgpack.unpackb(body) if resp.status == 200 and body else []
