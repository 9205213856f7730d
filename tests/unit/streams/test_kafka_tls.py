"""The run-time CA and broker certificate: a TLS client trusting the CA accepts the broker."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from streams.kafka_tls import make_tls_files, write_ca


def _handshake(keystore: Path, client: ssl.SSLContext, server_name: str) -> None:
    """One TLS handshake on loopback: a server presenting `keystore`, `client` connecting."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(keystore))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                tls.sendall(b"x")
        finally:
            thread.join(timeout=10)


def test_a_client_trusting_the_ca_accepts_the_broker_on_its_ip(tmp_path: Path) -> None:
    """The broker certificate chains to the CA and names 127.0.0.1 (hostname check on)."""
    files = make_tls_files(tmp_path)
    _handshake(
        files.keystore_file, ssl.create_default_context(cafile=str(files.ca_file)), "127.0.0.1"
    )


def test_the_broker_certificate_also_names_localhost(tmp_path: Path) -> None:
    """Clients that dial `localhost` pass the hostname check too."""
    files = make_tls_files(tmp_path)
    _handshake(
        files.keystore_file, ssl.create_default_context(cafile=str(files.ca_file)), "localhost"
    )


def test_a_client_trusting_another_ca_rejects_the_broker(tmp_path: Path) -> None:
    """A CA made separately does not vouch for this broker: certificate verification fails."""
    files = make_tls_files(tmp_path / "run")
    other = write_ca(tmp_path / "other-ca.pem")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files.keystore_file, ssl.create_default_context(cafile=str(other)), "127.0.0.1")


def test_the_keystore_is_an_unencrypted_pkcs8_key_then_the_chain_readable_by_owner_only(
    tmp_path: Path,
) -> None:
    """Kafka's PEM store reads a PKCS#8 key followed by the certificates; the file is 0600."""
    files = make_tls_files(tmp_path)
    text = files.keystore_file.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert text.count("-----BEGIN CERTIFICATE-----") == 2
    assert stat.S_IMODE(files.keystore_file.stat().st_mode) == 0o600
