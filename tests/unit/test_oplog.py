from __future__ import annotations

import pytest

from stackyard.storage.oplog import LogCorruption, OpLog


def test_records_survive_reopen(tmp_path):
    log = OpLog(tmp_path)
    assert log.recover() == (None, [])
    for i in range(5):
        assert log.append({"op": "x", "i": i}) == i + 1
    log.close()
    image, recs = OpLog(tmp_path).recover()
    assert image is None and [r["i"] for r in recs] == list(range(5))


def test_torn_tail_is_cut_off_and_appends_continue(tmp_path):
    log = OpLog(tmp_path)
    log.recover()
    log.append({"i": 1})
    log.append({"i": 2})
    log.close()
    seg = next(tmp_path.glob("edits.*"))
    good = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")       # a record torn by a crash
    log = OpLog(tmp_path)
    _, recs = log.recover()
    assert [r["i"] for r in recs] == [1, 2]
    assert seg.stat().st_size == good
    log.append({"i": 3})
    log.close()
    assert [r["i"] for r in OpLog(tmp_path).recover()[1]] == [1, 2, 3]


def test_flipped_byte_in_the_last_record_drops_only_it(tmp_path):
    log = OpLog(tmp_path)
    log.recover()
    log.append({"i": 1})
    log.append({"i": 2})
    log.close()
    seg = next(tmp_path.glob("edits.*"))
    raw = bytearray(seg.read_bytes())
    raw[-2] ^= 1
    seg.write_bytes(bytes(raw))
    assert [r["i"] for r in OpLog(tmp_path).recover()[1]] == [1]


def test_corruption_in_an_older_segment_refuses_to_guess(tmp_path):
    log = OpLog(tmp_path)
    log.recover()
    log.append({"i": 1})
    log.close()
    first = next(tmp_path.glob("edits.*"))
    (tmp_path / "edits.0000000000000002").write_bytes(b"")
    raw = bytearray(first.read_bytes())
    raw[-1] ^= 1
    first.write_bytes(bytes(raw))
    with pytest.raises(LogCorruption):
        OpLog(tmp_path).recover()


def test_checkpoint_truncates_log_and_recovery_replays_the_rest(tmp_path):
    log = OpLog(tmp_path)
    log.recover()
    for i in range(3):
        log.append({"i": i})
    log.checkpoint({"state": "after 3"})
    log.append({"i": 3})
    log.close()
    assert len(list(tmp_path.glob("edits.*"))) == 1
    image, recs = OpLog(tmp_path).recover()
    assert image == {"state": "after 3"} and [r["tx"] for r in recs] == [4]
