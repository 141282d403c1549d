from __future__ import annotations

import base64

import pytest

from stackyard import errors
from stackyard.cluster import config
from stackyard.net.auth import Secret

S = Secret(b"k" * 32)


def test_signature_checks():
    h = S.sign("POST", "/rpc/x?a=1", now=1000.0)
    assert S.check_header("POST", "/rpc/x?a=1", h, now=1001.0) is None
    assert S.check_header("POST", "/rpc/x?a=2", h, now=1001.0) == "wrong cluster secret"
    assert S.check_header("GET", "/rpc/x?a=1", h, now=1001.0) == "wrong cluster secret"
    assert "expired" in S.check_header("POST", "/rpc/x?a=1", h, now=5000.0)
    assert "missing" in S.check_header("POST", "/", None)
    assert Secret(b"o" * 32).check_header("POST", "/rpc/x?a=1", h, now=1000.0) is not None
    basic = "Basic " + base64.b64encode(b"anyone:" + b"k" * 32).decode()
    assert S.check_header("GET", "/status", basic) is None
    assert S.check_header("GET", "/status", "Bearer " + "k" * 32) is None
    assert S.check_header("GET", "/status", "Bearer nope") == "wrong cluster secret"


def test_chunk_tokens():
    t = S.chunk_token("00000000000000aa", "r", 60, now=100)
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
