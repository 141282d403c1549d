"""A cluster's own certificate authority and one certificate per daemon, for
TLS on every connection (HDFS's HTTPS and encrypted data transfer).

`yard cluster up --tls` makes them under $STACKYARD_HOME/tls/:

    ca.pem, ca.key          the cluster CA (the key 0600; it signs daemons only)
    NAME.pem, NAME.key      one daemon's certificate, for its host name and address

Clients trust `ca.pem` alone (net/auth.py finds it beside the secret file)
and check each daemon's certificate against the address they dialled. On a
real cluster, an operator issues certificates the same way (or with their
own CA) and names them in each daemon's config: tls_cert, tls_key, tls_ca.
Keys are ECDSA P-256: a handshake costs a fraction of an RSA one.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

VALID_DAYS = 3650


def _crypto():
    """cryptography's modules, imported only where certificates are made:
    a daemon that merely serves TLS never needs them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    return x509, hashes, serialization, ec, NameOID


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key) -> bytes:
    serialization = _crypto()[2]
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(directory: Path, name: str = "Stackyard cluster CA") -> Path:
    """DIRECTORY/ca.pem and ca.key, made once; the certificate's path."""
    x509, hashes, serialization, ec, NameOID = _crypto()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path = directory / "ca.pem"
    if cert_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(directory / "ca.key", _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert_path


def issue(directory: Path, name: str, hosts: list[str]) -> tuple[Path, Path]:
    """A certificate for daemon NAME, good for HOSTS (names or addresses),
    signed by the CA in DIRECTORY; (certificate path, key path)."""
    x509, hashes, serialization, ec, NameOID = _crypto()
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert_path, key_path


def server_context(cert: str, key: str) -> ssl.SSLContext | None:
    """The TLS context a daemon serves with, or None when it has no certificate."""
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls_cert / tls_key: cannot load {cert} with {key}: {exc}") from None
    return ctx
