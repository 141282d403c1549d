"""A coord replica's Raft state on disk, on the shared op log (storage/oplog.py).

Each Ready's hard state, truncation point and new entries are one record,
fsync'd before `save` returns, so the daemon may send the Ready's messages
after it. A snapshot is written as a checkpoint holding the whole persisted
state (snapshot, the entries after it, hard state), which also drops the log
segments it covers. `load` rebuilds exactly what was saved; a record torn by a
crash was never followed by the messages it guarded, so losing it is safe.
"""

from __future__ import annotations

import copy
import os

from stackyard.coord.raft_types import Entry, HardState, Persisted, Ready, Snapshot
from stackyard.storage.oplog import OpLog


class RaftLog:
    def __init__(self, directory: str | os.PathLike):
        self._log = OpLog(directory)
        self.state = Persisted()

    def load(self) -> Persisted:
        image, records = self._log.recover()
        self.state = _from_image(image) if image else Persisted()
        for rec in records:
            self.state.save(_ready_of(rec))
        return copy.deepcopy(self.state)

    def save(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self.state.save(ready)
            self._log.checkpoint(_image(self.state))
            return
        if ready.hard_state is None and ready.truncate_from is None and not ready.entries:
            return
        hs = ready.hard_state
        self._log.append({
            "hs": [hs.term, hs.voted_for, hs.commit] if hs else None,
            "tr": ready.truncate_from,
            "e": [[e.index, e.term, e.data] for e in ready.entries]})
        self.state.save(ready)

    def close(self) -> None:
        self._log.close()


def _ready_of(rec: dict) -> Ready:
    hs = rec["hs"]
    return Ready(hard_state=HardState(*hs) if hs else None, truncate_from=rec["tr"],
                 entries=[Entry(*e) for e in rec["e"]])


def _image(p: Persisted) -> dict:
    hs, s = p.hard_state, p.snapshot
    return {"hs": [hs.term, hs.voted_for, hs.commit], "snap": [s.index, s.term, s.data],
            "e": [[e.index, e.term, e.data] for e in p.entries]}


def _from_image(image: dict) -> Persisted:
    return Persisted(HardState(*image["hs"]), Snapshot(*image["snap"]),
                     [Entry(*e) for e in image["e"]])
