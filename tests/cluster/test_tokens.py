"""Delegation tokens as HDFS bounds them: a maximum lifetime from issue that
no renewal or re-issue passes, renewal and cancellation over WebHDFS that
survive a master restart, and chunkservers that take only the master's
short redirect tokens."""

from __future__ import annotations

import getpass
import time

import pytest
import requests

from stackyard.net.auth import REDIRECT_TOKEN, TOKEN_MAX_LIFETIME, Secret


def api(c, op, method="GET", path="/", **params):
    return requests.request(method, f"http://{c.master}/webhdfs/v1{path}",
                            params={"op": op, **params}, allow_redirects=False, timeout=30)


def test_no_token_outlives_its_maximum_lifetime(cluster):
    secret = Secret.load(cluster.home.secret_file)
    week_ago = time.time() - TOKEN_MAX_LIFETIME + 60
    old = secret.delegation_token(getpass.getuser(), 3600, now=week_ago)
    assert api(cluster, "LISTSTATUS", delegation=old).status_code == 401     # expired
    nearly = secret.delegation_token(getpass.getuser(), 24 * 3600, now=time.time(),
                                     issued=int(week_ago))
    tok, _ = secret.parse_delegation_token(nearly)
    assert tok.expiry == tok.max_date <= time.time() + 60   # capped at issue + 7 days
    again = api(cluster, "GETDELEGATIONTOKEN", delegation=nearly).json()["Token"]["urlString"]
    assert secret.parse_delegation_token(again)[0].max_date == tok.max_date   # re-issue: same
    renewed = api(cluster, "RENEWDELEGATIONTOKEN", "PUT", delegation=nearly, token=nearly)
    assert renewed.json()["long"] <= tok.max_date * 1000                   # renew: same cap
    r = cluster.yard("token", "--lifetime", str(8 * 24 * 3600))
    assert r.returncode == 1 and b"at most 604800" in r.stderr


def test_renew_and_cancel_hold_across_a_master_restart(make_cluster):
    c = make_cluster(chunkservers=1, replication=1)
    secret = Secret.load(c.home.secret_file)
    short = secret.delegation_token(getpass.getuser(), 2)
    renewed = api(c, "RENEWDELEGATIONTOKEN", "PUT", delegation=short, token=short).json()
    assert renewed["long"] > (time.time() + 3600) * 1000
    doomed = secret.delegation_token(getpass.getuser(), 3600)
    assert api(c, "LISTSTATUS", delegation=doomed).status_code == 200
    assert api(c, "CANCELDELEGATIONTOKEN", "PUT", delegation=doomed,
               token=doomed).status_code == 200
    c.restart("master")
    c.cluster.wait_live(1, timeout=60)
    time.sleep(2.5)                                     # past the short token's own expiry
    assert api(c, "LISTSTATUS", delegation=short).status_code == 200       # renewed
    r = api(c, "LISTSTATUS", delegation=doomed)
    assert r.status_code == 401 and "cancelled" in r.text
    r = api(c, "RENEWDELEGATIONTOKEN", "PUT", delegation=short, token=doomed)
    assert r.status_code == 401 and "cancelled" in r.text


def test_chunkservers_take_only_the_masters_redirect_tokens(cluster):
    secret = Secret.load(cluster.home.secret_file)
    user_token = secret.delegation_token(getpass.getuser(), 3600)
    with cluster.fs.open("/tok.txt", "wb") as f:
        f.write(b"hello")
    r = api(cluster, "OPEN", path="/tok.txt", delegation=user_token)
    assert r.status_code == 307
    location = r.headers["Location"]
    assert requests.get(location, timeout=30).content == b"hello"
    from urllib.parse import parse_qs, urlparse
    redirect = parse_qs(urlparse(location).query)["delegation"][0]
    assert secret.parse_delegation_token(redirect)[0].kind == REDIRECT_TOKEN
    direct = location.replace(redirect, user_token)
    r = requests.get(direct, timeout=30)
    assert r.status_code == 401 and "for the master" in r.text


@pytest.mark.parametrize("bad", ["", "x.y", "not-a-token"])
def test_renewing_a_malformed_token_says_so(cluster, bad):
    secret = Secret.load(cluster.home.secret_file)
    mine = secret.delegation_token(getpass.getuser(), 3600)
    r = api(cluster, "RENEWDELEGATIONTOKEN", "PUT", delegation=mine, token=bad)
    assert r.status_code == 400 and "token" in r.text


def test_a_redirect_token_extends_nothing_and_opens_nothing_at_the_master(cluster):
    """The master's short redirect tokens keep their parent's issue date and
    work only at the chunkserver they name."""
    secret = Secret.load(cluster.home.secret_file)
    old = secret.delegation_token(getpass.getuser(), 3600,         # good for 2 more minutes
                                  issued=int(time.time() - TOKEN_MAX_LIFETIME + 120))
    r = api(cluster, "CREATE", "PUT", path="/tok-nonexistent", noredirect="true", delegation=old)
    from urllib.parse import parse_qs, urlparse
    redirect = parse_qs(urlparse(r.json()["Location"]).query)["delegation"][0]
    assert secret.parse_delegation_token(redirect)[0].max_date == \
        secret.parse_delegation_token(old)[0].max_date
    for op, method, extra in (("LISTSTATUS", "GET", {}), ("GETDELEGATIONTOKEN", "GET", {}),
                              ("RENEWDELEGATIONTOKEN", "PUT", {"token": redirect})):
        r = api(cluster, op, method, delegation=redirect, **extra)
        assert r.status_code == 401, (op, r.text)
    r = api(cluster, "RENEWDELEGATIONTOKEN", "PUT", delegation=old, token=redirect)
    assert r.status_code == 400 and "redirect" in r.text


@pytest.mark.parametrize("op", ["RENEWDELEGATIONTOKEN", "CANCELDELEGATIONTOKEN"])
def test_renew_and_cancel_refuse_strangers_and_oversized_input(cluster, op):
    secret = Secret.load(cluster.home.secret_file)
    mine = secret.delegation_token(getpass.getuser(), 3600)
    r = api(cluster, op, "PUT", token=mine)                                # no credentials
    assert r.status_code == 401
    stranger = Secret(b"not-the-cluster-secret-at-all").delegation_token(getpass.getuser(), 60)
    r = api(cluster, op, "PUT", delegation=stranger, token=mine)           # another cluster's
    assert r.status_code == 401 and "invalid delegation token" in r.text
    r = api(cluster, op, "PUT", delegation=mine, token=stranger)           # not ours to renew
    assert r.status_code == 400 and "invalid delegation token" in r.text
    r = api(cluster, op, "PUT", delegation=mine, token="x" * 20_000)       # oversized
    assert 400 <= r.status_code < 500
    assert api(cluster, "LISTSTATUS", delegation=mine).status_code == 200  # and it serves on
