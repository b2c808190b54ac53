"""``focusdrop cluster certs``: a small certificate authority for one studio and a certificate per machine.

A Dask scheduler runs whatever code its clients send. With TLS and mutual certificates
(``distributed.security.Security``), only a machine holding a certificate signed by the studio's own
authority can connect, as scheduler, worker or client, and the traffic is encrypted. The authority's key
(``ca-key.pem``) stays on the machine that made it; each machine gets ``ca.pem`` and its own
``NAME.pem`` (its certificate and key in one file, as Dask's ``--tls-cert`` takes it).
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650  # a studio's cluster is not renewed every year; revoke by making a new authority
CA_FILE, CA_KEY_FILE = "ca.pem", "ca-key.pem"


def make_certificates(folder: Path, machines: list[str]) -> list[Path]:
    """Write ``folder/ca.pem``, ``folder/ca-key.pem`` (made once, reused after) and ``folder/NAME.pem`` for
    each machine name (its certificate, signed by the authority, and its private key). Machine names are
    also written as the certificate's DNS (or IP) subject names. Returns the files written."""
    for name in machines:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"machine name {name!r}: give a host name such as studio-1")
        if name in ("ca", "ca-key"):
            raise ValueError(f"machine name {name!r} is the authority's own file name")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _authority(folder)
    written = [folder / CA_FILE]
    for name in machines:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (_builder(subject, ca_cert.subject, key)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([_alt_name(name)]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        path = folder / f"{name}.pem"
        _write_private(path, cert.public_bytes(serialization.Encoding.PEM) + _key_bytes(key))
        written.append(path)
    return written


def _authority(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The studio's authority: read if ``folder`` has one, else made."""
    cert_path, key_path = folder / CA_FILE, folder / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FocusDrop studio authority")])
    cert = (_builder(subject, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_bytes(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_bytes(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (it holds a private key)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)
