"""The product on a SASL_SSL listener (SCRAM-SHA-512 over TLS, a CA made for the run).

`topics apply|verify`, a worker and `check` all work through the `DISPATCHFLOW_SECURITY_PROTOCOL`
/ `SASL_*` / `SSL_CAFILE` settings; a wrong password, an untrusted CA and a plaintext client on
the TLS port each end within `FAIL_WITHIN_S` with one line naming the cause and exit code 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.records import envelope
from dispatchflow.settings import BrokerKind, SaslMechanism, SecurityProtocol
from simulators.city.protocol import SimRecord
from streams.demo import local_settings
from streams.kafka_broker import KafkaCluster, SaslSslAccess
from streams.kafka_config import aiokafka_kwargs
from streams.sim_dispatch import KafkaDispatch
from streams.worker_process import WorkerProcess
from tests import events

#: How long a client with a wrong credential, CA or protocol may take to say so.
FAIL_WITHIN_S = 30.0
SHARD = events.SHARD
#: Now: records keep their event time as timestamp, within the topics' retention.
T0 = int(time.time() * 1000)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslSslAccess]:
    """One Kafka node with a SASL_SSL listener; its topics applied through that listener."""
    with KafkaCluster(1, sasl_ssl=True, run_dir=tmp_path_factory.mktemp("kafka")) as kafka:
        assert kafka.sasl_ssl is not None
        yield kafka.sasl_ssl


def _env(access: SaslSslAccess, **changes: str | None) -> dict[str, str]:
    """The DISPATCHFLOW_* environment of a client of `access`, with `changes` applied."""
    env = {
        "DISPATCHFLOW_BROKER_URL": access.bootstrap,
        "DISPATCHFLOW_SECURITY_PROTOCOL": "SASL_SSL",
        "DISPATCHFLOW_SASL_MECHANISM": access.mechanism,
        "DISPATCHFLOW_SASL_USERNAME": access.username,
        "DISPATCHFLOW_SASL_PASSWORD": access.password,
        "DISPATCHFLOW_SSL_CAFILE": str(access.ca_file),
    }
    for name, value in changes.items():
        key = f"DISPATCHFLOW_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "dispatchflow", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_worker_and_check_work_over_sasl_ssl(secure: SaslSslAccess, tmp_path: Path) -> None:
    """Topics applied and verified, an order dispatched and committed, `check` clean; SASL_SSL."""
    env = _env(secure)
    applied = _cli("topics", "apply", "--replication", "1", env=env)
    assert applied.returncode == 0, applied.stderr
    verified = _cli("topics", "verify", "--replication", "1", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    settings = local_settings(
        secure.bootstrap,
        tmp_path / "data",
        BrokerKind.KAFKA,
        security_protocol=SecurityProtocol.SASL_SSL,
        sasl_mechanism=SaslMechanism(secure.mechanism),
        sasl_username=secure.username,
        sasl_password=secure.password,
        ssl_cafile=secure.ca_file,
        ticker_enabled=False,
    )
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        dispatch = KafkaDispatch(aiokafka_kwargs(settings), [worker.url])
        try:
            offers = dispatch.run_until(_order_and_courier(), T0 + 1_000)
            proposal = next(r.event for r in offers if r.event["type"] == "assignment_proposed")
            answer = events.response(proposal["decision_id"], "c1", T0 + 2_000)
            outputs = dispatch.run_until(
                [SimRecord("assignment_responses", SHARD.encode(), answer)], T0 + 2_000
            )
        finally:
            dispatch.close()
    assert [r.event["type"] for r in outputs].count("assignment_committed") == 1
    checked = _cli("check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _order_and_courier() -> list[SimRecord]:
    pings = events.ping_batch("gw-1", T0, [events.fix("c1", T0)])
    tick = envelope("dispatch_tick", "tick-1", T0 + 1_000, shard=SHARD)
    return [
        SimRecord("courier_events", b"c1", events.courier_online("c1", T0)),
        SimRecord("courier_pings", b"gw", pings),
        SimRecord(
            "order_events", SHARD.encode(), events.order_created("o1", T0, prep_estimate_s=0.0)
        ),
        SimRecord("dispatch_ticks", SHARD.encode(), tick),
    ]


def _fails_in_one_line(env: dict[str, str], cause: str) -> None:
    started = time.monotonic()
    result = _cli("topics", "verify", "--replication", "1", env=env)
    elapsed_s = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert cause in lines[0], lines[0]
    assert elapsed_s < FAIL_WITHIN_S, elapsed_s


def test_a_wrong_password_is_one_line_naming_the_credentials(secure: SaslSslAccess) -> None:
    """A wrong SASL password ends with one line saying authentication failed."""
    _fails_in_one_line(_env(secure, sasl_password="not-the-password"), "authentication failed")


def test_an_untrusted_ca_is_one_line_naming_the_certificate(secure: SaslSslAccess) -> None:
    """Without the run's CA the broker's certificate is not trusted: one line says so."""
    _fails_in_one_line(_env(secure, ssl_cafile=None), "certificate is not trusted")


def test_a_plaintext_client_on_the_tls_port_is_one_line(secure: SaslSslAccess) -> None:
    """A PLAINTEXT client on the TLS port is told to use SSL or SASL_SSL, in one line."""
    env = _env(
        secure,
        security_protocol="PLAINTEXT",
        sasl_mechanism=None,
        sasl_username=None,
        sasl_password=None,
        ssl_cafile=None,
    )
    _fails_in_one_line(env, "TLS listener")
