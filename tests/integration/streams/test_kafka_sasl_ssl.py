"""SASL_SSL (SCRAM-SHA-512 over TLS): a right client works, three wrong ones fail fast.

aiokafka's clients raise one generic `KafkaConnectionError("Unable to bootstrap from ...")` for
all three mistakes; the cause is only in the ERROR record aiokafka logs (logger `aiokafka`,
'Unable connect to "host:port": <cause>'). A single connection made with
`aiokafka.conn.create_conn` raises the specific error instead, which is what a one-line message
can be built on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from streams.kafka_broker import KafkaCluster, SaslSslAccess
from streams.kafka_tls import write_ca
from tests.integration.streams.kafka_clients import consume, create_topic, produce, topic_name

pytestmark = pytest.mark.kafka

#: Upper bound for a wrong client to be told off; measured well under a second on two cores.
FAIL_FAST_S = 5.0


def _access(cluster: KafkaCluster) -> SaslSslAccess:
    assert cluster.sasl_ssl is not None
    return cluster.sasl_ssl


def _wrong_password(access: SaslSslAccess, tmp_path: Path) -> dict[str, Any]:
    return {**access.client_kwargs(), "sasl_plain_password": access.password + "-wrong"}


def _untrusted_ca(access: SaslSslAccess, tmp_path: Path) -> dict[str, Any]:
    other_ca = write_ca(tmp_path / "other-ca.pem")
    return {**access.client_kwargs(), "ssl_context": ssl.create_default_context(cafile=other_ca)}


def _plaintext(access: SaslSslAccess, tmp_path: Path) -> dict[str, Any]:
    return {"bootstrap_servers": access.bootstrap}


#: (client options for a mistake, text of the cause aiokafka logs, exception of one connection)
BAD_CLIENTS: dict[str, tuple[Callable[[SaslSslAccess, Path], dict[str, Any]], str, type]] = {
    "wrong-password": (
        _wrong_password,
        "SaslAuthenticationFailed: Authentication failed during authentication due to invalid "
        "credentials with SASL mechanism SCRAM-SHA-512",
        SaslAuthenticationFailed,
    ),
    "untrusted-ca": (
        _untrusted_ca,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
        ssl.SSLCertVerificationError,
    ),
    "plaintext-client": (_plaintext, "closed", KafkaConnectionError),
}


def test_a_scram_client_over_tls_round_trips_records(kafka_sasl: KafkaCluster) -> None:
    """Admin, producer and consumer all work through SASL_SSL with the run's user and CA."""
    client = _access(kafka_sasl).client_kwargs()
    topic = topic_name("sasl")

    async def run() -> list[bytes]:
        await create_topic(client, topic)
        await produce(client, topic, [b"secret-1", b"secret-2"], acks="all")
        return await consume(client, topic, 2, group_id="sasl-group")

    assert asyncio.run(run()) == [b"secret-1", b"secret-2"]


@pytest.mark.parametrize("mistake", sorted(BAD_CLIENTS))
def test_a_wrong_client_fails_to_bootstrap_fast_with_the_cause_only_in_the_log(
    kafka_sasl: KafkaCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture, mistake: str
) -> None:
    """Producer start raises "Unable to bootstrap" within seconds; aiokafka logs the cause."""
    make_options, cause, _ = BAD_CLIENTS[mistake]
    options = make_options(_access(kafka_sasl), tmp_path)

    async def run() -> None:
        producer = AIOKafkaProducer(**options, request_timeout_ms=10_000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(run())
    elapsed_s = time.monotonic() - started
    assert elapsed_s < FAIL_FAST_S
    logged = [r.getMessage() for r in caplog.records if r.name == "aiokafka"]
    assert any("Unable connect to" in m and cause in m for m in logged), logged


@pytest.mark.parametrize("mistake", sorted(BAD_CLIENTS))
def test_one_connection_raises_the_specific_error_of_each_mistake(
    kafka_sasl: KafkaCluster, tmp_path: Path, mistake: str
) -> None:
    """`create_conn` to the SASL_SSL port raises an error type that names the mistake."""
    make_options, _, error_type = BAD_CLIENTS[mistake]
    options = make_options(_access(kafka_sasl), tmp_path)
    host, _, port = options.pop("bootstrap_servers").partition(",")[0].rpartition(":")

    async def run() -> None:
        conn = await create_conn(host, int(port), request_timeout_ms=10_000, **options)
        conn.close()

    started = time.monotonic()
    with pytest.raises(error_type):
        asyncio.run(run())
    assert time.monotonic() - started < FAIL_FAST_S
