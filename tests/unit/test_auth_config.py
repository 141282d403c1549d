from __future__ import annotations

import base64

import pytest

from stackyard import errors
from stackyard.cluster import config
from stackyard.net.auth import Secret, body_digest
from stackyard.net.replay import NonceCache, ReplayWindowFull

S = Secret(b"k" * 32)


def test_signature_checks():
    body = body_digest(b"payload")
    h = S.sign("POST", "/rpc/x?a=1", "127.0.0.1:9", body, now=1000.0)
    signed, reason = S.check_header("POST", "/rpc/x?a=1", h, now=1001.0)
    assert reason is None and (signed.target, signed.body, signed.sender) == (
        "127.0.0.1:9", body, "-")
    assert S.check_header("POST", "/rpc/x?a=2", h, now=1001.0)[1] == "wrong cluster secret"
    assert S.check_header("GET", "/rpc/x?a=1", h, now=1001.0)[1] == "wrong cluster secret"
    for i, field in enumerate(["1000.500", "n" * 24, "127.0.0.1:10", "0" * 64, "coord-1"]):
        forged = h.split(" ")
        forged[1 + i] = field               # any field changed: the MAC no longer fits
        assert S.check_header("POST", "/rpc/x?a=1", " ".join(forged), now=1001.0)[1] in (
            "wrong cluster secret",), field
    assert "expired" in S.check_header("POST", "/rpc/x?a=1", h, now=5000.0)[1]
    assert "missing" in S.check_header("POST", "/", None)[1]
    assert Secret(b"o" * 32).check_header("POST", "/rpc/x?a=1", h, now=1000.0)[1] is not None
    basic = "Basic " + base64.b64encode(b"anyone:" + b"k" * 32).decode()
    assert S.check_header("GET", "/status", basic) == (None, None)
    assert S.check_header("GET", "/status", "Bearer " + "k" * 32) == (None, None)
    assert S.check_header("GET", "/status", "Bearer nope")[1] == "wrong cluster secret"
    assert h.split(" ")[2] != S.sign("POST", "/rpc/x?a=1", "127.0.0.1:9").split(" ")[2]


@pytest.mark.parametrize("ts", ["nan", "inf", "-inf", "NaN", "1e400"])
def test_a_timestamp_that_is_not_a_finite_number_is_refused(ts):
    h = S.sign("POST", "/rpc/x", "127.0.0.1:9", now=1000.0).split(" ")
    h[1] = ts
    message = "\n".join(["yard-request-v2", "POST", "/rpc/x", *h[1:6]])
    h[6] = S.mac(message)                   # even correctly signed by a secret holder
    assert "finite" in S.check_header("POST", "/rpc/x", " ".join(h), now=1000.0)[1]


def test_the_nonce_cache_refuses_a_second_use_and_forgets_old_ones():
    cache = NonceCache(window=600)
    assert cache.first_use("a", 1000.0, 1000.0)
    assert not cache.first_use("a", 1000.0, 1100.0)
    assert cache.first_use("b", 1000.0, 1100.0)
    cache.first_use("c", 2000.0, 2000.0)            # much later: the old bucket goes
    assert cache.size == 1
    small = NonceCache(window=600, limit=2)
    small.first_use("x", 1.0, 1.0)
    small.first_use("y", 1.0, 1.0)
    with pytest.raises(ReplayWindowFull):
        small.first_use("z", 1.0, 1.0)


def test_chunk_tokens():
    w = S.chunk_token("00000000000000aa", "w", 60, ["127.0.0.1:1", "127.0.0.1:2"], now=100)
    assert S.check_chunk_token(w, "00000000000000aa", "w", now=120) is None
    assert Secret.token_pipeline(w) == ["127.0.0.1:1", "127.0.0.1:2"]
    t = S.chunk_token("00000000000000aa", "r", 60, now=100)
    assert Secret.token_pipeline(t) == []
    assert S.check_chunk_token(t, "00000000000000aa", "r", now=120) is None
    assert "does not grant" in S.check_chunk_token(t, "00000000000000aa", "w", now=120)
    assert "does not grant" in S.check_chunk_token(t, "00000000000000bb", "r", now=120)
    assert "expired" in S.check_chunk_token(t, "00000000000000aa", "r", now=200)
    assert "invalid" in Secret(b"z" * 32).check_chunk_token(t, "00000000000000aa", "r", now=120)


def test_secret_repr_hides_key_and_file_mode(tmp_path):
    assert "k" not in repr(S)
    S.save(tmp_path / "s")
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o600
    assert Secret.load(tmp_path / "s").matches(b"k" * 32)
    with pytest.raises(FileNotFoundError):
        Secret.load(tmp_path / "nope")


def test_config_validation_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="dead_after"):
        config.MasterConfig("d", "s", dead_after=1, heartbeat_interval=3).validate()
    with pytest.raises(ValueError, match="default_chunk_size"):
        config.MasterConfig("d", "s", default_chunk_size=1000).validate()
    with pytest.raises(ValueError, match="rack"):
        config.ChunkserverConfig("d", "h:1", "s", rack="norack").validate()
    p = tmp_path / "c.toml"
    p.write_text('data_dir = "d"\nsecret_file = "s"\nbogus = 1\n')
    with pytest.raises(ValueError, match="unknown setting.*bogus"):
        config.load("master", p)
    p.write_text('data_dir = "d"\n')
    with pytest.raises(ValueError, match="missing setting.*secret_file"):
        config.load("master", p)
    p.write_text('data_dir = "d"\nsecret_file = "s"\nport = "x"\n')
    with pytest.raises(ValueError, match="port"):
        config.load("master", p)
    cfg = config.MasterConfig("d", "s", heartbeat_interval=1)
    config.dump(cfg, p)
    assert config.load("master", p) == cfg


def test_wire_errors_round_trip():
    for exc in (FileNotFoundError(2, "No such file or directory", "/x"),
                errors.LeaseHeldError(16, "held", "/y"), ValueError("bad arg"),
                errors.AuthError("no")):
        back = errors.from_wire(errors.to_wire(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
    assert errors.describe(FileNotFoundError(2, "No such file or directory", "/x")) == \
        "`/x': No such file or directory"
