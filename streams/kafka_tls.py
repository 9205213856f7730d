"""A throw-away certificate authority and broker certificate for a test broker's TLS listener.

Everything is PEM: the broker reads its key and certificate chain from one file
(`ssl.keystore.type=PEM`), clients trust the CA file. Keys are EC P-256 (quick to make) and are
not encrypted; the files are meant for a temporary run folder only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one TLS setup.

    Attributes:
        ca_file: the CA certificate clients trust.
        keystore_file: the broker's PKCS#8 private key followed by its certificate and the CA's
            (what `ssl.keystore.location` points to with `ssl.keystore.type=PEM`).
    """

    ca_file: Path
    keystore_file: Path


@dataclass(frozen=True)
class _Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dispatchflow test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(valid_days: int) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=valid_days)


def _new_authority(common_name: str, valid_days: int) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Authority(key=key, cert=cert)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_ca(path: Path, common_name: str = "dispatchflow test CA", valid_days: int = 7) -> Path:
    """Write a fresh self-signed CA certificate to `path` (its key is discarded); return `path`.

    Useful as a CA that trusts nothing a broker presents.
    """
    authority = _new_authority(common_name, valid_days)
    path.write_bytes(_pem(authority.cert))
    return path


def make_tls_files(
    folder: Path,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    valid_days: int = 7,
) -> TlsFiles:
    """Make a CA and a broker certificate for `hosts` (IP addresses or DNS names) in `folder`.

    Writes `ca.pem` and `broker-keystore.pem` (mode 0600) and returns their paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    authority = _new_authority("dispatchflow test CA", valid_days)
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    not_before, not_after = _validity(valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(_pem(authority.cert))
    keystore_file = folder / "broker-keystore.pem"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keystore_file.touch(mode=0o600)
    keystore_file.write_bytes(key_pem + _pem(cert) + _pem(authority.cert))
    return TlsFiles(ca_file=ca_file, keystore_file=keystore_file)
